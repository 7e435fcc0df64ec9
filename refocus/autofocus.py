"""Find the depth of the hidden plane without being told: sweep, score, refine.

Refocusing at the right depth collapses each scene point's events onto one
pixel, so the event-count image is most contrasted there (the contrast
maximisation idea of Gallego et al., CVPR 2018). We sweep candidate depths
uniformly in inverse depth (shift rate is proportional to 1/d), score each
image, then sweep again finely around the best and interpolate the peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from spikelens.refocus.frames import Roi, check_events, focal_stack_images, stack_checked
from spikelens.refocus.geometry import RefocusError

Metric = Literal["variance", "gradient", "squares"]


def sharpness(images: np.ndarray, metric: Metric = "variance") -> np.ndarray:
    """Score each image of a D x H x W stack; higher is sharper.

    variance: of the pixel counts (contrast); gradient: mean squared finite
    differences (edge energy); squares: mean of squared counts (like variance,
    but rewards collapsing events even where the mean shifts with the ROI).
    """
    img = np.asarray(images, np.float64)
    flat = img.reshape(img.shape[0], -1)
    if metric == "variance":
        return flat.var(axis=1)
    if metric == "squares":
        return (flat**2).mean(axis=1)
    if metric == "gradient":
        gx = np.diff(img, axis=2)
        gy = np.diff(img, axis=1)
        return (gx**2).mean(axis=(1, 2)) + (gy**2).mean(axis=(1, 2))
    raise RefocusError(f"unknown sharpness metric {metric!r}: use variance, gradient or squares")


@dataclass(frozen=True)
class AutofocusResult:
    depth: float  # metres
    rate: float  # px/s
    depths: np.ndarray  # every depth scored, ascending
    scores: np.ndarray  # their scores


def _peak(x: np.ndarray, y: np.ndarray) -> float:
    """Vertex of the parabola through the best sample and its neighbours (x uniformly spaced)."""
    k = int(np.argmax(y))
    if 0 < k < len(y) - 1:
        y0, y1, y2 = y[k - 1], y[k], y[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            return float(x[k] + 0.5 * (y0 - y2) / denom * (x[1] - x[0]))
    return float(x[k])


def autofocus(
    events: np.ndarray,
    fx: float,
    v: float,
    t_ref_us: int,
    sensor: tuple[int, int] = (260, 346),
    depth_range: tuple[float, float] = (0.3, 5.0),
    n_coarse: int = 32,
    n_fine: int = 32,
    roi: Roi | None = None,
    metric: Metric = "variance",
) -> AutofocusResult:
    """Best-focus depth in ``depth_range`` (metres) for a camera moving at v m/s with focal length fx px."""
    d_lo, d_hi = depth_range
    if not 0 < d_lo < d_hi:
        raise RefocusError(f"depth range must satisfy 0 < near < far, got {depth_range}")
    if n_coarse < 3 or n_fine < 3:
        raise RefocusError("need at least 3 coarse and 3 fine depths")
    ev = check_events(events)  # once for both sweeps
    k = fx * v  # rate = k / depth
    inv = np.linspace(1 / d_hi, 1 / d_lo, n_coarse)
    scores = sharpness(stack_checked(ev, k * inv, t_ref_us, sensor, roi), metric)
    best = int(np.argmax(scores))
    step = inv[1] - inv[0]
    fine = np.linspace(max(inv[best] - step, inv[0]), min(inv[best] + step, inv[-1]), n_fine)
    fine_scores = sharpness(stack_checked(ev, k * fine, t_ref_us, sensor, roi), metric)
    inv_best = min(max(_peak(fine, fine_scores), 1 / d_hi), 1 / d_lo)
    all_inv = np.concatenate([inv, fine])
    all_scores = np.concatenate([scores, fine_scores])
    order = np.argsort(1 / all_inv)
    return AutofocusResult(1 / inv_best, k * inv_best, (1 / all_inv)[order], all_scores[order])


def focal_stack(
    events: np.ndarray,
    fx: float,
    v: float,
    t_ref_us: int,
    depths: np.ndarray,
    sensor: tuple[int, int] = (260, 346),
    roi: Roi | None = None,
) -> np.ndarray:
    """Refocused event-count images at each depth (D x H x W), for a depth slider."""
    depths = np.asarray(depths, np.float64)
    if np.any(depths <= 0):
        raise RefocusError("depths must be positive")
    return focal_stack_images(events, fx * v / depths, t_ref_us, sensor, roi)
