"""Numba kernels for event refocusing. Each has a NumPy twin in reference.py.

Kernels trust their inputs (the wrappers in frames.py check parameters),
take preallocated outputs, release the GIL and cache their compiled code.
They read the packed event records directly (one record load beats four
strided field loads) and index outputs flat.

Parallel packing without atomics: events are time-sorted, so each time bin
is a contiguous range of events. We find the ranges by binary search on the
(monotonic) bin function and give each bin to one thread; bins never share
output memory. The wrappers hand them events :func:`check_stream` passed
once (sorted, polarities 0/1). Counts saturate at ``top`` instead of wrapping.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: 1.5 * 2**52: adding and subtracting it rounds a double to an integer, half to even.
_ROUNDER = 6755399441055744.0
#: |values| below this round exactly with _ROUNDER; the wrappers keep shifts inside it.
MAX_SHIFT = 2.0**51


@nb.njit(cache=True, nogil=True, inline="always")
def round_half_even(v):
    """np.rint for |v| < 2**51, without its libm call (a libm call per event otherwise).

    Valid under the default round-to-nearest-even FP mode and without
    fastmath, which would fold the two operations away.
    """
    return np.int64((v + _ROUNDER) - _ROUNDER)


@nb.njit(cache=True, nogil=True)
def _first_at_least(t, value, lo, hi):
    """First index in [lo, hi) with t >= value (hi if none); t sorted."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if t[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True)
def bin_edges(t, t0, t1, n_bins):
    """edges[b] = first event of bin b, where bin = (t - t0) * n_bins // (t1 - t0) for t in [t0, t1)."""
    span = t1 - t0
    edges = np.empty(n_bins + 1, np.int64)
    n = t.shape[0]
    lo = _first_at_least(t, t0, 0, n)
    for b in range(n_bins):
        lo = _first_at_least(t, t0 + (b * span + n_bins - 1) // n_bins, lo, n)
        edges[b] = lo
    edges[n_bins] = _first_at_least(t, t1, lo, n)
    return edges


@nb.njit(cache=True, nogil=True)
def _check(ev, lo, hi, report, b):
    """Note in report[b] the first index in [lo, hi) whose time goes back or whose polarity is not 0/1."""
    prev = ev[lo - 1].t if lo > 0 else np.iinfo(np.int64).min
    for i in range(lo, hi):
        e = ev[i]
        if report[b, 0] < 0 and e.t < prev:
            report[b, 0] = i
        if report[b, 1] < 0 and (e.p < 0 or e.p > 1):
            report[b, 1] = i
        prev = e.t


@nb.njit(cache=True, nogil=True, inline="always")
def _count(flat, base, xr, yr, w, h, top):
    """Count one event at (xr, yr) of the w x h plane starting at flat[base], if inside; saturating."""
    if 0 <= xr < w and 0 <= yr < h:
        k = base + yr * w + xr
        if flat[k] < top:
            flat[k] += 1


@nb.njit(cache=True, nogil=True, parallel=True)
def pack_frames(ev, t_ref, rate_x, rate_y, edges, roi_y, roi_x, top, out):
    """Refocus and count events into out[bin, 1 - polarity, y - roi_y, x - roi_x] (channel 0 = ON).

    rate_x / rate_y are px per microsecond; x' = x + rint((t - t_ref) * rate).
    Events whose shifted position leaves the ROI (which lies inside the
    sensor) are dropped.
    """
    n_bins, _, h, w = out.shape
    flat = out.reshape(-1)
    plane = h * w
    shift_y = rate_y != 0.0
    for b in nb.prange(n_bins):
        base = b * 2 * plane
        for i in range(edges[b], edges[b + 1]):
            e = ev[i]
            dt = np.float64(e.t - t_ref)
            xr = e.x + round_half_even(dt * rate_x) - roi_x
            yr = np.int64(e.y) - roi_y
            if shift_y:
                yr += round_half_even(dt * rate_y)
            _count(flat, base + (1 - np.int64(e.p)) * plane, xr, yr, w, h, top)  # channel 0 = ON


# -- E-SAI compatible packing -------------------------------------------------------
@nb.njit(cache=True, nogil=True, inline="always")
def _esai_shift(t_us, ref_s, fx, v, depth):
    # the reference's exact float expression: round((t - ref_t) * fx * v / d), t in seconds
    return round_half_even((t_us / 1e6 - ref_s) * fx * v / depth)


@nb.njit(cache=True, nogil=True, inline="always")
def _esai_x(e, ref_s, fx, v, depth, width):
    """E-SAI's shifted x: x + shift where that stays on the sensor, else the original x (the event is kept)."""
    xs = e.x + _esai_shift(e.t, ref_s, fx, v, depth)
    if 0 <= xs < width:
        return xs
    return np.int64(e.x)


@nb.njit(cache=True, nogil=True, inline="always")
def _esai_bin(t_us, min_t, interval, n_bins):
    if interval <= 0.0:
        return 0
    ind = np.int64((t_us / 1e6 - min_t) / interval)
    return min(ind, n_bins - 1)


@nb.njit(cache=True, nogil=True)
def esai_bin_edges(ev, min_t, interval, n_bins):
    """edges[b] = first event whose E-SAI bin is >= b (the bin is monotonic in t)."""
    n = ev.shape[0]
    edges = np.empty(n_bins + 1, np.int64)
    edges[0] = 0
    edges[n_bins] = n
    for b in range(1, n_bins):
        lo, hi = edges[b - 1], n
        while lo < hi:
            mid = (lo + hi) >> 1
            if _esai_bin(ev[mid].t, min_t, interval, n_bins) < b:
                lo = mid + 1
            else:
                hi = mid
        edges[b] = lo
    return edges


@nb.njit(cache=True, nogil=True, parallel=True)
def pack_frames_esai(ev, ref_s, fx, v, depth, width, min_t, interval, edges, roi_y, roi_x, top, out):
    """E-SAI's Preprocess.py in one parallel pass (see frames.pack_frames_esai)."""
    n_bins, _, h, w = out.shape
    flat = out.reshape(-1)
    plane = h * w
    for b in nb.prange(n_bins):
        base = b * 2 * plane
        for i in range(edges[b], edges[b + 1]):
            e = ev[i]
            xr = _esai_x(e, ref_s, fx, v, depth, width) - roi_x
            yr = np.int64(e.y) - roi_y
            _count(flat, base + (1 - np.int64(e.p)) * plane, xr, yr, w, h, top)  # channel 0 = ON


# -- images at many shift rates (focal stack, autofocus, display) ---------------------------
@nb.njit(cache=True, nogil=True, parallel=True)
def focal_stack(ev, t_ref, rates_x, rates_y, width, height, roi_y, roi_x, block, out):
    """out[d, y, x] = count of events landing on (x, y) when refocused with rates[d] (px/us).

    Threads take blocks of ``block`` rates, so each event is loaded once per block rather than once
    per rate; a block's images are written by its thread only.
    """
    n_d, h, w = out.shape
    flat = out.reshape(n_d, h * w)
    n_blocks = (n_d + block - 1) // block
    for blk in nb.prange(n_blocks):
        d0 = blk * block
        d1 = min(d0 + block, n_d)
        for i in range(ev.shape[0]):
            e = ev[i]
            dt = np.float64(e.t - t_ref)
            for d in range(d0, d1):
                xs = e.x + round_half_even(dt * rates_x[d])
                ys = e.y + round_half_even(dt * rates_y[d])
                if xs < 0 or xs >= width or ys < 0 or ys >= height:
                    continue
                xr = xs - roi_x
                yr = ys - roi_y
                if xr < 0 or xr >= w or yr < 0 or yr >= h:
                    continue
                flat[d, yr * w + xr] += 1


@nb.njit(cache=True, nogil=True)
def last_events(ev, t_ref, rate_x, rate_y, width, height, last_t, last_p):
    """Time and polarity of the latest refocused event at each pixel (time surfaces)."""
    for i in range(ev.shape[0]):
        e = ev[i]
        dt = np.float64(e.t - t_ref)
        xs = e.x + round_half_even(dt * rate_x)
        ys = e.y + round_half_even(dt * rate_y)
        if xs < 0 or xs >= width or ys < 0 or ys >= height:
            continue
        last_t[ys, xs] = e.t
        last_p[ys, xs] = e.p


@nb.njit(cache=True, nogil=True)
def check_stream(ev):
    """(first index whose time goes back, first index whose polarity is not 0/1); -1 if none."""
    report = np.full((1, 2), -1, np.int64)
    _check(ev, 0, ev.shape[0], report, 0)
    return report[0, 0], report[0, 1]


@nb.njit(cache=True, nogil=True)
def mask_hits(ev, t_ref, rate_x, mask, out):
    """out[i] = the event refocused at rate_x (px/us) lands on a True pixel of mask (H x W)."""
    height, width = mask.shape
    for i in range(ev.shape[0]):
        e = ev[i]
        xs = e.x + round_half_even(np.float64(e.t - t_ref) * rate_x)
        out[i] = 0 <= xs < width and 0 <= e.y < height and mask[e.y, xs]


@nb.njit(cache=True, nogil=True, parallel=True)
def polarity_images(ev, t_ref, rate_x, skip, roi_y, roi_x, n_chunks, out, outside):
    """out[1 - p, y, x] += events of polarity p landing on (x, y) at rate_x (px/us), except those from a True
    sensor pixel of ``skip`` (H x W). Threads take contiguous chunks of events into images of their own,
    summed at the end (one image would need atomics). outside[chunk] counts events off the sensor."""
    height, width = skip.shape
    _, h, w = out.shape
    sk = skip.reshape(-1)
    part = np.zeros((n_chunks, 2 * h * w), np.int32)
    step = (ev.shape[0] + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        img = part[c]
        off = 0
        for i in range(c * step, min((c + 1) * step, ev.shape[0])):
            e = ev[i]
            x = np.int64(e.x)
            y = np.int64(e.y)
            if x < 0 or x >= width or y < 0 or y >= height:
                off += 1
                continue
            if sk[y * width + x]:
                continue
            xr = x + round_half_even(np.float64(e.t - t_ref) * rate_x)
            if xr < 0 or xr >= width:
                continue
            xr -= roi_x
            y -= roi_y
            if xr < 0 or xr >= w or y < 0 or y >= h:
                continue
            img[(1 - np.int64(e.p)) * h * w + y * w + xr] += 1
        outside[c] = off
    flat = out.reshape(-1)
    for c in range(n_chunks):
        flat += part[c]
