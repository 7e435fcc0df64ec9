"""Plain NumPy twins of the refocus wrappers, same signatures: obviously correct, slow.

The parity tests require the Numba path to equal these bit for bit.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from spikelens.refocus.frames import Roi, _bins, _events, _raise_report, _roi, _top, surface_from_last


def _count(frames: np.ndarray, index: tuple[np.ndarray, ...], top: float) -> np.ndarray:
    counts = np.zeros(frames.size, np.int64)
    np.add.at(counts, np.ravel_multi_index(index, frames.shape), 1)
    frames[...] = np.minimum(counts.reshape(frames.shape), top)
    return frames


def _check(ev: np.ndarray) -> None:
    back = np.flatnonzero(np.diff(ev["t"]) < 0)
    badp = np.flatnonzero((ev["p"] < 0) | (ev["p"] > 1))
    _raise_report(np.array([[back[0] + 1 if back.size else -1, badp[0] if badp.size else -1]]))


def _shifted(ev: np.ndarray, rx: float, ry: float, t_ref_us: int) -> tuple[np.ndarray, np.ndarray]:
    dt = (ev["t"] - int(t_ref_us)).astype(np.float64)
    xs = ev["x"].astype(np.int64) + np.rint(dt * (rx / 1e6)).astype(np.int64)
    ys = ev["y"].astype(np.int64) + np.rint(dt * (ry / 1e6)).astype(np.int64)
    return xs, ys


def _blank(events, n_bins, sensor, roi, dtype):
    """Checked events, zeroed frames, the ROI and the sensor size: what every packer starts from."""
    ev = _events(events)
    height, width = sensor
    y0, x0, h, w = _roi(roi, height, width)
    return ev, np.zeros((_bins(n_bins), 2, h, w), dtype), (y0, x0, h, w), (height, width)


def pack_frames_reference(
    events, rate, t_ref_us, n_bins=30, sensor=(260, 346), roi: Roi | None = None, t_range=None, dtype=np.int16, out=None
) -> np.ndarray:
    ev, frames, (y0, x0, h, w), (height, width) = _blank(events, n_bins, sensor, roi, dtype)
    n_bins = frames.shape[0]
    if ev.size == 0:
        return frames
    _check(ev)
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    t0, t1 = (int(ev["t"][0]), int(ev["t"][-1]) + 1) if t_range is None else t_range
    t = ev["t"].astype(np.int64)
    xs, ys = _shifted(ev, rx, ry, t_ref_us)
    keep = (t >= t0) & (t < t1) & (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    keep &= (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h)
    b = (t[keep] - t0) * n_bins // (t1 - t0)
    return _count(frames, (b, ev["p"][keep].astype(np.int64), ys[keep] - y0, xs[keep] - x0), _top(dtype))


def pack_frames_esai_reference(
    events,
    fx,
    v,
    depth,
    t_ref_us,
    n_bins=30,
    sensor=(260, 346),
    roi: Roi | None = None,
    outside: Literal["drop", "keep"] = "drop",
    dtype=np.float32,
    out=None,
) -> np.ndarray:
    """A NumPy transcription of E-SAI's pack_with_manual_refocus (codes/Preprocess.py)."""
    ev, frames, (y0, x0, h, w), (_, width) = _blank(events, n_bins, sensor, roi, dtype)
    n_bins = frames.shape[0]
    ref_s = int(t_ref_us) / 1e6
    t_s = ev["t"] / 1e6
    x = ev["x"].astype(np.int64)
    shift = np.rint((t_s - ref_s) * fx * v / depth).astype(np.int64)
    inside = (x + shift < width) & (x + shift >= 0)
    keep = np.ones(ev.size, bool) if outside == "keep" else inside
    xs = np.where(inside, x + shift, x)[keep]
    ys, ts, ps = ev["y"][keep].astype(np.int64), t_s[keep], ev["p"][keep]
    if ts.size == 0:
        return frames
    _check(ev)
    min_t, max_t = ts.min(), ts.max()
    interval = (max_t - min_t) / n_bins
    ind = np.zeros(ts.size, np.int64) if interval <= 0 else ((ts - min_t) / interval).astype(np.int64)
    ind = np.minimum(ind, n_bins - 1)
    crop = (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h)
    index = (ind[crop], (ps[crop] == 1).astype(np.int64), ys[crop] - y0, xs[crop] - x0)
    return _count(frames, index, _top(dtype))


def focal_stack_images_reference(
    events, rates, t_ref_us, sensor=(260, 346), roi: Roi | None = None, rates_y=None
) -> np.ndarray:
    ev = _events(events)
    _check(ev)
    rates = np.asarray(rates, np.float64).ravel()
    ry = np.zeros_like(rates) if rates_y is None else np.asarray(rates_y, np.float64).ravel()
    height, width = sensor
    y0, x0, h, w = _roi(roi, height, width)
    out = np.zeros((rates.size, h, w), np.int32)
    for d in range(rates.size):
        xs, ys = _shifted(ev, rates[d], ry[d], t_ref_us)
        keep = (xs >= max(x0, 0)) & (xs < x0 + w) & (ys >= max(y0, 0)) & (ys < y0 + h)
        np.add.at(out[d], (ys[keep] - y0, xs[keep] - x0), 1)
    return out


def accumulate_reference(events, rate, t_ref_us, sensor=(260, 346), roi: Roi | None = None) -> np.ndarray:
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    return focal_stack_images_reference(events, [rx], t_ref_us, sensor, roi, [ry])[0]


def time_surface_reference(events, rate, t_ref_us, sensor=(260, 346), tau_us=50_000.0, t_now_us=None) -> np.ndarray:
    ev = _events(events)
    _check(ev)
    height, width = sensor
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    xs, ys = _shifted(ev, rx, ry, t_ref_us)
    keep = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    last_t = np.full((height, width), np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last_t, (ys[keep], xs[keep]), ev["t"][keep])
    # the latest event's polarity: among events at a pixel, the one with the largest index
    idx = np.full((height, width), -1, np.int64)
    np.maximum.at(idx, (ys[keep], xs[keep]), np.flatnonzero(keep))
    last_p = np.zeros((height, width), np.int8)
    last_p[idx >= 0] = ev["p"][idx[idx >= 0]]
    t_now = t_now_us if t_now_us is not None else (int(ev["t"][-1]) if ev.size else 0)
    return surface_from_last(last_t, last_p, tau_us, t_now)
