#!/usr/bin/env python3
"""Side-by-side training-step benchmark: the default V1 model in PyTorch and in this system.

The same four-network phase-1 step that `v1 bench train` times -- image_encoder (clip ->
z), waveform_decoder (factorised per-electrode readout, softplus, Poisson loss) and
image_decoder (sub-pixel convolutions, pixel MSE), one AdamW step -- written in PyTorch
with the same layer sizes, the same batch sizes and the same thread counts. It then runs
`v1 bench train` for the same settings and prints both, with the ratio.

PyTorch is not a dependency of the project; install it in a virtual environment to run
this (CPU is enough):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch
    .venv-bench/bin/python bench/pytorch_reference.py --v1 target/release/v1

Reads the architecture from `v1`'s own JSON (`v1 bench train` prints it), so the two
always describe the same model.

On a GPU (`--device cuda`): a CUDA build of v1 (docs/gpu.md) and a CUDA build of PyTorch;
both run the step on the device, one host thread, and the clock stops after the device
has finished the last step.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time


# The pixel normalisation `v1 bench train` gives its synthetic model, and the encoder's
# floor under the logarithm (models/src/image_encoder.rs).
PIXEL_MEAN, PIXEL_STD, LOG_FLOOR = 0.5, 0.2, 0.02


def build(torch, arch, channels, lags, grid):
    nn = torch.nn
    f = torch.nn.functional
    k = arch["clip_frames"]
    c1, c2 = arch["encoder_channels"]
    d1, d2 = arch["decoder_channels"]
    zc = arch["latent_channels"]
    feats = arch["readout_features"]

    class ImageEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(k, c1, 3, 1, 1)
            self.down1 = nn.Conv2d(c1, c2, 3, 2, 1)
            self.res_a = nn.Conv2d(c2, c2, 3, 1, 1)
            self.res_b = nn.Conv2d(c2, c2, 3, 1, 1)
            self.down2 = nn.Conv2d(c2, c2, 3, 2, 1)
            self.head = nn.Conv2d(c2, zc, 1, 1, 0)

        def forward(self, x):
            if arch.get("log_input"):
                # Same as the Rust encoder: back to [0, 1] pixels, log, centred.
                p = (x * PIXEL_STD + PIXEL_MEAN).clamp(0.0, 1.0)
                x = torch.log(p + LOG_FLOOR) - math.log(PIXEL_MEAN + LOG_FLOOR)
            h = f.relu(self.stem(x))
            h = f.relu(self.down1(h))
            h = f.relu(h + self.res_b(f.relu(self.res_a(h))))
            h = f.relu(self.down2(h))
            return self.head(h)

    class WaveformDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Conv2d(zc, feats, 1)
            self.mask = nn.Parameter(torch.rand(channels, grid * grid) / (grid * grid))
            b = 1.0 / feats ** 0.5
            self.feature_weights = nn.Parameter(torch.empty(lags, channels, feats).uniform_(-b, b))
            self.bias = nn.Parameter(torch.zeros(lags, channels))

        def forward(self, z):
            h = f.relu(self.features(z)).flatten(2)  # [B, F, G*G]
            read = h @ self.mask.t()  # [B, F, C]
            out = torch.einsum("bfc,lcf->blc", read, self.feature_weights) + self.bias
            return f.softplus(out).flatten(1)

    class ImageDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(zc, d1, 3, 1, 1)
            self.up1 = nn.Conv2d(d1, 4 * d1, 3, 1, 1)
            self.up2 = nn.Conv2d(d1, 4 * d2, 3, 1, 1)
            self.out = nn.Conv2d(d2, 1, 3, 1, 1)

        def forward(self, z):
            h = f.relu(self.stem(z))
            h = f.relu(f.pixel_shuffle(self.up1(h), 2))
            h = f.relu(f.pixel_shuffle(self.up2(h), 2))
            return self.out(h)

    return ImageEncoder(), WaveformDecoder(), ImageDecoder()


def build_waveform_encoder(torch, arch, response_len, grid):
    nn = torch.nn
    zc = arch["latent_channels"]

    class WaveformEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(response_len, arch["waveform_hidden"])
            self.to_latent = nn.Linear(arch["waveform_hidden"], zc * grid * grid)

        def forward(self, r):
            h = torch.relu(self.hidden(r))
            return self.to_latent(h).reshape(r.shape[0], zc, grid, grid)

    return WaveformEncoder()


def torch_latency_ms(torch, arch, channels, lags, size, iterations):
    """p50/p99 of one image through each path, networks only (no image decoding)."""
    torch.manual_seed(1)
    grid = size // 4
    enc, wdec, idec = build(torch, arch, channels, lags, grid)
    wenc = build_waveform_encoder(torch, arch, lags * channels, grid)
    clip = torch.randn(1, arch["clip_frames"], size, size)
    r = torch.rand(1, lags * channels)
    sim, rec = [], []
    with torch.no_grad():
        for i in range(iterations + 20):
            t = time.perf_counter()
            wdec(enc(clip))
            t1 = time.perf_counter()
            idec(wenc(r))
            t2 = time.perf_counter()
            if i >= 20:
                sim.append((t1 - t) * 1000)
                rec.append((t2 - t1) * 1000)
    pct = lambda v, p: sorted(v)[min(len(v) - 1, round((len(v) - 1) * p))]
    return {"simulation_path": {"p50": pct(sim, 0.5), "p99": pct(sim, 0.99)},
            "reconstruction_path": {"p50": pct(rec, 0.5), "p99": pct(rec, 0.99)}}


def torch_images_per_second(torch, arch, batch, steps, channels, lags, size, device="cpu"):
    torch.manual_seed(1)
    enc, wdec, idec = build(torch, arch, channels, lags, size // 4)
    for net in (enc, wdec, idec):
        net.to(device)
    params = list(enc.parameters()) + list(wdec.parameters()) + list(idec.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    k = arch["clip_frames"]
    clip = torch.randn(batch, k, size, size, device=device)
    x = clip[:, k - 1 : k].contiguous()
    counts = torch.floor(torch.rand(batch, lags * channels, device=device) * 3)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)

    def step():
        z = enc(clip)
        rate = wdec(z)
        recon = idec(z)
        loss = (rate - counts * torch.log(rate + 1e-6)).mean() + ((recon - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    secs = time.perf_counter() - t0
    return batch * steps / secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--v1", default="target/release/v1", help="the v1 binary (built with --release)")
    ap.add_argument("--batch", default="32,64,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--channels", type=int, default=100)
    ap.add_argument("--model", help="also compare single-image latency with `v1 bench infer --model MODEL` (1 thread)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (a CUDA build of v1 and of PyTorch)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is not installed: python3 -m venv .venv-bench && .venv-bench/bin/pip install torch")
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    on_gpu = args.device != "cpu"
    if on_gpu:
        if not torch.cuda.is_available():
            sys.exit(f"--device {args.device}: this PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
        threads = [1]  # one host thread drives the GPU

    print(f"running {args.v1} bench train ...", file=sys.stderr)
    out = subprocess.run(
        [args.v1, "bench", "train", "--conv", "fast" if on_gpu else "both", "--batch", args.batch,
         "--threads", ",".join(map(str, threads)), "--steps", str(args.steps), "--channels", str(args.channels),
         "--device", args.device],
        check=True, capture_output=True, text=True,
    )
    v1 = json.loads(out.stdout)
    arch, size, lags = v1["architecture"], v1["image_size"], v1["lags"]
    ours = {}
    for run in v1["runs"]:
        for r in run["results"]:
            ours[(run["conv"], run["threads"], r["batch"])] = r["images_per_second"]

    rows = []
    for t in threads:
        torch.set_num_threads(t)
        for b in batches:
            print(f"PyTorch: {t} thread(s), batch {b} ...", file=sys.stderr)
            pt = torch_images_per_second(torch, arch, b, args.steps, args.channels, lags, size, args.device)
            fast, stock = ours.get(("fast", t, b)), ours.get(("stock", t, b))
            rows.append({
                "threads": t,
                "batch": b,
                "pytorch_images_per_second": pt,
                "v1_images_per_second": fast,
                "v1_stock_candle_images_per_second": stock,
                "v1_over_pytorch": fast / pt if fast else None,
                "v1_over_stock_candle": fast / stock if fast and stock else None,
            })
    latency = None
    if args.model:
        print(f"single-image latency, 1 thread ...", file=sys.stderr)
        out = subprocess.run([args.v1, "bench", "infer", "--model", args.model, "--iterations", str(args.iterations)],
                             check=True, capture_output=True, text=True, env={**os.environ, "RAYON_NUM_THREADS": "1"})
        ours_lat = json.loads(out.stdout)
        torch.set_num_threads(1)
        theirs = torch_latency_ms(torch, arch, args.channels, lags, size, args.iterations)
        latency = {"v1": ours_lat, "pytorch": theirs}
        # Like for like: the networks alone on a clip of distinct frames, as PyTorch runs them.
        pairs = [("simulation_networks_clip", "simulation_path", "networks, a 7-frame clip"),
                 ("reconstruction_path", "reconstruction_path", "networks")]
        for ours_key, theirs_key, what in pairs:
            a, b = ours_lat[ours_key]["p50"], theirs[theirs_key]["p50"]
            print(f"{theirs_key} ({what}): v1 p50 {a:.3f} ms, PyTorch p50 {b:.3f} ms, v1/PyTorch time {a / b:.2f}", file=sys.stderr)
        for key in ("simulation_networks_held", "simulation_path"):
            print(f"v1 {key} ({ours_lat[key]['includes']}): p50 {ours_lat[key]['p50']:.3f} ms", file=sys.stderr)
    result = {
        "benchmark": "train_step_phase1_side_by_side",
        "latency_ms": latency,
        "pytorch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "device": args.device if not on_gpu else f"{args.device} ({torch.cuda.get_device_name()})",
        "architecture": arch,
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    print(f"{'threads':>7} {'batch':>5} {'PyTorch img/s':>14} {'v1 img/s':>9} {'stock candle':>12} {'v1/PyTorch':>10} {'v1/stock':>8}", file=sys.stderr)
    for r in rows:
        print(f"{r['threads']:>7} {r['batch']:>5} {r['pytorch_images_per_second']:>14.0f} {r['v1_images_per_second'] or 0:>9.0f} "
              f"{r['v1_stock_candle_images_per_second'] or 0:>12.0f} {r['v1_over_pytorch'] or 0:>10.2f} {r['v1_over_stock_candle'] or 0:>8.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
