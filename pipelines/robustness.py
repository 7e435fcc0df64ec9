"""How reconstruction holds up as one thing gets worse: threshold, noise, coverage, depth error, speed error.

Scenes are held-out photographs behind slanted fences at nominal settings
(contrast threshold 0.2, 0.1 Hz/pixel background activity, 50 % cover);
each axis varies one of them. Depth and speed errors refocus the nominal
scenes at the wrong rate: the rate is fx * v / d, so a speed error of e is
the depth error -e / (1 + e) and both are listed so a reader need not do
that sum. Every row scores the model beside the baselines (as shown, and
with the oracle's best affine fit).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spikelens.datasets import atomic_output
from spikelens.datasets.formats.hdf5 import write_h5
from spikelens.datasets.sensor_size import DAVIS346, SensorSize
from spikelens.datasets.simulator.world import FENCES, WorldSplit
from spikelens.pipelines.jobs import Job, ensure
from spikelens.pipelines.sai_world import simulate_world_split

#: axis -> levels; the simulated axes change the split, the refocusing ones the depth used
AXES: dict[str, tuple[float, ...]] = {
    "threshold": (0.1, 0.2, 0.4),
    "noise_hz": (0.0, 1.0, 3.0),
    "coverage": (0.3, 0.5, 0.7),
    "depth_error": (-0.04, 0.0, 0.04),
    "speed_error": (-0.04, 0.0, 0.04),
}
#: the columns each row reports (means over its scenes)
COLUMNS = (
    "psnr",
    "ssim",
    "events_only_psnr",
    "baseline_psnr",
    "integrate_psnr",
    "oracle_accumulation_psnr",
    "oracle_integrate_psnr",
)


@dataclass(frozen=True)
class Row:
    axis: str
    level: float
    n: int
    scores: dict[str, float]


def _split(axis: str, level: float) -> WorldSplit:
    if axis == "threshold":
        return replace(FENCES, threshold=(level, level))
    if axis == "noise_hz":
        return replace(FENCES, noise_hz=(level, level))
    if axis == "coverage":
        return replace(FENCES, coverage=(level, level))
    return FENCES


def robustness(
    model: str | Path | None, scenes: int = 3, seed: int = 0, sensor: SensorSize = DAVIS346, job: Job | None = None
) -> list[Row]:
    """One row per axis and level, each the mean over ``scenes`` simulated scenes (the same seeds on
    every row, so rows differ only in what their axis changes)."""
    from spikelens.hybrid_net.registry import load_model
    from spikelens.pipelines.reconstruction import load_sample, score_model

    job = ensure(job)
    net = load_model(model, "cpu", "reconstruction", "robustness") if model is not None else None
    total = sum(len(levels) for levels in AXES.values()) * scenes
    rows, done, cache = [], 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for axis, levels in AXES.items():
            for level in levels:
                split = _split(axis, level)
                scored = []
                for k in range(scenes):
                    key = (split, k)
                    if key not in cache:
                        _, events, meta = simulate_world_split(split, np.random.default_rng([seed, k]), sensor)
                        path = Path(tmp) / f"{len(cache):04d}.h5"
                        with atomic_output(path, ".h5") as out:
                            write_h5(out, events, meta)
                        cache[key] = (path, float(meta.extra["depth"]))
                    path, depth = cache[key]
                    if axis == "depth_error":
                        depth *= 1 + level
                    elif axis == "speed_error":
                        depth /= 1 + level
                    s = load_sample(path, depth)
                    scored.append(score_model(net, s, path))
                    done += 1
                    job.report(done, total, f"{axis} {level:g}")
                keys = [c for c in COLUMNS if all(c in r for r in scored)]
                rows.append(Row(axis, level, len(scored), {c: float(np.mean([r[c] for r in scored])) for c in keys}))
    return rows


def format_table(rows: list[Row]) -> str:
    """A plain-text table, one line per row."""
    cols = [c for c in COLUMNS if c in rows[0].scores]
    head = f"{'axis':<12}{'level':>8}" + "".join(f"{c.replace('_psnr', ''):>22}" for c in cols)
    lines = [head]
    for r in rows:
        lines.append(f"{r.axis:<12}{r.level:>8g}" + "".join(f"{r.scores[c]:>22.2f}" for c in cols))
    return "\n".join(lines)
