"""One recording as every reconstruction reads it: refocused frames, physics, truth and the baselines.

NumPy only: what the networks read, the accumulation and frame-SAI baselines and the training-free
integration, from one refocusing of the recording (its events checked once, at the door).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelens.datasets.sai_scene import SAIScene
from spikelens.pipelines.sai import image_to_uint8, open_sai
from spikelens.pipelines.sai_world import network_inputs
from spikelens.refocus import accumulate, autofocus
from spikelens.refocus.frames import Roi
from spikelens.refocus.integrate import log_to_uint8


@dataclass(frozen=True)
class Sample:
    frames: np.ndarray  # T x 2 x H x W int16, channel 0 = ON
    truth: np.ndarray | None  # H x W uint8 occlusion-free frame, when the file has one
    baseline: np.ndarray  # H x W uint8: the refocused event accumulation, scaled as the SAI view shows it
    depth: float
    scene: SAIScene
    frame_sai: np.ndarray | None = None  # H x W uint8: the mean of the refocused APS frames, when there are any
    #: log map name -> 2 x H x W float32: the physics channels the new networks read (each its config's),
    #: and ``sai_world.APS`` -> the APS channels (:func:`spikelens.refocus.frame_sai.aps_channels`)
    physics: dict[str, np.ndarray] | None = None
    integrated: np.ndarray | None = None  # H x W uint8: the training-free reconstruction (--method integrate)
    log: np.ndarray | None = None  # H x W float32: its log map (unfolded), in units of the threshold
    integrate_ms: float = 0.0
    accumulation: np.ndarray | None = None  # H x W int32: the raw refocused event counts (oracle fits use them)
    #: H x W uint8: the occlusion-robust frame SAI (per pixel, the percentile away from the occluder's shade)
    frame_sai_robust: np.ndarray | None = None
    frames_ms: float = 0.0  # its time: refocusing the frames, both frame SAIs (and the APS images)


def load_sample(
    path: str | Path, depth: float | None = None, bins: int = 30, roi: Roi | None = None, auto: bool = False
) -> Sample:
    """Refocus ``path`` at ``depth``; by autofocus with ``auto`` or when neither it nor the file gives one."""
    events, scene = open_sai(path)
    if auto or (depth is None and not scene.depth):
        depth = autofocus(events, scene, roi=roi).depth
    elif depth is None:
        depth = scene.depth
    inputs = network_inputs(events, scene, depth, bins, roi)
    truth = scene.ground_truth
    if truth is not None and roi is not None:
        y, x, h, w = roi
        truth = truth[y : y + h, x : x + w]
    counts = accumulate(events, scene.rate(depth), scene.t_ref_us, scene.sensor, roi)
    baseline = image_to_uint8(counts)
    t0 = time.perf_counter()
    log = inputs.integrated.unfolded.log  # levelled and unfolded on demand: its time is integrate's too
    integrate_ms = inputs.integrate_ms + (time.perf_counter() - t0) * 1e3
    return Sample(
        inputs.frames,
        truth,
        baseline,
        float(depth),
        scene,
        inputs.frame_sai,
        inputs.physics,
        log_to_uint8(log),
        log,
        integrate_ms,
        counts,
        None if inputs.robust is None else inputs.robust.image,
        inputs.frames_ms,
    )
