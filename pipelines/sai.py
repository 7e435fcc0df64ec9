"""Synthetic-aperture refocusing of a recording: the work behind `spikelens refocus`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelens.datasets import atomic_output, open_recording
from spikelens.datasets.sai_scene import DEPTH_RANGE, SAIScene
from spikelens.pipelines.images import check_suffix, write_png
from spikelens.refocus import (
    AutofocusResult,
    CheckedEvents,
    accumulate,
    autofocus,
    check_events,
    pack_frames,
    pack_frames_esai,
)
from spikelens.refocus.frames import Roi


@dataclass(frozen=True)
class RefocusOutput:
    frames: np.ndarray  # T x 2 x H x W counts, channel 0 = ON
    image: np.ndarray | None  # H x W refocused event counts (ROI crop), when asked for
    depth: float
    scene: SAIScene
    autofocus: AutofocusResult | None


def open_sai(
    path: str | Path, *, fx: float | None = None, v: float | None = None, t_ref_us: int | None = None
) -> tuple[CheckedEvents, SAIScene]:
    """(events, scene) of an SAI recording, checked at the door; explicit fx, v, t_ref win over the file's."""
    with open_recording(path) as rec:
        events, meta = rec.load(), rec.meta
    scene = SAIScene.from_events(meta, events, fx=fx, v=v, t_ref_us=t_ref_us).require_geometry(path)
    return check_events(events), scene


def refocus_recording(
    path: str | Path,
    depth: float | None = None,
    *,
    bins: int = 30,
    roi: Roi | None = None,
    esai_compat: bool = False,
    fx: float | None = None,
    v: float | None = None,
    t_ref_us: int | None = None,
    depth_range: tuple[float, float] = DEPTH_RANGE,
    with_image: bool = False,
) -> RefocusOutput:
    """Refocus ``path`` at ``depth`` metres, or at the autofocus depth when ``depth`` is None.

    fx, v and t_ref come from the file's SAI metadata (E-SAI samples, the
    simulator) unless given (see :class:`SAIScene` for the t_ref default).
    """
    events, scene = open_sai(path, fx=fx, v=v, t_ref_us=t_ref_us)
    found = None
    if depth is None:
        found = autofocus(events, scene, depth_range, roi=roi)
        depth = found.depth
    rate = scene.rate(depth)
    if esai_compat:
        frames = pack_frames_esai(events, scene, depth, bins, roi, dtype=np.int16)
    else:
        frames = pack_frames(events, rate, scene.t_ref_us, bins, scene.sensor, roi)
    image = accumulate(events, rate, scene.t_ref_us, scene.sensor, roi) if with_image else None
    return RefocusOutput(frames, image, float(depth), scene, found)


def save_npz(result: RefocusOutput, path: str | Path) -> None:
    """pos / neg (T x H x W int16, E-SAI's naming), the depth, the geometry and the occluder's depth
    (NaN unless autofocus found the target behind one); atomic."""
    path = check_suffix(path, ".npz", "the refocused frames")
    g = result.scene
    occluder = result.autofocus.occluder_depth if result.autofocus else None
    with atomic_output(path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            pos=result.frames[:, 0].astype(np.int16),
            neg=result.frames[:, 1].astype(np.int16),
            depth=result.depth,
            fx=g.fx,
            v=g.v,
            t_ref_us=g.t_ref_us,
            occluder_depth=np.nan if occluder is None else occluder,
        )


def image_to_uint8(image: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """Counts to a displayable 8-bit image, clipping the brightest ``100 - percentile`` %."""
    img = np.asarray(image, np.float64)
    top = np.percentile(img[img > 0], percentile) if np.any(img > 0) else 1.0
    return np.clip(img / max(top, 1e-9) * 255.0, 0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str | Path) -> None:
    write_png(image_to_uint8(image), path)
