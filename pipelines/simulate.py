"""Simulated recordings and datasets on disk: a video through the sensor model, E-SAI and DVS Gesture folders.

Every file is written atomically, and each dataset folder gets a
``manifest.json`` recording the seed, configuration and per-sample draws, so
a dataset can be regenerated bit for bit and audited (e.g. which source image
went to which split).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets.atomic import atomic_output
from spikelens.datasets.collections.dvs_gesture import CLASSES
from spikelens.datasets.errors import FormatError
from spikelens.datasets.formats.aedat3 import Aedat31Writer
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.formats.hdf5 import H5EventWriter, write_h5
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.simulator.gesture import GestureRenderer, Subject
from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene
from spikelens.datasets.simulator.sensor import SensorParams, frame_times, simulate_frames
from spikelens.datasets.simulator.textures import PHOTOS, PROCEDURAL, photos_available
from spikelens.pipelines.jobs import Job, ensure

__all__ = [
    "SAIConfig",
    "SensorParams",
    "photos_available",
    "simulate_video",
    "write_gesture_dataset",
    "write_sai_dataset",
]

SPLITS = ("train", "val", "test")
SPLIT_RULE = "val and test get 15 % each (rounded down), at least one each from 3 samples up; train the rest"
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")


def _write_json(path: Path, obj: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def _video_frames(path: Path, fps: float | None, size: tuple[int, int] | None) -> tuple[float, Iterator]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FormatError(path, "OpenCV cannot open this video (unknown container or codec)")
    fps = fps or cap.get(cv2.CAP_PROP_FPS)
    if not fps or fps <= 0:
        cap.release()
        raise FormatError(path, "the video does not state its frame rate; pass --fps")

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
                if size is not None:
                    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
                yield round(i * 1e6 / fps), grey
                i += 1
        finally:
            cap.release()

    return float(fps), frames()


def simulate_video(
    src: str | Path,
    dst: str | Path,
    params: SensorParams | None = None,
    seed: int = 0,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    job: Job | None = None,
) -> int:
    """Events of a video file (frames at their own timestamps, log intensity interpolated between them) to HDF5."""
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"simulated video output must be .h5 or .hdf5, got {dst.name}")
    if not src.is_file():
        raise FormatError(src, "no such file")
    params = params or SensorParams()
    job = ensure(job)
    fps, frames = _video_frames(src, fps, size)
    first = next(frames, None)
    if first is None:
        raise FormatError(src, "the video has no readable frames")
    h, w = first[1].shape[:2]
    extra = {"source_video": src.name, "fps": fps, "seed": seed, **asdict(params)}
    meta = RecordingMeta(dst, "simulated-video", w, h, "simulated", extra)
    n = 0
    with atomic_output(dst, ".h5") as tmp, H5EventWriter(tmp, meta) as out:
        for k, ev in enumerate(simulate_frames(itertools.chain([first], frames), params, seed)):
            out.append(ev)
            n += ev.size
            job.report(k + 2, None, f"frames, {n:,} events")
    return n


def _split_counts(count: int, fractions: tuple[float, float, float]) -> list[int]:
    n_val = int(count * fractions[1])
    n_test = int(count * fractions[2])
    if count >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    return [count - n_val - n_test, n_val, n_test]


def _photo_pools(rng: np.random.Generator, fractions: tuple[float, float, float]) -> list[list[str]]:
    """Disjoint photo sets per split; empty when scikit-image is absent (procedural targets only)."""
    if not photos_available():
        return [[], [], []]
    photos = list(rng.permutation(PHOTOS))
    n_val = max(1, round(len(photos) * fractions[1]))
    n_test = max(1, round(len(photos) * fractions[2]))
    n_train = len(photos) - n_val - n_test
    return [photos[:n_train], photos[n_train : n_train + n_val], photos[n_train + n_val :]]


def write_sai_dataset(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    config: SAIConfig | None = None,
    formats: tuple[str, ...] = ("npy",),
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    job: Job | None = None,
) -> dict[str, Any]:
    """``count`` E-SAI samples in ``out_dir/<split>/NNNN.<format>``; no source image is shared between splits.

    ``formats``: ``npy`` (E-SAI's own layout, about 13 bytes an event) and/or ``h5`` (SpikeLens HDF5,
    compressed: about 4 bytes an event); the manifest names the first.

    Half of the targets are photographs (when scikit-image is installed), half
    procedural textures whose seeds are unique to their sample.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if not formats or set(formats) - {"npy", "h5"}:
        raise ValueError(f"formats must be npy and/or h5, got {formats}")
    job = ensure(job)
    cfg = config or SAIConfig()
    out = Path(out_dir)
    master = np.random.default_rng(seed)
    pools = _photo_pools(master, fractions)
    children = np.random.SeedSequence(seed).spawn(count)
    samples = []
    i = 0
    for split, n, pool in zip(SPLITS, _split_counts(count, fractions), pools, strict=True):
        (out / split).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            rng = np.random.default_rng(children[i])
            if pool and rng.random() < 0.5:
                source = f"photo:{pool[int(rng.integers(len(pool)))]}"
            else:
                source = f"procedural:{PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]}:{seed * 100_000 + i}"
            events, meta = simulate_scene(make_scene(source, rng, cfg), rng)
            path = out / split / f"{i:04d}.{formats[0]}"
            if "npy" in formats:
                with atomic_output(path.with_suffix(".npy"), ".npy") as tmp:
                    write_esai(tmp, events, meta)
            if "h5" in formats:
                with atomic_output(path.with_suffix(".h5"), ".h5") as tmp:
                    write_h5(tmp, events, replace(meta, path=tmp, extra={**meta.extra, "source": source}))
            x = meta.extra
            keys = ("depth", "occluder_depth", "occluder_kind", "occluder_coverage")
            samples.append(
                {"file": f"{split}/{path.name}", "split": split, "source": source, "events": int(events.size)}
            )
            samples[-1].update({k: x[k] for k in keys})
            i += 1
            job.report(i, count, f"{split}/{path.name}")
    manifest = {
        "generator": f"spikelens {version('spikelens')} simulate sai",
        "seed": seed,
        "count": count,
        "photos": photos_available(),
        "config": asdict(cfg),
        "samples": samples,
    }
    _write_json(out / "manifest.json", manifest)
    return manifest


#: what a simulated SAI scene costs on disk, measured: events per pixel per second of sweep, and bytes
#: per event in each format (HDF5 compresses; E-SAI's .npy stores x, y, t as float seconds and p)
EVENTS_PER_PIXEL_S = 55
BYTES_PER_EVENT = {"npy": 13.0, "h5": 4.0}


def estimate_sai_bytes(cfg: SAIConfig, formats: tuple[str, ...]) -> int:
    """A typical scene's size on disk (its APS frames included), to say before writing many."""
    pixels = cfg.width * cfg.height
    events = EVENTS_PER_PIXEL_S * pixels * cfg.duration_us / 1e6
    frames = cfg.aps_fps * cfg.duration_us / 1e6 * pixels * 2  # occluded frames and the ground truth
    return int(sum(events * BYTES_PER_EVENT[f] + frames for f in formats))


def _segments(rng: np.random.Generator, segment_s: tuple[float, float], gap_us: int) -> list[tuple[int, int, int]]:
    t = gap_us
    segs = []
    for label in rng.permutation(len(CLASSES)):
        length = int(rng.uniform(*segment_s) * 1e6)
        segs.append((int(label), t, t + length))
        t += length + gap_us
    return segs


def write_gesture_dataset(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    segment_s: tuple[float, float] = (1.5, 3.0),
    test_fraction: float = 0.2,
    step_us: int = 1000,
    job: Job | None = None,
) -> dict[str, Any]:
    """``count`` recordings in the original DVS128 Gesture layout (``out_dir/DvsGesture``): one subject each,
    all 11 classes in random order, AEDAT 3.1 + ``_labels.csv``, and ``trials_to_train/test.txt`` by subject."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if not 0 < segment_s[0] <= segment_s[1]:
        raise ValueError("segment_s must be (shortest, longest) seconds, shortest > 0")
    job = ensure(job)
    base = Path(out_dir) / "DvsGesture"
    base.mkdir(parents=True, exist_ok=True)
    gap_us = 400_000
    n_test = min(count - 1, max(1, round(count * test_fraction))) if count > 1 else 0
    names, records = [], []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
        rng = np.random.default_rng(child)
        lighting = LIGHTINGS[int(rng.integers(len(LIGHTINGS)))]
        params = SensorParams(
            threshold_on=float(rng.uniform(0.15, 0.3)),
            threshold_off=float(rng.uniform(0.15, 0.3)),
            noise_rate_hz=float(rng.uniform(0.05, 0.5)),
            hot_pixel_fraction=float(rng.choice([0.0, 2e-4])),
        )
        segs = _segments(rng, segment_s, gap_us)
        render = GestureRenderer(Subject.draw(rng), segs, rng)
        name = f"user{i + 1:02d}_{lighting}"
        duration = segs[-1][2] + gap_us
        n = 0
        times = frame_times(duration, step_us)
        with atomic_output(base / f"{name}.aedat", ".aedat") as tmp, Aedat31Writer(tmp) as out:
            for k, ev in enumerate(simulate_frames(((int(t), render(int(t))) for t in times), params, rng)):
                out.append(ev)
                n += ev.size
                if k % 500 == 0:  # a recording takes seconds: report within it too
                    job.report(i, count, f"{name}.aedat {100 * k // times.size} %")
        rows = "".join(f"{lab + 1},{t0},{t1}\n" for lab, t0, t1 in sorted(segs, key=lambda s: s[1]))
        with atomic_output(base / f"{name}_labels.csv", ".csv") as tmp:
            tmp.write_text("class,startTime_usec,endTime_usec\n" + rows)
        names.append(f"{name}.aedat")
        records.append({"file": f"{name}.aedat", "events": n, "lighting": lighting, "params": asdict(params)})
        job.report(i + 1, count, f"{name}.aedat done")
    for fname, chosen in (
        ("trials_to_train.txt", names[: count - n_test]),
        ("trials_to_test.txt", names[count - n_test :]),
    ):
        with atomic_output(base / fname, ".txt") as tmp:
            tmp.write_text("".join(f"{c}\n" for c in chosen))
    manifest = {
        "generator": f"spikelens {version('spikelens')} simulate gesture",
        "seed": seed,
        "count": count,
        "recordings": records,
    }
    _write_json(base / "manifest.json", manifest)
    return manifest
