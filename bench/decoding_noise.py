#!/usr/bin/env python3
"""How much of the noise-free decodable information single trials keep, by time window.

Reads a dataset cache written by `v1 build` (a safetensors file in DATA/cache/) and fits
the report's linear decoder -- ridge regression from responses to the pixels of the RF
crop, regularisation picked on the validation split -- once on the single-trial counts
and once on the simulator's noise-free counts, for several windows of response bins
after each frame. It prints the test-split PixCorr of both and their ratio, then how
slowly the population's excess over its noise-free count varies (a slow gain shared by
all units does not average out over neighbouring bins).

Build a cache with many bins first, e.g. a copy of models/default/config.toml whose
[data] section says `lags = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]`:

    target/release/v1 build --data data/default --config lags12.toml
    python3 bench/decoding_noise.py data/default/cache/dataset-<fingerprint>.safetensors

Needs numpy only.
"""
import argparse
import json
import struct

import numpy as np

DTYPES = {"U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "F32": np.float32}


def load_cache(path):
    """The cache's tensors by name, and its `meta` JSON (see neural-data/src/cache.rs)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        tensors = {}
        for name, v in header.items():
            if name == "__metadata__":
                continue
            a, b = v["data_offsets"]
            f.seek(base + a)
            tensors[name] = np.frombuffer(f.read(b - a), dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
    return tensors, json.loads(header["__metadata__"]["meta"])


def pixcorr(a, b):
    """Pearson r over the pixels of each image, averaged over images."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return float(np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)))


def ridge_pixcorr(x, y, split, lambdas=(1e-1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5)):
    """Test PixCorr of ridge from x to y, fitted on train, lambda picked on validation."""
    tr, va, te = split == 0, split == 1, split == 2
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    gram, rhs = z[tr].T @ z[tr], z[tr].T @ y[tr]
    best = None
    for lam in lambdas:
        w = np.linalg.solve(gram + lam * np.eye(len(gram)), rhs)
        score = pixcorr(z[va] @ w, y[va])
        if best is None or score > best[0]:
            best = (score, w)
    return pixcorr(z[te] @ best[1], y[te])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", help="DATA/cache/dataset-*.safetensors built by `v1 build`")
    args = ap.parse_args()
    t, meta = load_cache(args.cache)
    if "truth" not in t:
        raise SystemExit("error: this cache has no noise-free rates (simulated data only); build it from a `v1 simulate` dataset")
    lags = list(meta["lags"])
    n = t["crops"].shape[0]
    pixels = t["crops"].reshape(n, -1).astype(np.float64) / 255.0
    split = t["split"]
    rec, truth = t["responses"].astype(np.float64), t["truth"].astype(np.float64)
    print(f"{n} samples, {rec.shape[2]} channels, lags {lags}")
    # Windows: the report's default (latency 2, three bins), longer ones, and ones that
    # start before the latency (those bins answer the previous frames of a slow movie).
    windows = [[2, 3, 4], [2, 3, 4, 5, 6], list(range(2, 9)), list(range(2, 12)), list(range(0, 5)), list(range(0, 9)), list(range(0, 12))]
    print("| bins (frames after the frame) | single trial | noise-free | ratio |\n|---|---|---|---|")
    for w in windows:
        if not all(b in lags for b in w):
            continue
        cols = [lags.index(b) for b in w]
        single = ridge_pixcorr(rec[:, cols, :].reshape(n, -1), pixels, split)
        clean = ridge_pixcorr(truth[:, cols, :].reshape(n, -1), pixels, split)
        print(f"| {w[0]}..{w[-1]} ({len(w)}) | {single:.3f} | {clean:.3f} | {single / clean:.0%} |")
    # The population's count in one bin over its noise-free count, between bins k apart
    # of the same segment.
    b = lags.index(lags[0])
    ratio = rec[:, b, :].sum(1) / truth[:, b, :].sum(1)
    idx = t["index"].astype(int)
    for k in (1, 3, 10, 30):
        same = (idx[k:, 0] == idx[:-k, 0]) & (idx[k:, 1] == idx[:-k, 1]) & (idx[k:, 2] == idx[:-k, 2] + k)
        r = np.corrcoef(ratio[:-k][same], ratio[k:][same])[0, 1]
        print(f"population count / noise-free count: correlation between bins {k:2d} apart {r:.2f}")


if __name__ == "__main__":
    main()
