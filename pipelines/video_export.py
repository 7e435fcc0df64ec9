"""Render a time range of a recording to MP4 (a job: progress per frame, cancellable, atomic)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from spikelens.datasets.atomic import atomic_output
from spikelens.pipelines.display_frames import FrameBuilder, FrameSettings, to_rgb
from spikelens.pipelines.jobs import Job, ensure


def export_video(
    builder: FrameBuilder,
    settings: FrameSettings,
    path: str | Path,
    t0_us: int,
    t1_us: int,
    fps: float = 30.0,
    speed: float = 1.0,
    job: Job | None = None,
) -> int:
    """Render [t0, t1) to an MP4 (OpenCV mp4v) at ``speed`` x real time; returns frames written."""
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: video export writes MP4; name the file .mp4")
    job = ensure(job)
    step = max(1, round(1e6 * speed / fps))
    times = np.arange(t0_us + step, t1_us + 1, step)
    if times.size == 0:
        raise ValueError("the export range is shorter than one frame")
    w, h = builder.sensor
    with atomic_output(path, path.suffix) as tmp:
        out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not out.isOpened():
            raise OSError(f"OpenCV cannot write {path.name} (no mp4v encoder)")
        try:
            for k, t in enumerate(times):
                out.write(to_rgb(builder.frame(int(t), settings).image, settings)[..., ::-1])
                job.report(k + 1, int(times.size), "rendering video")
        finally:
            out.release()
    return int(times.size)
