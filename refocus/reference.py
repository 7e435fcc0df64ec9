"""Plain NumPy twins of the refocus wrappers, same signatures: obviously correct, slow.

The parity tests require the Numba path to equal these bit for bit.
"""

from __future__ import annotations

import numpy as np

from spikelens.refocus.frames import Roi, _bins, _dtype, _raise_report, _roi, _sensor, _top, surface_from_last


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
    ev = _dtype(events)
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    return ev, np.zeros((_bins(n_bins), 2, h, w), dtype), (y0, x0, h, w), (height, width)


def pack_frames_reference(
    events, rate, t_ref_us, n_bins, sensor, roi: Roi | None = None, t_range=None, dtype=np.int16, out=None
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
    on_first = 1 - ev["p"][keep].astype(np.int64)  # channel 0 = ON
    return _count(frames, (b, on_first, ys[keep] - y0, xs[keep] - x0), _top(dtype))


def mask_hits_reference(events, rate, t_ref_us, mask) -> np.ndarray:
    ev = _dtype(events)
    mask = np.asarray(mask, bool)
    xs, ys = _shifted(ev, rate, 0.0, t_ref_us)
    inside = (xs >= 0) & (xs < mask.shape[1]) & (ys < mask.shape[0])
    hit = np.zeros(ev.size, bool)
    hit[inside] = mask[ys[inside], xs[inside]]
    return hit


def filter_events_by_key(key, x1, x2, x3, start, end):
    """E-SAI's codes/utils.py, line for line."""
    new_x1 = x1[key >= start]
    new_x2 = x2[key >= start]
    new_x3 = x3[key >= start]
    new_key = key[key >= start]

    new_x1 = new_x1[new_key < end]
    new_x2 = new_x2[new_key < end]
    new_x3 = new_x3[new_key < end]
    new_key = new_key[new_key < end]

    return new_key, new_x1, new_x2, new_x3


def pack_frames_esai_reference(
    events, scene, depth, n_bins=30, roi: Roi | None = None, dtype=np.float32, out=None
) -> np.ndarray:
    """E-SAI's pack_with_manual_refocus (dvs-whu/E-SAI, codes/Preprocess.py), transcribed line for line.

    Only the loading differs: ``eventData`` comes from our events (t back in
    seconds), ``opt`` from the arguments, and the result is stacked as
    T x 2 x H x W (channel 0 = Pos, 1 = Neg) and saturated like our frames.
    The transcribed lines, as the reference has them::

        x = eventData['x'].astype(float)
        y = eventData['y'].astype(float)
        t = eventData['t'].astype(float)
        p = eventData['p'].astype(float)
        shift_x = np.round((t - reference_time) * fx * v / d)
        valid_ind = (x+shift_x >= 0) * (x+shift_x < img_size[1])
        x[valid_ind] += shift_x[valid_ind]

        minT = t.min()
        maxT = t.max()
        t -= minT
        interval = (maxT - minT) / opt.time_step

        Xrange = (opt.roiTL[1], opt.roiTL[1] + opt.roi_size[1]) # roi
        Yrange = (opt.roiTL[0], opt.roiTL[0] + opt.roi_size[0])
        x,y,t,p = filter_events_by_key(x,y,t,p, Xrange[0], Xrange[1])
        y,x,t,p = filter_events_by_key(y,x,t,p, Yrange[0], Yrange[1])

        pos = np.zeros((opt.time_step, opt.roi_size[0], opt.roi_size[1]))
        neg = np.zeros((opt.time_step, opt.roi_size[0], opt.roi_size[1]))
        T,H,W = pos.shape
        pos = pos.ravel()
        neg = neg.ravel()
        ind = (t / interval).astype(int)
        ind[ind == T] -= 1
        x = (x - Xrange[0]).astype(int)
        y = (y - Yrange[0]).astype(int)
        pos_ind = p == 1
        neg_ind = p == 0

        np.add.at(pos, x[pos_ind] + y[pos_ind]*W + ind[pos_ind]*W*H, 1)
        np.add.at(neg, x[neg_ind] + y[neg_ind]*W + ind[neg_ind]*W*H, 1)
        pos = np.reshape(pos, (T,H,W))
        neg = np.reshape(neg, (T,H,W))
    """
    ev, frames, (roi_y, roi_x, roi_h, roi_w), (height, width) = _blank(events, n_bins, scene.sensor, roi, dtype)
    fx, v, t_ref_us = scene.fx, scene.v, scene.t_ref_us
    if ev.size == 0:
        return frames
    _check(ev)
    eventData = {"x": ev["x"], "y": ev["y"], "t": ev["t"] / 1e6, "p": ev["p"]}
    reference_time, d, img_size = int(t_ref_us) / 1e6, depth, (height, width)
    time_step, roiTL, roi_size = frames.shape[0], (roi_y, roi_x), (roi_h, roi_w)

    # -- transcribed --
    x = eventData["x"].astype(float)
    y = eventData["y"].astype(float)
    t = eventData["t"].astype(float)
    p = eventData["p"].astype(float)
    shift_x = np.round((t - reference_time) * fx * v / d)
    valid_ind = (x + shift_x >= 0) * (x + shift_x < img_size[1])
    x[valid_ind] += shift_x[valid_ind]

    minT = t.min()
    maxT = t.max()
    t -= minT
    interval = (maxT - minT) / time_step

    Xrange = (roiTL[1], roiTL[1] + roi_size[1])
    Yrange = (roiTL[0], roiTL[0] + roi_size[0])
    x, y, t, p = filter_events_by_key(x, y, t, p, Xrange[0], Xrange[1])
    y, x, t, p = filter_events_by_key(y, x, t, p, Yrange[0], Yrange[1])

    pos = np.zeros((time_step, roi_size[0], roi_size[1]))
    neg = np.zeros((time_step, roi_size[0], roi_size[1]))
    T, H, W = pos.shape
    pos = pos.ravel()
    neg = neg.ravel()
    with np.errstate(divide="ignore", invalid="ignore"):  # E-SAI divides by a zero interval for one timestamp
        ind = (t / interval).astype(int) if interval > 0 else np.zeros(t.size, int)
    ind[ind == T] -= 1
    x = (x - Xrange[0]).astype(int)
    y = (y - Yrange[0]).astype(int)
    pos_ind = p == 1
    neg_ind = p == 0

    np.add.at(pos, x[pos_ind] + y[pos_ind] * W + ind[pos_ind] * W * H, 1)
    np.add.at(neg, x[neg_ind] + y[neg_ind] * W + ind[neg_ind] * W * H, 1)
    pos = np.reshape(pos, (T, H, W))
    neg = np.reshape(neg, (T, H, W))
    # -- end of the transcription --

    frames[:, 0] = np.minimum(pos, _top(dtype))
    frames[:, 1] = np.minimum(neg, _top(dtype))
    return frames


def focal_stack_images_reference(events, rates, t_ref_us, sensor, roi: Roi | None = None, rates_y=None) -> np.ndarray:
    ev = _dtype(events)
    _check(ev)
    rates = np.asarray(rates, np.float64).ravel()
    ry = np.zeros_like(rates) if rates_y is None else np.asarray(rates_y, np.float64).ravel()
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    out = np.zeros((rates.size, h, w), np.int32)
    for d in range(rates.size):
        xs, ys = _shifted(ev, rates[d], ry[d], t_ref_us)
        keep = (xs >= max(x0, 0)) & (xs < x0 + w) & (ys >= max(y0, 0)) & (ys < y0 + h)
        np.add.at(out[d], (ys[keep] - y0, xs[keep] - x0), 1)
    return out


def accumulate_reference(events, rate, t_ref_us, sensor, roi: Roi | None = None) -> np.ndarray:
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    return focal_stack_images_reference(events, [rx], t_ref_us, sensor, roi, [ry])[0]


def time_surface_reference(events, rate, t_ref_us, sensor, tau_us=50_000.0, t_now_us=None) -> np.ndarray:
    ev = _dtype(events)
    _check(ev)
    width, height = _sensor(sensor)
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


def polarity_images_reference(events, rate, t_ref_us, sensor, roi: Roi | None = None, skip=None) -> np.ndarray:
    ev = _dtype(events)
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    keep = np.ones(ev.size, bool) if skip is None else ~np.asarray(skip, bool)[ev["y"], ev["x"]]
    xs, ys = _shifted(ev, rate, 0.0, t_ref_us)
    keep &= (xs >= 0) & (xs < width)
    xr, yr = xs - x0, ys - y0
    keep &= (xr >= 0) & (xr < w) & (yr >= 0) & (yr < h)
    out = np.zeros((2, h, w), np.int64)
    np.add.at(out, (1 - ev["p"][keep].astype(np.int64), yr[keep], xr[keep]), 1)  # channel 0 = ON
    return out
