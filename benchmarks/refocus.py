"""Refocus + pack throughput: SpikeLens kernels vs NumPy paths, same stream, one run.

    python benchmarks/refocus.py [--events 5000000] [--bins 30] [--repeat 5]

One synthetic SAI stream (textured target at 1 m behind an occluder at
0.4 m, DAVIS346 346x260, E-SAI geometry fx = 320 px, v = 0.177 m/s) is
refocused at the target depth and packed into T ON/OFF frames by:

* ours: the Numba kernel (all cores), generic and E-SAI-compatible modes,
  allocating its output or refilling one (as a replay loop would);
* our NumPy reference (np.add.at), the parity twin of the kernel;
* tonic's to_frame_numpy(n_time_bins=T): packing only, no refocusing;
* a vectorised NumPy transcription of E-SAI's Preprocess.py.

Then autofocus on a simulated occluded scene of 5.4 M events (the issue's
bar: under 1 s on 2 cores): ours seeing through the occluder, ours stopping
at the strongest plane, and the classic global contrast maximum, with the
depth each finds. Medians of --repeat runs; the machine is shared, so
compare ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from peers import contrast_maximum

from spikelens.datasets.patterns import sai_points
from spikelens.datasets.sai_scene import ESAI_FX, ESAI_V, SAIScene
from spikelens.datasets.sensor_size import DAVIS346
from spikelens.refocus import autofocus, pack_frames, pack_frames_esai, shift_rate
from spikelens.refocus import reference as ref

FX, V, DEPTH, SENSOR = ESAI_FX, ESAI_V, 1.0, DAVIS346


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stream(n: int, seed: int = 0) -> tuple[np.ndarray, int]:
    ev, t_ref = sai_points(*SENSOR, FX, V, DEPTH, 0.4, n_events=int(n * 1.3), seed=seed)
    return ev[:n], t_ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--bins", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import tonic.functional

    ev, t_ref = stream(args.events)
    n, T = ev.size, args.bins
    rate = shift_rate(FX, V, DEPTH)
    scene = SAIScene(FX, V, t_ref, SENSOR)
    tonic_ev = np.empty(n, [("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "i1")])
    for f in "xytp":
        tonic_ev[f] = ev[f]
    buf = np.zeros((T, 2, *SENSOR.shape), np.int16)
    rows = [
        ("ours, Numba", lambda: pack_frames(ev, rate, t_ref, T, SENSOR)),
        ("ours, Numba, reused output", lambda: pack_frames(ev, rate, t_ref, T, SENSOR, out=buf)),
        ("ours, Numba, E-SAI mode", lambda: pack_frames_esai(ev, scene, DEPTH, T)),
        ("our NumPy reference", lambda: ref.pack_frames_reference(ev, rate, t_ref, T, SENSOR)),
        (
            "tonic to_frame_numpy (no refocus)",
            lambda: tonic.functional.to_frame_numpy(tonic_ev, (*SENSOR, 2), n_time_bins=T),
        ),
        ("E-SAI Preprocess.py in NumPy", lambda: ref.pack_frames_esai_reference(ev, scene, DEPTH, T)),
    ]
    print(f"refocus + pack: {n:,} events, {SENSOR}, T={T}, {os.cpu_count()} CPUs")
    print(f"{'path':<36}{'median ms':>11}{'Mev/s':>9}{'vs ours':>10}  (ours = Numba, reused output)")
    times = {name: median_time(fn, args.repeat if "Numba" in name else max(1, args.repeat // 2)) for name, fn in rows}
    ours = times["ours, Numba, reused output"]
    for name, t in times.items():
        print(f"{name:<36}{t * 1e3:>11.1f}{n / t / 1e6:>9.1f}{t / ours:>9.1f}x")

    autofocus_table(args.repeat)


def autofocus_table(repeat: int) -> None:
    """Autofocus on one simulated occluded scene (lattice at 0.26 m over a photograph at 0.69 m)."""
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    cfg = SAIConfig()
    rng = np.random.default_rng(0)
    scene = make_scene("photo:astronaut", rng, cfg)
    ev, meta = simulate_scene(scene, rng)
    sai = SAIScene.from_events(meta, ev)
    rows = [
        ("ours, see-through (default)", lambda: autofocus(ev, sai).depth),
        ("ours, strongest plane only", lambda: autofocus(ev, sai, see_through=False).depth),
        ("contrast maximum, 64 depths", lambda: contrast_maximum(ev, sai)),
    ]
    print(
        f"\nautofocus: {ev.size:,} events, {cfg.width}x{cfg.height}, target {scene.depth:.3f} m behind a "
        f"{scene.occluder.kind} at {scene.occluder_depth:.3f} m, {os.cpu_count()} CPUs"
    )
    print(f"{'path':<32}{'median ms':>11}{'found m':>10}{'error':>9}")
    for name, fn in rows:
        found = fn()
        t = median_time(fn, repeat)
        print(f"{name:<32}{t * 1e3:>11.0f}{found:>10.3f}{(found - scene.depth) / scene.depth:>+9.1%}")


if __name__ == "__main__":
    main()
