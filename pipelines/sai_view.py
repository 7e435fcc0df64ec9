"""The SAI view's computations, Qt-free: a focal stack for smooth depth scrubbing, exact refocus, autofocus.

The GUI runs each of these on a worker thread. The stack is spaced evenly in
inverse depth (even steps in image shift), so neighbouring slider positions
differ by the same amount of refocus everywhere in the range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from spikelens.pipelines.jobs import Job, ensure
from spikelens.pipelines.sai import image_to_uint8
from spikelens.pipelines.sai_world import network_inputs
from spikelens.refocus import SAIGeometry, accumulate, autofocus
from spikelens.refocus.autofocus import DEPTH_RANGE, AutofocusResult, focal_stack


@dataclass(frozen=True)
class SAIInputs:
    events: np.ndarray
    geometry: SAIGeometry
    sensor: tuple[int, int]  # H, W
    depth_range: tuple[float, float] = (0.3, 5.0)
    ground_truth: np.ndarray | None = None
    true_depth: float | None = None


def depth_grid(depth_range: tuple[float, float], n: int) -> np.ndarray:
    """``n`` depths from near to far, evenly spaced in 1/depth."""
    near, far = depth_range
    if not 0 < near < far:
        raise ValueError(f"depth range must satisfy 0 < near < far, got {depth_range}")
    return 1 / np.linspace(1 / near, 1 / far, n)


def stack(
    inp: SAIInputs,
    n: int = 48,
    chunk: int = 8,
    job: Job | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(depths, D x H x W uint8 images), computed ``chunk`` depths at a time so it can be cancelled."""
    job = ensure(job)
    depths = depth_grid(inp.depth_range, n)
    g = inp.geometry
    out = np.zeros((n, *inp.sensor), np.uint8)
    for i in range(0, n, chunk):
        job.check()
        imgs = focal_stack(inp.events, g.fx, g.v, g.t_ref_us, depths[i : i + chunk], inp.sensor)
        for k, img in enumerate(imgs):
            out[i + k] = image_to_uint8(img)
        job.report(min(i + chunk, n), n, "focal stack")
    return depths, out


def refocused(inp: SAIInputs, depth: float) -> tuple[float, np.ndarray]:
    """The exact refocused image at ``depth`` (uint8); ``depth <= 0`` gives the unfocused sum."""
    rate = inp.geometry.rate(depth) if depth > 0 else 0.0
    return depth, image_to_uint8(accumulate(inp.events, rate, inp.geometry.t_ref_us, inp.sensor))


def run_autofocus(inp: SAIInputs) -> AutofocusResult:
    """Autofocus over the slider's range widened to the default sweep, so a fence nearer than the slider shows."""
    g = inp.geometry
    near, far = min(inp.depth_range[0], DEPTH_RANGE[0]), max(inp.depth_range[1], DEPTH_RANGE[1])
    return autofocus(inp.events, g.fx, g.v, g.t_ref_us, inp.sensor, (near, far))


@dataclass(frozen=True)
class ReconstructView:
    depth: float
    image: np.ndarray  # H x W uint8
    net_ms: float
    psnr: float | None  # against the ground truth, when the recording has one
    ssim: float | None


def reconstructed(inp: SAIInputs, depth: float, model, bins: int = 30) -> ReconstructView:
    """What ``spikelens reconstruct --depth`` computes, on the open recording: E-SAI's packing, the network,
    and PSNR / SSIM against the ground truth."""
    from spikelens.pipelines.reconstruction import output_to_uint8, psnr, run_model, ssim  # the model's own deps

    inputs = network_inputs(inp.events, inp.geometry, depth, bins, inp.sensor)
    t0 = time.perf_counter()
    image = output_to_uint8(run_model(model, inputs.frames, inputs.physics))
    net_ms = (time.perf_counter() - t0) * 1e3
    gt = inp.ground_truth
    scores = (psnr(image, gt), ssim(image, gt)) if gt is not None and gt.shape == image.shape else (None, None)
    return ReconstructView(depth, image, net_ms, *scores)
