"""Occlusion-robust frame-based SAI: the APS frames refocused, each pixel's samples summarised by the
percentile that the events say is the target.

Refocused onto the target plane, a pixel's samples over the frames are the
target wherever the occluder did not cover it, and the occluder elsewhere.
Classic frame SAI averages them, so the occluder leaves a haze of its mean
shade over everything. A percentile does not mix: a high one is the target
where the occluder is darker than it, a low one where it is brighter. Which
one cannot be told from the frames alone (a uniform occluder is as steady as
the target), but the events can: their signed sum is the target's own
horizontal log gradient (:mod:`spikelens.refocus.integrate`), so the
percentile whose log gradient correlates best with it is the target's.

The frames carry absolute brightness, which events do not; they also blur
with the camera's motion, clip and saturate where events do not, which is why
both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The two percentiles tried: "the occluder is brighter" and "it is darker". Middle ones mix the two
#: layers, and their smoother gradients can correlate with the events' about as well (on the 16 held-out
#: scenes, 25 won where 10 was 4-6 dB better), so they are not offered.
PERCENTILES = (10, 90)
#: Added to the [0, 1] intensity before the log (as the simulator's pixels do).
LOG_EPS = 0.01


@dataclass(frozen=True)
class RobustFrameSAI:
    image: np.ndarray  # H x W uint8
    percentile: int  # the one the events chose
    agreement: float  # its gradient's correlation with the events' (1 = the events' own structure)


def refocused_frames(aps: np.ndarray, aps_t_us: np.ndarray, rate: float, t_ref_us: int) -> np.ndarray:
    """N x H x W float32: each frame shifted by rate * (t - t_ref) px (bilinear), NaN where less than half of
    a pixel's interpolation weight falls on the frame (a NaN border would also blank the edge rows)."""
    n, h, w = aps.shape
    out = np.empty((n, h, w), np.float32)
    ones = np.ones((h, w), np.float32)
    for i, (frame, t) in enumerate(zip(aps, np.asarray(aps_t_us, np.int64), strict=True)):
        m = np.float32([[1, 0, rate * (int(t) - int(t_ref_us)) / 1e6], [0, 1, 0]])
        value = cv2.warpAffine(frame.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
        weight = cv2.warpAffine(ones, m, (w, h), flags=cv2.INTER_LINEAR)
        out[i] = np.where(weight >= 0.5, value / np.maximum(weight, 1e-6), np.nan)
    return out


def robust_frame_sai(stack: np.ndarray, gradient: np.ndarray, seen: np.ndarray) -> RobustFrameSAI:
    """The percentile image of ``stack`` (from :func:`refocused_frames`) whose horizontal log gradient best
    matches the events' ``gradient`` (H x W, :attr:`Integrated.gradient`) over the ``seen`` columns (W bool)."""
    if stack.ndim != 3 or stack.shape[1:] != gradient.shape or seen.shape != gradient.shape[1:]:
        raise ValueError(f"frames {stack.shape}, gradient {gradient.shape} and columns {seen.shape} disagree")
    covered = np.isfinite(stack).any(0)
    if not covered.any() or not seen.any():
        raise ValueError("no refocused frame covers the columns the events saw")
    safe = np.where(covered[None], stack, 0.0)  # a pixel no frame reaches: 0 in every percentile, never NaN
    levels = np.nanpercentile(safe, PERCENTILES, axis=0)
    g = gradient[:, seen].astype(np.float64)
    best: RobustFrameSAI | None = None
    for p, img in zip(PERCENTILES, levels, strict=True):
        log = np.log(img / 255.0 + LOG_EPS)
        ga = np.zeros_like(log)
        ga[:, :-1] = log[:, 1:] - log[:, :-1]
        ga = ga[:, seen]
        den = float(np.sqrt((g * g).sum() * (ga * ga).sum()))
        rho = float((g * ga).sum() / den) if den > 0 else 0.0
        if best is None or rho > best.agreement:
            best = RobustFrameSAI(np.clip(np.rint(img), 0, 255).astype(np.uint8), p, rho)
    assert best is not None
    return best
