"""Reconstruction per image, every path on the same input in one run: E-SAI's HybridNet transcribed from the
text, ours in fp32 (exact), on the CPU fast path (fp32 reordered: folded batch norm, Winograd 3x3
convolutions, channels_last; on CUDA, cuDNN's TF32), under bf16 autocast and on ``auto`` (the quicker of
those two, timed), HybridLite (the bundled default) the same ways, and the training-free integration.

    python benchmarks/reconstruct.py [--size 256] [--bins 30] [--repeat 3] [--device cpu|cuda]

On CUDA the transcription runs on the GPU too, in IEEE fp32 like ours, and a last row gives HybridNet's
time per image in batches of 16 under bf16 autocast (throughput, not latency).

One input (B = 1, T x 2 x size x size refocused event counts, 10 % active, plus its physics channels)
goes through each network; the integration runs on a simulated 346 x 260 scene's events (it reads events,
not frames). Medians of --repeat runs after a warm-up, in inference mode; the machine is shared, so
compare ratios. The max |diff| column is each output against its own fp32 twin.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from esai_reference import RefHybridNet, randomise

from spikelens.hybrid_net.reconstruct import HybridNet
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.reconstruction import auto_choice, native_bf16, run_model


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


def integrate_row(repeat: int) -> tuple[str, float, str]:
    from spikelens.datasets.sai_scene import SAIScene
    from spikelens.datasets.simulator.sai import make_scene, simulate_scene
    from spikelens.refocus.integrate import integrate

    rng = np.random.default_rng(0)
    scene = make_scene("procedural:shapes:7", rng)
    events, meta = simulate_scene(scene, rng)
    sai = SAIScene.from_events(meta, events)
    ms = median_ms(lambda: integrate(events, sai, scene.depth).unfolded, repeat, lambda: None)
    return (f"integrate to the map shown, {events.size / 1e6:.1f} M events", ms, "-")


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
    shape = (args.bins, 2, args.size, args.size)
    frames = ((torch.rand(shape, generator=g) < 0.1).float() * torch.randint(1, 4, shape, generator=g)).numpy()
    lite = load_model("hybridlite", "cpu")
    physics = torch.randn(lite.side_channels, args.size, args.size, generator=g).numpy()  # physics (+ APS)
    ref = randomise(RefHybridNet()).eval()
    ours = HybridNet().eval()
    ours.load_state_dict(ref.state_dict())
    with torch.inference_mode():
        want = ref(torch.from_numpy(frames)[None])[0, 0].numpy()
    ours, lite, ref = ours.to(dev), lite.to(dev), ref.to(dev)
    x = torch.from_numpy(frames)[None].to(dev)
    if dev.type == "cuda":  # the transcription in IEEE fp32, as ours runs at precision fp32
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    with torch.inference_mode():
        exact = run_model(ours, frames)
        rows = [
            ("HybridNet, from-the-text transcription", median_ms(lambda: ref(x), args.repeat, sync), "-"),
            (
                "HybridNet, ours fp32",
                median_ms(lambda: run_model(ours, frames), args.repeat, sync),
                f"{np.abs(exact - want).max():.1e}",
            ),
        ]
        d = np.abs(run_model(ours, frames, precision="fast") - exact).max()
        rows.append(
            (
                "HybridNet, ours fast path (fp32 reordered)",
                median_ms(lambda: run_model(ours, frames, precision="fast"), args.repeat, sync),
                f"{d:.1e}",
            )
        )
        lite_exact = run_model(lite, frames, physics)
        fast = native_bf16(dev)
        if fast:
            d = np.abs(run_model(ours, frames, precision="bf16") - exact).max()
            rows.append(
                (
                    "HybridNet, ours bf16 autocast",
                    median_ms(lambda: run_model(ours, frames, precision="bf16"), args.repeat, sync),
                    f"{d:.1e}",
                )
            )
            d = np.abs(run_model(ours, frames, precision="auto") - exact).max()
            rows.append(
                (
                    f"HybridNet, ours auto (picked {auto_choice(ours)})",
                    median_ms(lambda: run_model(ours, frames, precision="auto"), args.repeat, sync),
                    f"{d:.1e}",
                )
            )
        rows.append(
            ("HybridLite (bundled) fp32", median_ms(lambda: run_model(lite, frames, physics), args.repeat, sync), "-")
        )
        d = np.abs(run_model(lite, frames, physics, "fast") - lite_exact).max()
        rows.append(
            (
                "HybridLite (bundled) fast path",
                median_ms(lambda: run_model(lite, frames, physics, "fast"), args.repeat, sync),
                f"{d:.1e}",
            )
        )
        if fast:
            d = np.abs(run_model(lite, frames, physics, "bf16") - lite_exact).max()
            rows.append(
                (
                    "HybridLite (bundled) bf16",
                    median_ms(lambda: run_model(lite, frames, physics, "bf16"), args.repeat, sync),
                    f"{d:.1e}",
                )
            )
        if dev.type == "cuda" and fast:
            batch = x.expand(16, *x.shape[1:]).contiguous()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                per = median_ms(lambda: ours(batch), args.repeat, sync) / 16
            rows.append(("HybridNet, bf16 autocast, batches of 16", per, "per image"))
    rows.append(integrate_row(args.repeat))
    print(
        f"reconstruct one {args.size}x{args.size} image, T={args.bins}, {dev}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, native bf16: {native_bf16(dev)}"
        + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "")
    )
    print(f"{'path':<44}{'median ms':>11}{'vs transcription':>18}  max |diff|")
    base = rows[0][1]
    for name, ms, d in rows:
        print(f"{name:<44}{ms:>11.{0 if ms >= 100 else 1 if ms >= 10 else 2}f}{base / ms:>17.2f}x  {d}")


if __name__ == "__main__":
    main()
