"""Event denoising for display and preprocessing.

The background-activity filter keeps an event only when one of its eight
neighbours fired within ``dt_us`` before it (the classic nearest-neighbour
support test, as in jAER/dv-processing's BackgroundActivityNoiseFilter):
real edges move across neighbouring pixels, shot noise fires alone. Hot
pixels are found from whole-recording counts, far above their peers.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_NEVER = np.iinfo(np.int64).min // 2


@nb.njit(cache=True, nogil=True)
def _ba_kernel(t, x, y, width, height, dt, last, keep):
    for i in range(t.size):
        xi, yi, ti = x[i], y[i], t[i]
        ok = False
        for dy in range(-1, 2):
            yy = yi + dy
            if yy < 0 or yy >= height:
                continue
            for dx in range(-1, 2):
                xx = xi + dx
                if (dx == 0 and dy == 0) or xx < 0 or xx >= width:
                    continue
                if ti - last[yy * width + xx] <= dt:
                    ok = True
        keep[i] = ok
        last[yi * width + xi] = ti


def background_activity_filter(
    events: np.ndarray, width: int, height: int, dt_us: int = 5_000, last: np.ndarray | None = None
) -> np.ndarray:
    """Boolean keep-mask. ``last`` (int64, width*height) carries pixel times across calls for streams."""
    if dt_us <= 0:
        raise ValueError(f"dt_us must be positive, got {dt_us}")
    if last is None:
        last = np.full(width * height, _NEVER, np.int64)
    elif last.shape != (width * height,) or last.dtype != np.int64:
        raise ValueError("last must be int64 with width*height entries")
    keep = np.zeros(events.size, np.bool_)
    _ba_kernel(
        events["t"], events["x"].astype(np.int64), events["y"].astype(np.int64), width, height, dt_us, last, keep
    )
    return keep


def background_activity_filter_reference(events: np.ndarray, width: int, height: int, dt_us: int = 5_000) -> np.ndarray:
    """Plain-Python twin of :func:`background_activity_filter`: a dict of last times per pixel."""
    last: dict[tuple[int, int], int] = {}
    keep = np.zeros(events.size, bool)
    for i, (t, x, y) in enumerate(zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), strict=True)):
        neighbours = [(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
        keep[i] = any(t - last[n] <= dt_us for n in neighbours if n in last)
        last[(x, y)] = t
    return keep


def hot_pixel_mask(counts: np.ndarray, factor: float = 20.0, min_count: int = 100) -> np.ndarray:
    """Pixels with more than ``factor`` times the mean count of active pixels (and at least ``min_count``)."""
    counts = np.asarray(counts)
    active = counts[counts > 0]
    if active.size == 0:
        return np.zeros(counts.shape, bool)
    return (counts > factor * active.mean()) & (counts >= min_count)
