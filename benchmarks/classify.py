"""Live gesture classification: latency per decision, the input rate it sustains, our LIF vs SpikingJelly's.

    python benchmarks/classify.py [--model gesture] [--device cpu|cuda] [--seconds 3]

1. Latency per decision: one window of the model (T x 2 x S x S counts of a
   simulated DVS128 gesture) through the network, median and 95th percentile.
2. Sustained input: synthetic DVS128 streams (uniform random events at R
   events/s, 10 ms packets, as a camera sends them) through the stream
   classifier as fast as it goes: wall seconds spent per second of stream.
   Below 1.0 it keeps up without skipping windows; the highest rate that
   does is reported.
3. Our multi-step LIF (hybrid_net.neurons) vs SpikingJelly 2.0's
   ``LIFNode(tau=4, decay_input=False, v_threshold=0.5, step_mode='m')``
   (torch backend) on the same tensors, forward and forward + backward.

Medians; the machine is shared, so compare ratios.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import torch

from spikelens.datasets.events import make_events
from spikelens.hybrid_net.neurons import LIF
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.classify_windows import StreamClassifier, predict


def timed(fn, repeat: int, sync=lambda: None) -> list[float]:
    fn()
    sync()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def stream_of(rate: float, seconds: float, rng: np.random.Generator) -> list[np.ndarray]:
    n = int(rate * seconds)
    t = np.sort(rng.integers(0, int(seconds * 1e6), n))
    ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    edges = np.searchsorted(t, np.arange(0, int(seconds * 1e6) + 10_000, 10_000))
    return [ev[a:b] for a, b in itertools.pairwise(edges) if b > a]


def sustained(model, rate: float, seconds: float) -> float:
    """Wall seconds per stream second."""
    packets = stream_of(rate, seconds, np.random.default_rng(0))
    sc = StreamClassifier(model, (128, 128), 100_000)
    t0 = time.perf_counter()
    for p in packets:
        sc.feed(p)
    return (time.perf_counter() - t0) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gesture")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=3.0, help="stream length per rate")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = load_model(args.model, dev)
    cfg = model.config
    print(
        f"model {args.model}: T = {cfg.steps}, {cfg.size} x {cfg.size}, window {cfg.window_us / 1e3:g} ms, "
        f"{sum(p.numel() for p in model.parameters())} parameters; {dev}, {torch.get_num_threads()} threads"
    )

    rng = np.random.default_rng(1)
    frames = rng.poisson(0.3, (1, cfg.steps, 2, cfg.size, cfg.size)).astype(np.float32)
    ms = timed(lambda: predict(model, frames), args.repeat, sync)
    print("\n1. per decision (one window through the network)")
    print(
        f"   median {statistics.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms"
        "   (target <= 20 ms on 2 CPU cores)"
    )

    print("\n2. sustained input (hop 100 ms; wall s per stream s, < 1 keeps up)")
    print(f"   {'rate (ev/s)':>12} {'wall/stream':>12} {'keeps up':>9}")
    best = 0.0
    for rate in (1e6, 2e6, 5e6, 10e6, 20e6):
        if dev.type == "cpu" and rate > 10e6 and best < 10e6:
            break
        ratio = sustained(model, rate, args.seconds)
        ok = ratio < 1.0
        best = rate if ok else best
        print(f"   {rate:12.0f} {ratio:12.3f} {'yes' if ok else 'no':>9}")
    print(f"   highest rate kept up with: {best / 1e6:g} M ev/s (target >= 5 M ev/s on CPU)")

    print("\n3. multi-step LIF, T x B x C x H x W = 8 x 32 x 16 x 64 x 64")
    x = torch.randn(8, 32, 16, 64, 64, device=dev)
    ours = LIF(decay=0.75, threshold=0.5)
    rows = [("spikelens LIF", ours)]
    try:
        from spikingjelly.activation_based import neuron, surrogate

        sj = neuron.LIFNode(
            tau=4.0, decay_input=False, v_threshold=0.5, v_reset=0.0, step_mode="m", surrogate_function=surrogate.Rect()
        ).to(dev)
        rows.append(("SpikingJelly LIFNode", sj))
    except ImportError:
        print("   (SpikingJelly not installed: pip install --no-deps spikingjelly==2.0.0)")
    print(f"   {'':<22} {'forward ms':>11} {'fwd+bwd ms':>11}")
    for name, layer in rows:

        def fwd(layer=layer):
            with torch.no_grad():
                layer(x)
            if hasattr(layer, "reset"):
                layer.reset()

        def both(layer=layer):
            xi = x.clone().requires_grad_(True)
            layer(xi).sum().backward()
            if hasattr(layer, "reset"):
                layer.reset()

        f = statistics.median(timed(fwd, 5, sync))
        b = statistics.median(timed(both, 5, sync))
        print(f"   {name:<22} {f:11.1f} {b:11.1f}")


if __name__ == "__main__":
    main()
