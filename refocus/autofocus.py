"""Find the depth of the hidden plane without being told: the target behind the occluder, not the occluder.

Refocusing at a plane's depth collapses its events onto sharp edges
(contrast maximisation, Gallego et al., CVPR 2018). In an occluded scene the
nearest plane (fence, lattice, branches) is near, high-contrast and usually
the sharpest, so a global maximum of sharpness finds the occluder. We score
a depth by the *agreement* of the early and late halves of the events: the
normalised correlation of the x derivatives of their two refocused images.
A plane in focus gives both halves the same edges; a plane out of focus
smears into streaks that, split in time, fall side by side and
anticorrelate; shot noise is independent between the halves, so it adds no
bias and a peak can be judged against the curve's own noise.

1. Planes: sweep the agreement of all events (4x binned pixels, so a coarse
   grid of shift rates suffices; rate = fx * v / depth), refine the
   strongest peaks at full resolution. The strongest is usually the occluder.
2. See through: set aside the events that land on that plane's sharp
   pixels, sweep only farther depths on what is left, and refine every
   significant peak. The best is the target and the strongest plane is
   reported as the occluder. With none, the strongest plane is the target
   (and a weaker plane in front of it, if step 1 saw one, the occluder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np

from spikelens.datasets.sai_scene import DEPTH_RANGE, RefocusError, SAIScene
from spikelens.datasets.sensor_size import SensorSize
from spikelens.refocus.frames import Roi, accumulate, check_events, focal_stack_images, mask_hits

Metric = Literal["variance", "gradient", "squares"]


class Cancellable(Protocol):
    """What a sweep asks of a job between chunks of rates (a :class:`spikelens.pipelines.jobs.Job`)."""

    def check(self) -> None: ...


class _NoJob:
    def check(self) -> None:
        pass


#: Events used per sweep; more costs time and adds nothing to the location of a peak.
MAX_SWEEP_EVENTS = 1_000_000
#: A pixel is one of the near plane's sharp pixels above this multiple of the mean count of active pixels.
MASK_ALPHA = 2.0
#: A target is farther than the occluder: its rate is at most this fraction of the occluder's.
BEHIND = 0.85
#: A see-through peak counts when it clears this many noise sigmas and this absolute correlation.
PEAK_SIGMAS, PEAK_FLOOR = 6.0, 0.03
#: The see-through sweep samples at least this many depths.
MIN_BEHIND_RATES = 64
#: Candidate peaks refined at full resolution.
MAX_CANDIDATES = 3


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


def agreement(early: np.ndarray, late: np.ndarray) -> np.ndarray:
    """Normalised correlation of the x derivatives of two D x H x W stacks, one score per depth (-1..1)."""
    a = np.diff(np.asarray(early, np.float32), axis=2)
    b = np.diff(np.asarray(late, np.float32), axis=2)
    num = (a * b).sum(axis=(1, 2), dtype=np.float64)
    den = np.sqrt((a * a).sum(axis=(1, 2), dtype=np.float64) * (b * b).sum(axis=(1, 2), dtype=np.float64))
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)


@dataclass(frozen=True)
class AutofocusResult:
    depth: float  # metres: the target
    rate: float  # px/s
    depths: np.ndarray  # step 1's agreement curve over all events, ascending depth
    scores: np.ndarray
    occluder_depth: float | None = None  # the nearer plane the target was seen through, if any
    occluder_rate: float | None = None
    behind_depths: np.ndarray = field(default_factory=lambda: np.empty(0))  # step 2's curve, ascending
    behind_scores: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def occluded(self) -> bool:
        return self.occluder_depth is not None


def _thin(ev: np.ndarray, n: int) -> np.ndarray:
    return ev if ev.size <= n else ev[:: -(-ev.size // n)]


def _binned(ev: np.ndarray, b: int) -> np.ndarray:
    """Events on a b-times coarser pixel grid: peaks b times wider, so b times fewer rates to sweep."""
    if b == 1:
        return ev
    out = ev.copy()
    out["x"] //= b
    out["y"] //= b
    return out


class _Halves:
    """The early and late halves of a stream, refocused at a pixel binning b; rates in full-resolution px/s."""

    def __init__(
        self, ev, t_ref_us: int, sensor: SensorSize, roi: Roi | None, b: int, sign: float, job: Cancellable
    ) -> None:
        self.job = job
        mid = (int(ev["t"][0]) + int(ev["t"][-1])) // 2
        cut = int(np.searchsorted(ev["t"], mid, side="right"))
        self.parts = (_binned(ev[:cut], b), _binned(ev[cut:], b))
        self.t_ref, self.scale = int(t_ref_us), sign / b
        self.sensor = SensorSize(-(-sensor.width // b), -(-sensor.height // b))
        self.roi = None if roi is None else (roi[0] // b, roi[1] // b, max(1, roi[2] // b), max(1, roi[3] // b))

    def _stack(self, part: np.ndarray, rates: np.ndarray) -> np.ndarray:
        return focal_stack_images(part, rates * self.scale, self.t_ref, self.sensor, self.roi)

    def agreement(self, rates: np.ndarray, chunk: int = 64) -> np.ndarray:
        """One agreement score per rate, ``chunk`` rates at a time so a long sweep stays small in memory."""
        rates = np.asarray(rates, np.float64)
        out = []
        for i in range(0, rates.size, chunk):
            self.job.check()  # a cancelled autofocus stops within one chunk
            out.append(agreement(*(self._stack(p, rates[i : i + chunk]) for p in self.parts)))
        return np.concatenate(out) if out else np.empty(0)


def _rates(lo: float, hi: float, step: float, least: int = 3, cap: int = 400) -> np.ndarray:
    """Rates from lo to hi about ``step`` apart, at least ``least`` of them (a short sweep still resolves a
    peak and still has enough steps to measure its own noise), at most ``cap``."""
    n = int(min(cap, max(least, np.ceil((hi - lo) / step) + 1)))
    return np.linspace(lo, hi, n)


def _peaks(curve: np.ndarray, edges: bool) -> np.ndarray:
    """Local maxima that clear the curve's own noise (robust sigma of its steps), strongest first."""
    d = np.diff(curve)
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2)
    padded = np.concatenate([[-np.inf if edges else np.inf], curve, [-np.inf if edges else np.inf]])
    k = np.arange(len(curve))
    top = (curve > max(PEAK_SIGMAS * noise, PEAK_FLOOR)) & (curve >= padded[k]) & (curve > padded[k + 2])
    found = k[top]
    return found[np.argsort(-curve[found])]


def _place(halves: _Halves, centre: float, half_width: float, lo: float, hi: float) -> tuple[float, float]:
    """(rate, score) of the agreement peak near ``centre``: a least-squares parabola through its top samples."""
    rates = np.linspace(max(centre - half_width, lo), min(centre + half_width, hi), 21)
    s = halves.agreement(rates)
    j = int(np.argmax(s))
    a, b = max(j - 3, 0), min(j + 4, len(s))
    if b - a >= 3:
        c2, c1, _ = np.polyfit(rates[a:b], s[a:b], 2)
        if c2 < 0 and rates[a] <= -c1 / (2 * c2) <= rates[b - 1]:
            return float(-c1 / (2 * c2)), float(s[j])
    return float(rates[j]), float(s[j])


def _without(ev: np.ndarray, rate: float, t_ref_us: int, sensor: SensorSize) -> np.ndarray:
    """The events left once those on the sharp pixels of the plane at ``rate`` (signed px/s) are set aside."""
    img = accumulate(ev, rate, t_ref_us, sensor)
    active = img[img > 0]
    sharp = img > MASK_ALPHA * (active.mean() if active.size else 0)
    sharp = cv2.dilate(sharp.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return ev[~mask_hits(ev, rate, t_ref_us, sharp)]


def _behind(rest: np.ndarray, t_ref_us, sensor, roi, sign, lo, hi, span_s, job):
    """The target's rate in [lo, hi] among events a nearer plane left (None if nothing shows), and the curve."""
    if hi - lo < 4 / span_s or rest.size < 1000:
        return None, np.empty(0), np.empty(0)
    rates = _rates(lo, hi, 2 / span_s, least=MIN_BEHIND_RATES)
    curve = _Halves(rest, t_ref_us, sensor, roi, 2, sign, job).agreement(rates)
    peaks = _peaks(curve, edges=False)[:MAX_CANDIDATES]
    if peaks.size == 0:
        return None, rates, curve
    full = _Halves(rest, t_ref_us, sensor, roi, 1, sign, job)
    step = rates[1] - rates[0]
    placed = [_place(full, rates[k], 2 * step, lo, hi) for k in peaks]
    return max(placed, key=lambda p: p[1])[0], rates, curve


def autofocus(
    events: np.ndarray,
    scene: SAIScene,
    depth_range: tuple[float, float] = DEPTH_RANGE,
    roi: Roi | None = None,
    see_through: bool = True,
    max_events: int = MAX_SWEEP_EVENTS,
    job: Cancellable | None = None,
) -> AutofocusResult:
    """The target's depth in ``depth_range`` (m) for the scene's camera (v m/s, focal length fx px).

    With ``see_through`` (the default) a plane found behind the strongest one
    wins and the strongest is reported as the occluder; without, the
    strongest plane is the answer. ``job`` is checked between chunks of the sweeps, so Cancel stops it.
    """
    job = job if job is not None else _NoJob()
    d_lo, d_hi = depth_range
    if not 0 < d_lo < d_hi:
        raise RefocusError(f"depth range must satisfy 0 < near < far, got {depth_range}")
    scene.require_geometry()
    fx, v, t_ref_us, sensor = scene.fx, scene.v, scene.t_ref_us, scene.sensor
    ev = check_events(events)
    if ev.size < 1000:
        raise RefocusError(f"autofocus needs at least 1000 events, got {ev.size}")
    k, sign = fx * abs(v), (1.0 if v > 0 else -1.0)
    span_s = max((int(ev["t"][-1]) - int(ev["t"][0])) / 1e6, 1e-3)
    lo, hi = k / d_hi, k / d_lo
    sub = _thin(ev, max_events)
    rates = _rates(lo, hi, 4 / span_s)
    scores = _Halves(sub, t_ref_us, sensor, roi, 4, sign, job).agreement(rates)
    candidates = _peaks(scores, edges=True)[:MAX_CANDIDATES]
    if candidates.size == 0:
        candidates = np.array([int(np.argmax(scores))])
    inner = set(_peaks(scores, edges=False).tolist())
    full = _Halves(sub, t_ref_us, sensor, roi, 1, sign, job)
    step = rates[1] - rates[0]
    # (rate, score, interior): a peak on the sweep's edge may be the edge, so it never counts as an occluder
    planes = sorted(
        ((*_place(full, rates[c], 1.5 * step, lo, hi), int(c) in inner) for c in candidates), key=lambda p: -p[1]
    )
    rate = planes[0][0]
    target, occluder, b_rates, b_scores = rate, None, np.empty(0), np.empty(0)
    if see_through:
        rest = _thin(_without(ev, sign * rate, t_ref_us, sensor), max_events)
        behind, b_rates, b_scores = _behind(rest, t_ref_us, sensor, roi, sign, lo, BEHIND * rate, span_s, job)
        front = [r for r, _, interior in planes[1:] if interior and r * BEHIND > rate]
        if behind is not None:
            target, occluder = behind, rate
        elif front:  # nothing behind it: the strongest plane is the target, seen through a weaker one in front
            occluder = front[0]
            rest = _thin(_without(ev, sign * occluder, t_ref_us, sensor), max_events)
            # look again from the occluder (the curve the GUI shows), placing the target without its events
            behind, b_rates, b_scores = _behind(rest, t_ref_us, sensor, roi, sign, lo, BEHIND * occluder, span_s, job)
            target = rate if behind is None else behind
    order, b_order = np.argsort(1 / rates), np.argsort(1 / b_rates)
    return AutofocusResult(
        depth=k / target,
        rate=sign * target,
        depths=(k / rates)[order],
        scores=scores[order],
        occluder_depth=None if occluder is None else k / occluder,
        occluder_rate=None if occluder is None else sign * occluder,
        behind_depths=(k / b_rates)[b_order],
        behind_scores=b_scores[b_order],
    )


def focal_stack(events: np.ndarray, scene: SAIScene, depths: np.ndarray, roi: Roi | None = None) -> np.ndarray:
    """Refocused event-count images at each depth (D x H x W), for a depth slider."""
    depths = np.asarray(depths, np.float64)
    if np.any(~(depths > 0)):
        raise RefocusError("depths must be positive")
    rates = np.array([scene.rate(d) for d in depths])
    return focal_stack_images(events, rates, scene.t_ref_us, scene.sensor, roi)
