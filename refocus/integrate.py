"""Training-free reconstruction behind an occluder: integrate the refocused events' signed sum.

Derivation. The camera slides along +x at v, so a target point at depth d
crosses the sensor at k = fx * v / d px/s; refocusing x' = x + k (t - t_ref)
maps every event back to the target point x' that was under its pixel. A
pixel watching the target sees log intensity L(x' (t)) and fires one event
per step of C (its contrast threshold), signed by the direction of change;
it spends 1 / k seconds over each target pixel while L changes there at
k dL/dx', so each sensor column that views x' unoccluded adds dL/dx' / C
signed events to it. Summed over the recording,

    S(x', y) = ON - OFF = n_visible(x') * dL/dx'(x', y) / C,

where n_visible counts the sensor columns that saw x' (k * T at most,
fewer near the panorama's ends, times the unoccluded fraction). So
g = S / n_visible estimates the horizontal log-intensity gradient in units
of C, and integrating it along x gives log intensity up to one constant per
row. We solve the least-squares (screened Poisson) problem

    min_L  |Dx L - g|^2 + lam |Dy L|^2 + eps |L|^2

in closed form with a DCT (Neumann boundaries diagonalise the operator):
the weak vertical term ``lam`` ties the row constants to their neighbours,
and the tiny screening ``eps`` damps the lowest frequencies, where a noisy
gradient integrates into a random walk along the row (row drift).

What breaks the ideal, and what we do:
- The occluder: each bar that covers and uncovers a target point emits
  opposite events of the same size, which cancel in S (they do not in the
  plain accumulation, which is why that looks like intensity only when the
  occluder is darker than everything behind it). They cancel only if
  C_on = C_off: a sensor whose thresholds differ leaves a bias in S
  proportional to |log I - log shade|, which integrates into a ramp. Over
  a recording each pixel ends about where it began, so N_on C_on ~ N_off
  C_off: OFF events are weighed by N_on / N_off, which balances them.
- Background activity is ON/OFF balanced, so it adds zero-mean noise to S.
- Hot pixels fire one polarity for the whole recording and would draw a
  streak of bias along their row: a pixel whose ON and OFF counts differ by
  far more than any real scene explains (see :data:`HOT_IMBALANCE`) is
  dropped before refocusing.
- Columns that almost no sensor column saw (n_visible under 5 % of its
  peak) carry no gradient (g = 0): the solve bridges them smoothly.
- Registration: refocusing rounds, x' = x + rint(k (t - t_ref)), and a pixel
  fires as an edge crosses its centre, so an edge at e lands on pixel
  rint(e): g[j] is a centred difference, (L[j+1] - L[j-1]) / 2 / C. The
  forward difference the solve wants, L[j+1] - L[j], is g interpolated half
  a pixel on, (g[j] + g[j+1]) / 2; solving with g itself would put every
  edge of the log map half a pixel late (tested on a step).

Row levels. The quadratic vertical term above is right for noise but
wrong for the picture: natural images' vertical differences are sparse and
heavy-tailed (a Laplacian, not a Gaussian), and a square term lets the rows
through a bright object pull their whole row towards the rows beside them,
so the background beside the object comes out darker in a band. Under a
Laplacian prior the MAP offset between two neighbouring rows is the median
of their differences over the seen columns: the majority of columns, the
background, decides, and an object covering less than half the row does
not. :func:`level_rows` re-levels the solved map so, chaining each row's
offset to the row above (a random walk down the image, which the median's
robustness keeps short).

Vertical structure. Horizontal gradients cannot say how bright a row is
against the next, nor see an edge that spans the image; the occluder's
transitions can, and :mod:`.unfold` takes the row levels and the low
frequencies from the accumulation, unfolded by this map's sign
(``Integrated.unfolded``, the map to show). A network reads the map its
config names (:func:`physics_channels`, :data:`LOG_MAPS`): the first ones
were trained on the plain ``log``.

The log map is then turned into an image: exp, then a robust percentile
scaling (events carry no absolute brightness: that needs the network, or a
user's affine fit). The exponent cannot be the threshold: the map is in
units of C shrunk by the share of open views, both unknown (C is 0.1-0.6
on real sensors), and a nominal C made the shown image a near-binary clip
on some scenes and a linear one on others. So the map's own 1-99 %
percentile span is taken to be :data:`SHOWN_LOG_RANGE` in natural log
units, whatever its scale: the same image for any threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import fft

from spikelens.datasets.sai_scene import SAIScene
from spikelens.refocus.frames import Roi, _roi, check_events, polarity_images
from spikelens.refocus.unfold import Unfolded, forward_gradient, unfold

#: Vertical smoothness relative to the horizontal data term.
SMOOTH_Y = 0.01
#: Screening of the lowest frequencies (structure wider than about pi / eps**0.5 = 1000 px is damped):
#: bounds row drift, and keeps an image's largest gradients.
SCREEN = 1e-5
#: A column with fewer views than this fraction of the best-seen column gives no gradient.
MIN_VISIBLE = 0.05
#: A pixel is hot when |N_on - r N_off| exceeds this many events and this fraction of all its events.
HOT_IMBALANCE = 40
HOT_PURITY = 0.8
#: The natural-log span given to the map's 1-99 % percentiles when it becomes an image (a 2.7:1
#: contrast). Chosen on 16 training-world recordings (0 to 1.5 score within 0.1 dB with an oracle fit,
#: 1 best; 2 and 3 lose 0.2 and 0.6), then measured held out (see the README).
SHOWN_LOG_RANGE = 1.0


@dataclass(frozen=True)
class Integrated:
    """The physics of one refocused recording, all on the output grid (ROI)."""

    signed: np.ndarray  # H x W float32: S = ON - r OFF refocused at the target's rate, times sign(rate)
    visibility: np.ndarray  # W float32: n_visible, the sensor columns that viewed each output column
    gradient: np.ndarray  # H x W float32: g = S / n_visible (dlog I / dx at each pixel, threshold units), 0 unseen
    log: np.ndarray  # H x W float32: log intensity in units of the threshold, mean 0 (the networks' channel)
    balance: float  # r = N_on / N_off, the weight given to OFF events
    hot_pixels: int  # pixels dropped for firing one polarity
    accumulation: np.ndarray  # H x W float32: ON + OFF refocused at the target's rate (hot pixels out)

    @property
    def seen(self) -> np.ndarray:
        """W bool: the columns that carry a gradient (see :func:`seen_columns`)."""
        return seen_columns(self.visibility)

    @cached_property
    def levelled(self) -> np.ndarray:
        """H x W float32: ``log`` with its rows re-levelled by :func:`level_rows` (computed when asked: the
        networks read ``log``)."""
        return level_rows(self.log, self.seen)

    @cached_property
    def unfolded(self) -> Unfolded:
        """The levelled map re-levelled and completed by the occluder's transitions
        (:func:`spikelens.refocus.unfold.unfold`): its ``log`` is the image to show."""
        return unfold(self.levelled, self.accumulation, self.visibility, self.gradient, self.seen)


def seen_columns(vis: np.ndarray) -> np.ndarray:
    """Columns viewed by at least :data:`MIN_VISIBLE` of the best-seen column's sensor columns."""
    return vis >= MIN_VISIBLE * max(float(vis.max()), 1e-9)


def visibility(width: int, rate: float, t_span_us: tuple[int, int], t_ref_us: int, x0: int, w: int) -> np.ndarray:
    """n_visible of output columns x0 .. x0 + w: how many sensor columns (of ``width``) x' passed under.

    Point x' sits under column x' - rate (t - t_ref) for t in the span; the columns it covers are that
    segment clipped to [0, width - 1].
    """
    xs = np.arange(x0, x0 + w, dtype=np.float64)
    a = xs - rate * (t_span_us[1] - t_ref_us) / 1e6
    b = xs - rate * (t_span_us[0] - t_ref_us) / 1e6
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.clip(np.minimum(hi, width - 1) - np.maximum(lo, 0), 0, None).astype(np.float32)


def hot_pixel_mask(counts: np.ndarray, balance: float) -> np.ndarray:
    """Sensor pixels (H x W bool) that fire one polarity only, from their own 2 x H x W (ON, OFF) counts.

    A real pixel sees edges pass both ways and ends near where it began; a hot one keeps firing one
    polarity: its imbalance |N_on - r N_off| is most of its events and more than a scene explains.
    """
    on, off = counts[0].astype(np.float64), counts[1].astype(np.float64)
    net = np.abs(on - balance * off)
    return (net > HOT_IMBALANCE) & (net > HOT_PURITY * (on + balance * off))


def solve_log(gradient: np.ndarray, smooth_y: float = SMOOTH_Y, screen: float = SCREEN) -> np.ndarray:
    """argmin_L |Dx L - g|^2 + smooth_y |Dy L|^2 + screen |L|^2 (Neumann boundaries), by one DCT pair.

    ``gradient[:, j]`` is the forward difference L[:, j + 1] - L[:, j]; its last column is unused.
    """
    g = np.asarray(gradient, np.float64)
    h, w = g.shape
    div = np.zeros_like(g)  # Dx^T g
    div[:, :-1] -= g[:, :-1]
    div[:, 1:] += g[:, :-1]
    lx = 2 - 2 * np.cos(np.pi * np.arange(w) / w)  # eigenvalues of Dx^T Dx under the DCT-II
    ly = 2 - 2 * np.cos(np.pi * np.arange(h) / h)
    den = lx[None, :] + smooth_y * ly[:, None] + screen
    den[0, 0] = 1.0  # the mean is free (and set to 0 below); screen = 0 is a pure Poisson solve
    log = fft.idctn(fft.dctn(div, norm="ortho", workers=-1) / den, norm="ortho", workers=-1)
    return (log - log.mean()).astype(np.float32)


def level_rows(log: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``log`` with each row shifted by the median, over the ``seen`` columns, of its difference from the
    row above (the Laplacian-prior MAP row offset; see the module docstring). Mean 0, float32."""
    log = np.asarray(log, np.float64)
    cols = log[:, np.asarray(seen, bool)]
    offset = np.zeros(log.shape[0])
    if log.shape[0] > 1 and cols.shape[1]:
        offset[1:] = np.cumsum(np.median(cols[:-1] - cols[1:], axis=1))
    out = log + offset[:, None]
    return (out - out.mean()).astype(np.float32)


def integrate(
    events: np.ndarray,
    scene: SAIScene,
    depth: float,
    roi: Roi | None = None,
    *,
    span_us: tuple[int, int] | None = None,
    smooth_y: float = SMOOTH_Y,
    screen: float = SCREEN,
) -> Integrated:
    """The training-free reconstruction: balanced signed sum refocused at ``depth``, / n_visible, integrated.

    ``span_us`` is the exposure (default: first to last event, which on a
    quiet sensor starts late, as a pixel must climb a whole threshold before it fires: n_visible then
    comes out short and the gradient long by the same factor). See the module docstring for the
    derivation and its corrections. ``unfolded.log`` is the map to show; ``log`` the one the networks read.
    """
    ev = check_events(events)
    rate, t_ref_us, sensor = scene.rate(depth), scene.t_ref_us, scene.sensor
    _, x0, _, w = _roi(roi, sensor.height, sensor.width)
    own = polarity_images(ev, 0.0, t_ref_us, sensor)
    hot = hot_pixel_mask(own, float(own[0].sum()) / max(float(own[1].sum()), 1.0))
    kept = own[:, ~hot].sum(axis=1)
    r = float(kept[0]) / max(float(kept[1]), 1.0)
    frames = polarity_images(ev, rate, t_ref_us, sensor, roi, hot)
    signed = frames[0].astype(np.float32) - np.float32(r) * frames[1]
    if span_us is None:
        span_us = (int(ev["t"][0]), int(ev["t"][-1])) if ev.size else (t_ref_us, t_ref_us)
    vis = visibility(sensor.width, rate, span_us, t_ref_us, x0, w)
    if rate < 0:  # the sensor sweeps the target the other way: every step is seen with the opposite sign
        signed = -signed
    seen = seen_columns(vis)
    grad = np.where(seen[None, :], signed / np.maximum(vis, 1.0)[None, :], 0.0).astype(np.float32)
    log = solve_log(forward_gradient(grad), smooth_y, screen)  # events land on rint(edge): half a pixel on
    return Integrated(signed, vis, grad, log, r, int(hot.sum()), frames.sum(axis=0).astype(np.float32))


def log_to_uint8(
    log: np.ndarray, log_range: float = SHOWN_LOG_RANGE, percentiles: tuple[float, float] = (1.0, 99.0)
) -> np.ndarray:
    """exp(L), L scaled so its 1-99 % span is ``log_range``, then its ``percentiles`` stretched to 8 bits.

    Scale-free (see the module docstring): a map times any factor gives the same image.
    """
    log = np.asarray(log, np.float64)
    span = float(np.percentile(log, 99) - np.percentile(log, 1))
    img = np.exp(log_range * (log - log.max()) / span) if span > 0 else np.zeros_like(log)
    lo, hi = np.percentile(img, percentiles)
    return np.clip(np.rint((img - lo) / max(hi - lo, 1e-12) * 255), 0, 255).astype(np.uint8)


#: The log maps a network can read beside the gradient: ``plain``, the integration alone
#: (``Integrated.log``, what the first physics models were trained on), or ``unfolded``, the map
#: integrate shows (row levels and low frequencies from the occluder's transitions).
LOG_MAPS = ("plain", "unfolded")


def check_log_map(log_map: str) -> str:
    """``log_map`` if it names one of :data:`LOG_MAPS`, else a ValueError that lists them."""
    if log_map not in LOG_MAPS:
        raise ValueError(f"unknown log map {log_map!r}; choose from {LOG_MAPS}")
    return log_map


def physics_channels(result: Integrated, log_map: str = "plain") -> np.ndarray:
    """2 x H x W float32 for the networks: the gradient g and the ``log_map``, each scaled to unit RMS.

    Scaling each image by its own RMS takes out the threshold, the event count and the speed (E2VID
    normalises its voxel grids the same way): halve C and both maps double, and the input is unchanged.
    """
    log = result.log if check_log_map(log_map) == "plain" else result.unfolded.log
    out = np.stack([result.gradient, log]).astype(np.float32)
    for c in out:
        rms = float(np.sqrt(np.mean(c.astype(np.float64) ** 2)))
        if rms > 0:
            c /= rms
    return out
