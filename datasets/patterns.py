"""Analytic event patterns: known ground truth for tests, benchmarks and the demo.

Not a camera simulator (that is the simulator issue's job): events are drawn
directly where an ideal sensor would fire, which keeps their statistics
simple enough to assert on.
"""

from __future__ import annotations

import numpy as np

from spikelens.datasets.events import empty_events
from spikelens.datasets.sai_scene import ESAI_FX, ESAI_V
from spikelens.datasets.sensor_size import DAVIS346


def rotating_bar(
    width: int = 128,
    height: int = 128,
    duration_us: int = 1_000_000,
    n_events: int = 200_000,
    turns_per_s: float = 1.0,
    noise_fraction: float = 0.02,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """A bar spinning about the sensor centre: ON events on its leading edge, OFF on the trailing one.

    A fraction of events is uniform background noise. Time-sorted.
    """
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n_events, dtype=np.int64))
    angle = 2 * np.pi * turns_per_s * t / 1e6
    radius = rng.uniform(-0.45, 0.45, n_events) * min(width, height)
    side = rng.integers(0, 2, n_events)  # 1 = leading edge (ON), 0 = trailing (OFF)
    offset = np.where(side == 1, 1.0, -1.0) + rng.normal(0, 0.3, n_events)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    x = cx + radius * np.cos(angle) - offset * np.sin(angle)
    y = cy + radius * np.sin(angle) + offset * np.cos(angle)
    noise = rng.random(n_events) < noise_fraction
    x[noise] = rng.uniform(0, width, noise.sum())
    y[noise] = rng.uniform(0, height, noise.sum())
    ev = empty_events(n_events)
    ev["t"] = t
    ev["x"] = np.clip(np.rint(x), 0, width - 1)
    ev["y"] = np.clip(np.rint(y), 0, height - 1)
    ev["p"] = np.where(noise, rng.integers(0, 2, n_events), side)
    return ev


def random_events(
    n: int, width: int, height: int, rate_hz: float = 5e6, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Uniform random, time-sorted events at ``rate_hz`` (benchmark and fuzz input)."""
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    ev["t"] = np.cumsum(rng.exponential(1e6 / rate_hz, n)).astype(np.int64)
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def sai_points(
    width: int = DAVIS346.width,
    height: int = DAVIS346.height,
    fx: float = ESAI_FX,
    v: float = ESAI_V,
    depth: float = 1.0,
    occluder_depth: float | None = 0.4,
    duration_us: int = 1_000_000,
    n_events: int = 500_000,
    n_points: int = 3000,
    occluder_fraction: float = 0.4,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, int]:
    """Events of textured planes seen by a camera sliding along +x (synthetic aperture geometry).

    Scene points at depth d drift across the sensor at -fx*v/d px/s; each
    event is one point seen at a random time. Returns (events, t_ref_us) with
    t_ref the middle of the recording, where refocusing at ``depth`` puts every
    target point back at its reference position.
    """
    rng = np.random.default_rng(seed)
    t_ref = duration_us // 2
    planes = [(depth, 1.0 - (occluder_fraction if occluder_depth else 0.0))]
    if occluder_depth:
        planes.append((occluder_depth, occluder_fraction))
    parts = []
    for d, share in planes:
        n = round(n_events * share)
        rate = fx * v / d
        reach = rate * duration_us / 2e6
        px = rng.uniform(-reach, width + reach, n_points)
        py = rng.integers(0, height, n_points)
        pol = rng.integers(0, 2, n_points)
        k = rng.integers(0, n_points, n)
        t = rng.integers(0, duration_us, n)
        x = np.rint(px[k] - rate * (t - t_ref) / 1e6).astype(np.int64)
        inside = (x >= 0) & (x < width)
        ev = empty_events(int(inside.sum()))
        ev["t"], ev["x"], ev["y"], ev["p"] = t[inside], x[inside], py[k][inside], pol[k][inside]
        parts.append(ev)
    ev = np.concatenate(parts)
    return ev[np.argsort(ev["t"], kind="stable")], t_ref
