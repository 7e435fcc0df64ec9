"""The SAI view's computations, Qt-free: a focal stack for smooth depth scrubbing, exact refocus, reconstruction.

Each takes the recording's checked events and its one :class:`SAIScene`; the
GUI runs them on worker threads. The stack is spaced evenly in inverse depth
(even steps in image shift), so neighbouring slider positions differ by the
same amount of refocus everywhere in the range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from spikelens.datasets.sai_scene import VIEW_DEPTHS, SAIScene
from spikelens.pipelines.jobs import Job, ensure
from spikelens.pipelines.sai import image_to_uint8
from spikelens.pipelines.sai_world import network_inputs
from spikelens.refocus import CheckedEvents, accumulate
from spikelens.refocus.autofocus import focal_stack


def depth_grid(depth_range: tuple[float, float], n: int) -> np.ndarray:
    """``n`` depths from near to far, evenly spaced in 1/depth."""
    near, far = depth_range
    if not 0 < near < far:
        raise ValueError(f"depth range must satisfy 0 < near < far, got {depth_range}")
    return 1 / np.linspace(1 / near, 1 / far, n)


def stack(
    events: CheckedEvents,
    scene: SAIScene,
    depth_range: tuple[float, float] = VIEW_DEPTHS,
    n: int = 48,
    chunk: int = 8,
    job: Job | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(depths, D x H x W uint8 images), computed ``chunk`` depths at a time so it can be cancelled."""
    job = ensure(job)
    depths = depth_grid(depth_range, n)
    out = np.zeros((n, *scene.sensor.shape), np.uint8)
    for i in range(0, n, chunk):
        job.check()
        for k, img in enumerate(focal_stack(events, scene, depths[i : i + chunk])):
            out[i + k] = image_to_uint8(img)
        job.report(min(i + chunk, n), n, "focal stack")
    return depths, out


def refocused(events: CheckedEvents, scene: SAIScene, depth: float) -> tuple[float, np.ndarray]:
    """The exact refocused image at ``depth`` (uint8); ``depth <= 0`` gives the unfocused sum."""
    rate = scene.rate(depth) if depth > 0 else 0.0
    return depth, image_to_uint8(accumulate(events, rate, scene.t_ref_us, scene.sensor))


@dataclass(frozen=True)
class ReconstructView:
    depth: float
    image: np.ndarray  # H x W uint8
    net_ms: float
    psnr: float | None  # against the ground truth, when the recording has one
    ssim: float | None


def reconstructed(
    events: CheckedEvents, scene: SAIScene, depth: float, model, bins: int = 30, job: Job | None = None
) -> ReconstructView:
    """What ``spikelens reconstruct --depth D --precision fast`` computes, on the open recording: E-SAI's
    packing, the network (on the fast path: an interactive view wants the 1.5-2x more than the last 1e-5),
    and PSNR / SSIM against the ground truth. A cancelled ``job`` stops it before the network runs."""
    from spikelens.pipelines.reconstruction import output_to_uint8, psnr, run_model, ssim  # the model's own deps
    from spikelens.pipelines.reconstruction.inference import log_map_of, uses_aps

    job = ensure(job)
    job.check()
    inputs = network_inputs(events, scene, depth, bins, log_maps=(log_map_of(model),), with_aps=uses_aps(model))
    job.check()
    t0 = time.perf_counter()
    image = output_to_uint8(run_model(model, inputs.frames, inputs.physics, "fast"))
    net_ms = (time.perf_counter() - t0) * 1e3
    gt = scene.ground_truth
    scores = (psnr(image, gt), ssim(image, gt)) if gt is not None and gt.shape == image.shape else (None, None)
    return ReconstructView(depth, image, net_ms, *scores)
