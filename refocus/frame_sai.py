"""Occlusion-robust frame-based SAI: the APS frames refocused, each pixel's samples summarised by the
percentile that is not the occluder.

Refocused onto the target plane, a pixel's samples over the frames are the
target wherever the occluder did not cover it, and the occluder elsewhere.
Classic frame SAI averages them, so the occluder leaves a haze of its mean
shade over everything. A percentile does not mix: a low one (the 10th) is
min(target, occluder) and a high one (the 90th) max(target, occluder), for
any pixel the occluder covered and uncovered at least a tenth of the time.
One of the two is the occluder, and a uniform occluder (a fence, a
lattice) is one shade wherever it covers, while the target changes from
pixel to pixel: the grey level the two percentile images share most is the
occluder's (:func:`occluder_shade`), and at each pixel the percentile
farther from it is the target (:func:`shade_choice`). That holds where the occluder is darker than the
target, brighter, or inside the target's range (the target then darker in
some places and brighter in others), which no whole-image choice of one
percentile can follow; where the target is near the occluder's shade the
two are near each other and either will do.

The events can choose too, for the whole image (:func:`events_choice`):
their signed sum is the target's own horizontal log gradient
(:mod:`spikelens.refocus.integrate`), so the percentile whose log gradient
correlates best with it is the target's where the occluder is darker or
brighter than all of it. That was this module's first rule; on 56
held-out recordings the shade's per-pixel choice scored 0.14 dB less than
it at worst, and up to 28 dB more where the occluder's shade lay inside the
picture's range. A textured occluder (leaves) has no single shade, and there neither
rule is right everywhere.

The frames carry absolute brightness, which events do not; they also blur
with the camera's motion, clip and saturate where events do not, which is why
both are reported, and why a network that reads both (:func:`aps_channels`)
is trained on frames of every quality and on none.
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
#: The channels :func:`aps_channels` gives a network: :func:`aps_images` and whether there were frames.
APS_CHANNELS = 4


#: One sigma, in grey levels, of the smoothing of the two percentile images' histogram before its peak is
#: taken for the occluder's shade: wider than the frames' noise (1 % of the range is 2.6 levels), so the
#: occluder's one peak is not split, narrower than the picture's tones.
SHADE_SMOOTH = 2.0
#: The smoothing kernel's half-width, in grey levels (4 sigma).
SHADE_RADIUS = 8


@dataclass(frozen=True)
class RobustFrameSAI:
    image: np.ndarray  # H x W uint8
    shade: int  # the occluder's grey level, as the two percentile images give it
    low_share: float  # the share of pixels where the 10th percentile is the target (the occluder brighter)


@dataclass(frozen=True)
class RefocusedFrames:
    """The APS frames shifted onto the target plane, warped once for both frame SAIs.

    ``values`` is each warped frame and ``weights`` the share of its bilinear weight that fell on the
    frame (1 inside, less at the edges it slid off), both N x H x W float32.
    """

    values: np.ndarray
    weights: np.ndarray

    def crop(self, roi: tuple[int, int, int, int] | None) -> RefocusedFrames:
        if roi is None:
            return self
        y, x, h, w = roi
        return RefocusedFrames(self.values[:, y : y + h, x : x + w], self.weights[:, y : y + h, x : x + w])

    def samples(self) -> np.ndarray:
        """N x H x W: each frame's value at a pixel, NaN where less than half its weight fell on the frame
        (weighting the edges keeps the border rows, which a NaN border value would blank)."""
        w = self.weights
        return np.where(w >= 0.5, self.values / np.maximum(w, 1e-6), np.nan).astype(np.float32)


def refocus_frames(aps: np.ndarray, aps_t_us: np.ndarray, rate: float, t_ref_us: int) -> RefocusedFrames:
    """Each frame shifted by rate * (t - t_ref) px, as events are (sub-pixel, bilinear)."""
    n, h, w = aps.shape
    values, weights = np.empty((n, h, w), np.float32), np.empty((n, h, w), np.float32)
    ones = np.ones((h, w), np.float32)
    for i, (frame, t) in enumerate(zip(aps, np.asarray(aps_t_us, np.int64), strict=True)):
        m = np.float32([[1, 0, rate * (int(t) - int(t_ref_us)) / 1e6], [0, 1, 0]])
        values[i] = cv2.warpAffine(frame.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
        weights[i] = cv2.warpAffine(ones, m, (w, h), flags=cv2.INTER_LINEAR)
    return RefocusedFrames(values, weights)


def frame_sai(frames: RefocusedFrames) -> np.ndarray:
    """The classic frame-based SAI (H x W uint8): the refocused frames averaged where they cover a pixel."""
    total = frames.values.sum(0, dtype=np.float64)
    weight = frames.weights.sum(0, dtype=np.float64)
    return np.clip(np.rint(total / np.maximum(weight, 1e-6)), 0, 255).astype(np.uint8)


def frame_sai_image(aps: np.ndarray, aps_t_us: np.ndarray, rate: float, t_ref_us: int) -> np.ndarray:
    """:func:`frame_sai` of the frames refocused at ``rate``: the classic SAI baseline in one call."""
    return frame_sai(refocus_frames(aps, aps_t_us, rate, t_ref_us))


def nan_percentiles(stack: np.ndarray, percentiles: tuple[int, ...]) -> np.ndarray:
    """``np.nanpercentile(stack, percentiles, axis=0)`` (linear interpolation), 0 where a pixel has no
    finite sample: one sort instead of NumPy's per-pixel selection, 30x faster on 20 frames at 346 x 260."""
    s = np.sort(stack, axis=0)  # NaNs sort last
    n = np.isfinite(stack).sum(0)
    last = np.maximum(n - 1, 0)
    out = np.empty((len(percentiles), *stack.shape[1:]), np.float64)
    for k, p in enumerate(percentiles):
        pos = p / 100.0 * last
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, last)
        a = np.take_along_axis(s, lo[None], 0)[0].astype(np.float64)
        b = np.take_along_axis(s, hi[None], 0)[0].astype(np.float64)
        out[k] = np.where(n > 0, a + (pos - lo) * (b - a), 0.0)
    return out


def frame_percentiles(frames: RefocusedFrames) -> np.ndarray:
    """The :data:`PERCENTILES` images of the refocused ``frames`` (2 x H x W float64), computed once for
    :func:`robust_frame_sai` and :func:`aps_images`."""
    return nan_percentiles(frames.samples(), PERCENTILES)


def shade_kernel() -> np.ndarray:
    """The :data:`SHADE_SMOOTH` Gaussian over -:data:`SHADE_RADIUS`..:data:`SHADE_RADIUS` grey levels."""
    x = np.arange(-SHADE_RADIUS, SHADE_RADIUS + 1, dtype=np.float64)
    return np.exp(-0.5 * (x / SHADE_SMOOTH) ** 2)


def occluder_shade(percentiles: np.ndarray) -> int:
    """The grey level (0-255) that the two percentile images (2 x H x W, :func:`frame_percentiles`) share
    most: the peak of their joint histogram of rounded levels, smoothed by :func:`shade_kernel`.

    Every pixel the occluder covered part of the time has it in one of its two percentiles, so its shade
    peaks over the whole image, while the target's levels spread over its tones; a flat target region
    (a sky) adds a peak of its own only as large as its area.
    """
    levels = np.clip(np.rint(percentiles), 0, 255).astype(np.intp)
    hist = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    return int(np.argmax(np.convolve(hist, shade_kernel(), "same")))


def shade_choice(percentiles: np.ndarray, shade: float) -> np.ndarray:
    """H x W bool: where the 10th percentile is farther from the occluder's ``shade`` than the 90th (the
    target is there the 10th; elsewhere, ties included, the 90th). ``percentiles``: 2 x H x W grey levels."""
    lo, hi = np.rint(percentiles[0]), np.rint(percentiles[1])
    return np.abs(lo - shade) > np.abs(hi - shade)


def robust_frame_sai(frames: RefocusedFrames, percentiles: np.ndarray | None = None) -> RobustFrameSAI:
    """At each pixel, the percentile of the refocused ``frames`` that is farther from the occluder's shade
    (:func:`occluder_shade`, :func:`shade_choice`); ``percentiles``: :func:`frame_percentiles` of them,
    when already computed."""
    if not (frames.weights >= 0.5).any():
        raise ValueError("no refocused frame covers the target")
    both = frame_percentiles(frames) if percentiles is None else percentiles
    if both.shape != (len(PERCENTILES), *frames.values.shape[1:]):
        raise ValueError(f"percentile images {both.shape} do not match the frames {frames.values.shape}")
    shade = occluder_shade(both)
    low = shade_choice(both, shade)
    image = np.where(low, both[0], both[1])
    return RobustFrameSAI(np.clip(np.rint(image), 0, 255).astype(np.uint8), shade, float(low.mean()))


def events_choice(percentiles: np.ndarray, gradient: np.ndarray, seen: np.ndarray) -> tuple[int, float]:
    """The one percentile, of :data:`PERCENTILES`, whose horizontal log gradient best matches the events'
    ``gradient`` (H x W, :attr:`Integrated.gradient`) over the ``seen`` columns (W bool), and that
    correlation (1: the events' own structure): the events' whole-image choice, which
    :func:`spikelens.hybrid_net.reconstruct.target_first` gives a network first."""
    if percentiles.shape[1:] != gradient.shape or seen.shape != gradient.shape[1:]:
        shapes = f"percentiles {percentiles.shape}, gradient {gradient.shape} and columns {seen.shape}"
        raise ValueError(f"{shapes} disagree")
    if not seen.any():
        raise ValueError("the events saw no column")
    g = gradient[:, seen].astype(np.float64)
    best: tuple[int, float] | None = None
    for p, img in zip(PERCENTILES, percentiles, strict=True):
        log = np.log(img / 255.0 + LOG_EPS)
        ga = np.zeros_like(log)  # centred, as the events' gradient is (integrate: they land on rint(edge))
        ga[:, 1:-1] = 0.5 * (log[:, 2:] - log[:, :-2])
        ga = ga[:, seen]
        den = float(np.sqrt((g * g).sum() * (ga * ga).sum()))
        rho = float((g * ga).sum() / den) if den > 0 else 0.0
        if best is None or rho > best[1]:
            best = (p, rho)
    assert best is not None
    return best


def aps_images(
    frames: RefocusedFrames, percentiles: np.ndarray | None = None, classic: np.ndarray | None = None
) -> np.ndarray:
    """3 x H x W uint8 for the networks that read the frames: the 10th and 90th percentiles of the refocused
    frames (the target where the occluder is darker, and where it is brighter) and their mean (classic SAI).

    The network gets both percentiles, not the one :func:`robust_frame_sai` picks at each pixel, so it can
    judge for itself where the frames mislead (a textured occluder, blur, a saturated sensor).
    ``percentiles`` (:func:`frame_percentiles`) and ``classic`` (:func:`frame_sai`): of them, when already
    computed.
    """
    both = frame_percentiles(frames) if percentiles is None else percentiles
    mean = frame_sai(frames) if classic is None else classic
    images = np.concatenate([both, mean[None].astype(np.float64)])
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def aps_channels(images: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """4 x H x W float32: :func:`aps_images` in [0, 1] and a plane of ones, or zeros in all four when the
    recording has no frames (``images`` None).

    Not normalised, unlike the physics channels: the frames' absolute brightness, which events do not
    carry, is what they are read for; the flag plane lets one network serve recordings with and without.
    """
    out = np.zeros((APS_CHANNELS, *shape), np.float32)
    if images is not None:
        if images.shape != (APS_CHANNELS - 1, *shape):
            raise ValueError(f"APS images {images.shape} do not match {(APS_CHANNELS - 1, *shape)}")
        out[:-1] = np.asarray(images, np.float32) / 255.0
        out[-1] = 1.0
    return out
