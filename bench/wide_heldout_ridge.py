#!/usr/bin/env python3
"""A linear decoder of the wide-field population, scored on photographs it never saw.

`v1 eval` fits its ridge control on the training split of the dataset it scores, so on
movies of the held-out photographs the ridge has seen those photographs (in other
segments). This fits the same kind of decoder -- ridge regression from the normalised
responses (all channels x lags) to the model-size image, regularisation picked on the
validation split -- on one cache (e.g. movies of the training photographs) and scores it
on the test split of another (movies of the held-out photographs), single trials and
repeat-averaged, with PixCorr and 2-way identification by pixel correlation (the
report's definitions), against a decoder fitted on shuffled responses.

Both caches must come from datasets of the same population (same preset and seed) built
with the same settings, e.g.

    target/release/v1 simulate --preset wide --images data/photos/train --frames 150 --out data/wide-photos
    target/release/v1 simulate --preset wide --images data/photos/heldout --frames 60 --out data/wide-heldout
    target/release/v1 build --data data/wide-photos --config CONFIG
    target/release/v1 build --data data/wide-heldout --config CONFIG
    python3 bench/wide_heldout_ridge.py data/wide-photos/cache/dataset-*.safetensors \
        data/wide-heldout/cache/dataset-*.safetensors --grid out/wide-heldout-ridge.png

Needs numpy only (the optional grid is written as an 8-bit grayscale PNG with zlib).
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decoding_noise import load_cache, pixcorr  # noqa: E402


def identification(recon, target):
    """2-way identification by pixel correlation; ties count half (metrics/src/identification.rs)."""
    def z(a):
        a = a - a.mean(1, keepdims=True)
        return a / np.sqrt((a * a).sum(1, keepdims=True) + 1e-12)

    sim = z(target) @ z(recon).T  # sim[i, j] = corr(target_i, recon_j)
    own = np.diag(sim)
    n = len(own)
    wins = (sim < own[None, :]).sum(0) + 0.5 * ((sim == own[None, :]).sum(0) - 1)
    return float(np.mean(wins / (n - 1)))


def write_png(path, gray):
    """An 8-bit grayscale PNG of `gray` (values in [0, 1])."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in (gray * 255).round().astype(np.uint8))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_cache", help="cache whose train/validation splits fit the decoder")
    ap.add_argument("test_cache", help="cache whose test split scores it")
    ap.add_argument("--max-train", type=int, default=20000, help="training samples used (evenly spaced)")
    ap.add_argument("--max-test", type=int, default=600, help="test images scored (evenly spaced)")
    ap.add_argument("--grid", help="write targets and reconstructions side by side to this PNG")
    args = ap.parse_args()

    a, meta_a = load_cache(args.train_cache)
    b, meta_b = load_cache(args.test_cache)
    key = lambda m: ([(c["subdir"], c["file"], c["electrode"]) for c in m["channels"]], m["lags"], m["image_size"], m["crop_window"])
    if key(meta_a) != key(meta_b):
        sys.exit("the two caches differ in channels, lags, image size or crop: build them from the same population with the same settings")

    split = a["split"]
    tr = np.flatnonzero(split == 0)
    tr = tr[np.linspace(0, len(tr) - 1, min(args.max_train, len(tr))).astype(int)]
    va = np.flatnonzero(split == 1)
    x_tr = a["responses"][tr].reshape(len(tr), -1).astype(np.float64)
    x_va = a["responses"][va].reshape(len(va), -1).astype(np.float64)
    y_tr = a["crops"][tr].reshape(len(tr), -1) / 255.0
    y_va = a["crops"][va].reshape(len(va), -1) / 255.0
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6

    def design(x):
        return np.hstack([(x - mu) / sd, np.ones((len(x), 1))])

    def fit(x, y):
        z = design(x)
        gram, rhs = z.T @ z, z.T @ y
        scale = np.mean(np.diag(gram))
        best = None
        for lam in (1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0):
            w = np.linalg.solve(gram + lam * scale * np.eye(len(gram)), rhs)
            err = np.mean((design(x_va) @ w - y_va) ** 2)
            if best is None or err < best[0]:
                best = (err, lam, w)
        return best[1], best[2]

    print(f"fitting on {len(tr)} training samples ({x_tr.shape[1]} response values each) of {args.train_cache}", flush=True)
    lam, w = fit(x_tr, y_tr)
    rng = np.random.default_rng(7)
    _, w_shuf = fit(x_tr[rng.permutation(len(tr))], y_tr)

    te = np.flatnonzero(b["split"] == 2)
    te = te[np.linspace(0, len(te) - 1, min(args.max_test, len(te))).astype(int)]
    target = b["crops"][te].reshape(len(te), -1) / 255.0
    single = b["responses"][te].reshape(len(te), -1).astype(np.float64)
    rows = {
        "ridge, single trials": design(single) @ w,
        "ridge on shuffled responses, single trials": design(single) @ w_shuf,
    }
    # Repeat-averaged: the repeat file's trials of the test samples, channel by channel;
    # channels without repeats keep their single-trial counts.
    reps = b["repeats"]  # [repeats, repeated samples, lags, channels]
    pos = {int(s): i for i, s in enumerate(b["repeat_samples"])}
    if reps.size and all(int(s) in pos for s in te):
        avg = np.nanmean(reps[:, [pos[int(s)] for s in te]], axis=0).reshape(len(te), -1)
        avg = np.where(np.isnan(avg), single, avg)
        rows["ridge, repeat-averaged"] = design(avg) @ w
    rows["mean training image"] = np.repeat(y_tr.mean(0, keepdims=True), len(te), 0)

    print(f"lambda {lam} (x mean diagonal); {len(te)} test images of {args.test_cache}")
    print(f"{'decoder':45s} {'PixCorr':>8s} {'2-way id.':>10s}")
    for name, recon in rows.items():
        print(f"{name:45s} {pixcorr(recon, target):8.3f} {identification(recon, target):10.3f}")

    if args.grid:
        s = meta_b["image_size"]
        pick = np.linspace(0, len(te) - 1, 8).astype(int)
        tiles = [np.hstack([target[i].reshape(s, s), np.full((s, 2), 1.0), np.clip(rows["ridge, single trials"][i], 0, 1).reshape(s, s)]) for i in pick]
        grid = np.vstack([np.vstack([t, np.full((2, t.shape[1]), 1.0)]) for t in tiles])
        write_png(args.grid, grid)
        print(f"targets | single-trial reconstructions: {args.grid}")


if __name__ == "__main__":
    main()
