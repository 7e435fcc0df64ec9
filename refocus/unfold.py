"""Row levels and vertical structure from the occluder's transitions: the accumulation, unfolded.

Why. The camera slides along x, so the signed events hold only the
horizontal log gradient: :mod:`.integrate` gets each row up to a constant,
and a horizontal edge that spans the image is invisible to it. The
occluder's transitions hold what is missing. Each time the occluder covers
or uncovers target point x', the pixel viewing it jumps between the target's
log intensity L(x') and the occluder's L_o, firing |L(x') - L_o| / C events
of one polarity. In the signed sum these cancel (cover against uncover); in
the accumulation A = ON + OFF they add. Per sensor column that viewed the
point (n_visible, geometric),

    a = A / n_visible  ~  kappa |L + c_y|  +  rho |g|  +  nu

where L is the integrated, row-levelled map (threshold units, shrunk by the
share of open views), c_y the row's unknown constant less the occluder's
level, kappa the transitions per view, rho |g| the target's own gradient
events (ON and OFF both count, where the signed g lets some cancel), nu the
background activity. With one occluder shade and a homogeneous occluder
(fences, lattices), kappa, rho and nu are the same everywhere, and the fold
|L + c_y| fixes each row's level: a row brighter than the occluder by x and
one darker by x fire alike, but L's own variation along the row says which.

Fit. c_y on a grid, by dynamic programming down the rows (cost: the row's
squared residual, plus an L1 penalty on changes of c_y from row to row, as
the median levelling has already tied the rows and only its errors need
undoing: :data:`ROW_JUMP` of a typical row's residual per span of the map);
kappa, rho and nu by least squares given c, alternated :data:`ITERATIONS`
times from kappa on a grid. Then

    L_A = sign(L + c_y) * max(a - rho |g| - nu, 0) / kappa

is log intensity relative to the occluder at every pixel, with the vertical
structure (put on L's scale by their horizontal differences: :func:`_scale`),
and the map shown takes its low frequencies (Gaussian,
:data:`BLEND_SIGMA` px) from L_A and the rest from L + c_y, whose horizontal
detail is cleaner.

Which side of the fold. A fold that crosses the map is one more degree of
freedom, so the free fit always explains the accumulation at least as well
as one that keeps the whole map on one side of the occluder's shade, even
where the map's own low-frequency errors are what it bends to: behind a
fence brighter than the whole scene it folded in patches (or turned the map
upside down), and the flipped patches cost up to 5 dB. The residual cannot
choose (the one-sided fits' residuals were 1.05-1.15 times the free one's
both where they won and where they lost). The events can: L_A's horizontal
differences must follow the events' gradient g, which the fold does not
enter, and a flipped patch reverses them. So :data:`SIDES` are fitted, the
fold free and the map wholly above or below it, and the one whose smoothed
differences correlate best with the smoothed g is kept (:func:`agreement`).
On the 72 recordings of the selection and test sets it kept a one-sided fit
on 11, never losing more than 0.01 dB to the free one and gaining up to 5.1.

Where it fails: an irregular occluder (leaves, branches) covers some target
points more often than others, so kappa varies across the image and L_A
takes that variation for intensity (a held-out photograph behind leaves:
19.6 dB before, 13.9 after, about the plain accumulation's). ``ROW_JUMP``,
``BLEND_SIGMA`` and the model were chosen on 16 recordings of the training
world and then measured on held-out sets (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy.ndimage import gaussian_filter

#: Candidate row constants, spread over twice the map's range either side.
LEVELS = 65
#: Columns used for the fit at most (every k-th seen column): the fit has four unknowns per row, not W.
FIT_COLUMNS = 120
#: A jump of c_y by the map's whole range costs this many typical rows' residuals (plateau 10-100).
ROW_JUMP = 30.0
#: Alternations of the row levels and the global kappa, rho, nu.
ITERATIONS = 2
#: The low frequencies taken from the unfolded accumulation (Gaussian sigma, px).
BLEND_SIGMA = 2.0
#: The fits tried: the fold free to cross the map (0), the map wholly above it (+1), wholly below (-1).
SIDES = (0, 1, -1)


@dataclass(frozen=True)
class Unfolded:
    log: np.ndarray  # H x W float32: the map to show, mean 0, threshold units (relative to the occluder)
    offsets: np.ndarray  # H float64: c_y, added to the levelled map's rows
    kappa: float  # transitions per view (the fold's slope), on the levelled map's scale
    rho: float  # the gradient's own events per unit |g|
    nu: float  # background events per view
    r2: float  # share of the accumulation's within-row variance the model explains
    side: int = 0  # the fit kept (SIDES): 0 the fold crosses the map, +1 / -1 the map wholly above / below it
    agreement: float = 0.0  # its :func:`agreement` with the events' gradient, which chose it

    @property
    def used(self) -> bool:
        """Whether the accumulation changed the map (False: the levelled map, centred)."""
        return self.kappa > 0


def _row_path(cost: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """argmin over level paths j_0..j_H-1 of sum_y cost[y, j_y] + sum_y jump[j_y, j_y-1] (Viterbi).

    The Numba kernel :func:`_row_path_kernel`; :func:`row_path_reference` is its NumPy twin (the same
    sums in the same order, so the same path: tested).
    """
    return _row_path_kernel(np.ascontiguousarray(cost, np.float64), np.ascontiguousarray(jump, np.float64))


@nb.njit(cache=True, nogil=True)
def _row_path_kernel(cost, jump):
    h, n = cost.shape
    best = cost[0].copy()
    new = np.empty(n)
    back = np.zeros((h, n), np.intp)
    for y in range(1, h):
        for to in range(n):
            low, arg = best[0] + jump[to, 0], 0
            for fr in range(1, n):
                v = best[fr] + jump[to, fr]
                if v < low:  # strict: the first of equal minima, as argmin takes it
                    low, arg = v, fr
            back[y, to] = arg
            new[to] = low + cost[y, to]
        best[:] = new
    path = np.empty(h, np.intp)
    last = 0
    for j in range(1, n):
        if best[j] < best[last]:
            last = j
    path[h - 1] = last
    for y in range(h - 1, 0, -1):
        path[y - 1] = back[y, path[y]]
    return path


def row_path_reference(cost: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """:func:`_row_path` in NumPy: the twin its kernel is tested against."""
    h, n = cost.shape
    best = cost[0].copy()
    back = np.zeros((h, n), np.intp)
    cols = np.arange(n)
    for y in range(1, h):
        total = best[None, :] + jump  # [to, from]
        back[y] = total.argmin(1)
        best = total[cols, back[y]] + cost[y]
    path = np.empty(h, np.intp)
    path[-1] = int(best.argmin())
    for y in range(h - 1, 0, -1):
        path[y - 1] = back[y, path[y]]
    return path


Fit = tuple[np.ndarray, float, float, float, float]


@dataclass(frozen=True)
class _Folds:
    """The fold |lt + c| at every candidate row constant c, as sums over the columns: shared by the fits.

    Why sums: the fit needs sum_w |lt + c| r_w at every row and level, which a table of the fold costs
    H x levels x columns to form and to read; with each row's columns sorted by lt, the ones below -c
    (where the fold turns over) are a prefix, and prefix sums of r and lt r give it at every level at once.
    """

    lt: np.ndarray  # H x columns: the map the fold is taken of
    levels: np.ndarray  # LEVELS: candidate c, spread over twice the map's range either side
    order: np.ndarray  # H x columns: each row's columns sorted by lt
    ranked: np.ndarray  # H x columns: lt in that order
    below: np.ndarray  # H x LEVELS: how many of the row's columns have lt < -c
    zz: np.ndarray  # H x LEVELS: sum over the columns of |lt + c|^2 = (lt + c)^2
    steps: np.ndarray  # LEVELS x LEVELS: |c - c'| in spans of the map

    @classmethod
    def of(cls, lt: np.ndarray) -> _Folds:
        span = float(np.percentile(lt, 99) - np.percentile(lt, 1))
        levels = np.linspace(-2 * span, 2 * span, LEVELS)
        order = np.argsort(lt, axis=1)
        ranked = np.take_along_axis(lt, order, 1)
        below = np.stack([np.searchsorted(row, -levels) for row in ranked])
        s1, s2 = lt.sum(1)[:, None], (lt * lt).sum(1)[:, None]
        zz = s2 + 2 * levels[None, :] * s1 + lt.shape[1] * levels[None, :] ** 2
        return cls(lt, levels, order, ranked, below, zz, np.abs(levels[:, None] - levels[None, :]) / span)

    def dot(self, r: np.ndarray) -> np.ndarray:
        """H x LEVELS: sum over the columns of |lt + c| r, by the prefix sums (see the class docstring)."""
        rs = np.take_along_axis(r, self.order, 1)
        pre_r = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(rs, 1)], 1)
        pre_lr = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(self.ranked * rs, 1)], 1)
        rows = np.arange(r.shape[0])[:, None]
        low_r, low_lr = pre_r[rows, self.below], pre_lr[rows, self.below]
        return (pre_lr[:, -1:] - 2 * low_lr) + self.levels[None, :] * (pre_r[:, -1:] - 2 * low_r)

    def fold(self, j: np.ndarray) -> np.ndarray:
        """H x columns: |lt + c_j| with each row's level index ``j``."""
        return np.abs(self.lt + self.levels[j][:, None])

    def allowed(self, side: int) -> np.ndarray:
        """H x LEVELS: the row constants that keep the whole row on ``side`` of the fold (0: any)."""
        if side == 0:
            return np.ones(self.zz.shape, bool)
        edge = -self.lt.min(1) if side > 0 else -self.lt.max(1)
        return side * (self.levels[None, :] - edge[:, None]) >= 0


def _fit(a: np.ndarray, g: np.ndarray, row_jump: float, folds: _Folds, side: int = 0) -> Fit:
    """Row levels c (H), kappa, rho, nu and r2 of a ~ kappa |lt + c| + rho g + nu; kappa 0: no fold found.

    ``lt`` is ``folds``' map. ``side`` +1 or -1 keeps every row wholly above or below the fold (the map on
    one side of the occluder's shade); 0 lets the fold cross it.
    """
    lt, zz = folds.lt, folds.zz
    h = lt.shape[0]
    ok = folds.allowed(side)
    if not ok.any(1).all():
        return np.zeros(h), 0.0, 0.0, 0.0, 0.0
    barred = np.where(ok, 0.0, np.inf)

    def terms(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # sum over columns of r^2 and of |lt + c| r
        return (r * r).sum(1)[:, None], folds.dot(r)

    def costs(k: float, rr: np.ndarray, zr: np.ndarray) -> np.ndarray:  # sum of (r - k z)^2, every row, level
        return rr - 2 * k * zr + k * k * zz + barred

    def path(cost: np.ndarray) -> np.ndarray:
        return _row_path(cost, row_jump * float(np.median(cost.min(1))) * folds.steps)

    rho, nu = 1.0, 0.0  # the start: every gradient event counted once, no background; kappa on a grid
    rr, zr = terms(a - rho * g - nu)
    kappas = np.geomspace(0.05, 50, 24) * a.mean() / max(float(np.abs(lt).mean()), 1e-12)
    kappa = float(kappas[int(np.argmin([costs(k, rr, zr).min(1).sum() for k in kappas]))])
    cost = costs(kappa, rr, zr)
    for _ in range(ITERATIONS):
        j = path(cost)
        design = np.stack([folds.fold(j).ravel(), g.ravel(), np.ones(g.size)], 1)
        (kappa, rho, nu), *_ = np.linalg.lstsq(design, a.ravel(), rcond=None)
        if kappa <= 0:
            return np.zeros(h), 0.0, 0.0, 0.0, 0.0
        cost = costs(kappa, *terms(a - rho * g - nu))
    j = path(cost)
    resid = a - kappa * folds.fold(j) - rho * g - nu
    spread = float(((a - a.mean(1, keepdims=True)) ** 2).sum())
    r2 = 1 - float((resid**2).sum()) / spread if spread > 0 else 0.0
    return folds.levels[j], float(kappa), float(rho), float(nu), r2


def forward_gradient(gradient: np.ndarray) -> np.ndarray:
    """The centred gradient g (events land on rint(edge)) as forward differences, half a pixel on:
    (g[j] + g[j + 1]) / 2 (see :mod:`spikelens.refocus.integrate`); the last column is kept."""
    g = np.asarray(gradient)
    forward = g.copy()
    forward[:, :-1] = 0.5 * (g[:, :-1] + g[:, 1:])
    return forward


def agreement(unfolded: np.ndarray, gradient: np.ndarray, seen: np.ndarray, sigma: float = BLEND_SIGMA) -> float:
    """Correlation (uncentred) of ``unfolded``'s horizontal differences with the events' ``gradient``,
    both smoothed by ``sigma``, over neighbouring seen columns: how well a fold's sign follows the events.
    """
    return _agreement(unfolded, _smoothed_gradient(gradient, seen, sigma), seen, sigma)


def _smoothed_gradient(gradient: np.ndarray, seen: np.ndarray, sigma: float) -> np.ndarray:
    both = seen[1:] & seen[:-1]
    return gaussian_filter(forward_gradient(np.asarray(gradient, np.float64)), sigma, mode="nearest")[:, :-1][:, both]


def _agreement(unfolded: np.ndarray, dg: np.ndarray, seen: np.ndarray, sigma: float) -> float:
    both = seen[1:] & seen[:-1]
    du = np.diff(gaussian_filter(np.asarray(unfolded, np.float64), sigma, mode="nearest"), axis=1)[:, both]
    norm = float(np.sqrt((du * du).sum() * (dg * dg).sum()))
    return float((du * dg).sum()) / norm if norm > 0 else 0.0


def _scale(unfolded: np.ndarray, level: np.ndarray, seen: np.ndarray, sigma: float) -> float:
    """The factor that puts L_A on the levelled map's scale.

    kappa is only as good as the fit (a noisy levelled map biases it low), so L_A is matched to the
    levelled map by their horizontal differences, which the events measure best, in the band the blend
    takes from L_A (both smoothed). Behind leaves the two can disagree outright (kappa varies across the
    image) while L_A's low frequencies still help: L_A then takes the levelled map's spread.
    """
    both = seen[1:] & seen[:-1]
    du = np.diff(gaussian_filter(unfolded, sigma, mode="nearest"), axis=1)[:, both]
    dl = np.diff(gaussian_filter(level, sigma, mode="nearest"), axis=1)[:, both]
    cross = float((du * dl).sum())
    if cross > 0:
        return float((dl * dl).sum()) / cross
    spread = float(unfolded[:, seen].std())
    return float(level[:, seen].std()) / spread if spread > 0 else 1.0


def unfold(
    levelled: np.ndarray,
    accumulation: np.ndarray,
    visibility: np.ndarray,
    gradient: np.ndarray,
    seen: np.ndarray,
    row_jump: float = ROW_JUMP,
    sigma: float = BLEND_SIGMA,
    sides: tuple[int, ...] = SIDES,
) -> Unfolded:
    """The levelled map re-levelled and completed by the accumulation (see the module docstring).

    ``accumulation`` is ON + OFF refocused at the target (H x W), ``visibility`` n_visible (W),
    ``gradient`` g and ``seen`` as :class:`~spikelens.refocus.integrate.Integrated` holds them. Falls
    back to the levelled map, centred (``used`` False), when there is nothing to fit or no fold in it.
    ``sides`` are the fits tried (:data:`SIDES`); the free one, 0, comes first: it decides whether there
    is a fold at all.
    """
    if not sides or sides[0] != 0:
        raise ValueError(f"sides must start with the free fit, 0: got {sides}")
    base = np.asarray(levelled, np.float64)
    seen = np.asarray(seen, bool)
    a_full = np.asarray(accumulation, np.float64) / np.maximum(np.asarray(visibility, np.float64), 1.0)[None, :]
    g_full = np.abs(np.asarray(gradient, np.float64))
    flat = Unfolded((base - base.mean()).astype(np.float32), np.zeros(base.shape[0]), 0.0, 0.0, 0.0, 0.0)
    cols = np.flatnonzero(seen)
    cols = cols[:: max(1, -(-cols.size // FIT_COLUMNS))]
    lt, a = base[:, cols], a_full[:, cols]
    if cols.size < 2 or np.ptp(lt) <= 0 or not np.any(a > 0):
        return flat
    folds, g_fit, dg = _Folds.of(lt), g_full[:, cols], _smoothed_gradient(gradient, seen, sigma)
    best = None
    for side in sides:
        offsets, kappa, rho, nu, r2 = _fit(a, g_fit, row_jump, folds, side)
        if kappa <= 0:
            if side == 0:  # no fold at all (no occluder): a one-sided fit would only find the noise's slope
                return flat
            continue
        level = base + offsets[:, None]
        unfolded = np.sign(level) * np.maximum(a_full - rho * g_full - nu, 0) / kappa
        score = _agreement(unfolded, dg, seen, sigma)
        if best is None or score > best[0]:
            best = (score, side, level, unfolded, offsets, kappa, rho, nu, r2)
    score, side, level, unfolded, offsets, kappa, rho, nu, r2 = best
    scale = _scale(unfolded, level, seen, sigma)
    unfolded *= scale
    unfolded[:, ~seen] = level[:, ~seen]  # nothing seen: nothing to unfold
    out = level + gaussian_filter(unfolded - level, sigma, mode="nearest")
    return Unfolded((out - out.mean()).astype(np.float32), offsets, kappa / scale, rho, nu, r2, side, score)
