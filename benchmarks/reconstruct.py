"""Reconstruction latency per image: E-SAI's HybridNet transcribed from the text vs ours, and HybridLite.

    python benchmarks/reconstruct.py [--size 256] [--bins 30] [--repeat 3] [--device cpu|cuda]

One input (B = 1, T x 2 x size x size refocused event counts, 10 % active)
goes through: the from-the-text transcription (tests/esai_reference.py: the
three spiking layers stepped together, as E-SAI's forward does), our
HybridNet with the same weights (its output compared with the
transcription's), and HybridLite as bundled. Medians of --repeat runs after a warm-up,
in inference mode; the machine is shared, so compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from esai_reference import RefHybridNet, randomise

from spikelens.hybrid_net.reconstruct import HybridLite, HybridNet
from spikelens.hybrid_net.registry import load_model


def median_ms(fn, repeat: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--bins", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    shape = (1, args.bins, 2, args.size, args.size)
    x = ((torch.rand(shape, generator=g) < 0.1).float() * torch.randint(1, 4, shape, generator=g)).to(dev)
    ref = randomise(RefHybridNet()).eval()
    ours = HybridNet().eval()
    ours.load_state_dict(ref.state_dict())
    lite = HybridLite(load_model("hybridlite", "cpu").config).eval()  # the bundled model's shape
    ref, ours, lite = ref.to(dev), ours.to(dev), lite.to(dev)
    with torch.inference_mode():
        if dev.type == "cuda":  # the transcription allocates its state on the CPU; keep it on the CPU there
            ref = ref.cpu()
        want = ref(x.cpu())
        diff = (ours(x).cpu() - want).abs().max().item()
        rows = [
            ("HybridNet, from-the-text transcription", median_ms(lambda: ref(x.cpu()), args.repeat, sync), "-"),
            ("HybridNet, ours", median_ms(lambda: ours(x), args.repeat, sync), f"{diff:.1e}"),
            (f"HybridLite (stride {lite.config.stride}), ours", median_ms(lambda: lite(x), args.repeat, sync), "-"),
        ]
    print(
        f"reconstruct one {args.size}x{args.size} image, T={args.bins}, {dev}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'path':<42}{'median ms':>11}{'vs transcription':>18}  max |diff|")
    base = rows[0][1]
    for name, ms, d in rows:
        print(f"{name:<42}{ms:>11.0f}{base / ms:>17.2f}x  {d}")


if __name__ == "__main__":
    main()
