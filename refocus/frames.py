"""Refocus events and pack them into T x 2 x H x W frames, an image or a time surface.

Public wrappers check their inputs (raising :class:`RefocusError`, a
ValueError) and call the Numba kernels; reference.py holds NumPy twins with
the same signatures for the parity tests. Rates are image-plane speeds in
px/s: a plane at depth d under a camera moving at v m/s has rate fx*v/d
(:meth:`SAIScene.rate`); the functions that think in depths take the scene.

Events are validated once, at the door: :func:`check_events` returns a
read-only :class:`CheckedEvents` view, and every wrapper trusts one (a
forward slice or a boolean selection of it stays checked, being sorted too).

One frame layout for every network input: T x 2 x H x W with channel 0 = ON
and channel 1 = OFF, as E-SAI's ``Pos``/``Neg`` and its networks read them.
"""

from __future__ import annotations

import numba
import numpy as np

from spikelens.datasets import EVENT_DTYPE
from spikelens.datasets.sai_scene import RefocusError, SAIScene
from spikelens.datasets.sensor_size import SensorSize, sensor_size
from spikelens.refocus import kernels

Roi = tuple[int, int, int, int]  # top, left, height, width
#: E-SAI's test crop: top-left (2, 45), 256 x 256.
ESAI_TEST_ROI: Roi = (2, 45, 256, 256)


class CheckedEvents(np.ndarray):
    """Events known time-sorted with 0/1 polarities: the wrappers skip their O(n) pass over them.

    Read-only, so nothing can unsort them in place. Indexing that keeps the order (a forward slice,
    a boolean mask) stays checked; anything else (fields, fancy indexing, NumPy functions) is plain.
    """

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(out, np.ndarray) and not _keeps_order(key):
            return out.view(np.ndarray)
        return out

    def __array_function__(self, func, types, args, kwargs):
        out = super().__array_function__(func, types, args, kwargs)
        return out.view(np.ndarray) if isinstance(out, CheckedEvents) else out


def _keeps_order(key: object) -> bool:
    if isinstance(key, slice):
        return key.step is None or key.step > 0
    return isinstance(key, np.ndarray) and key.dtype == np.bool_ and key.ndim == 1


def _dtype(ev: np.ndarray) -> np.ndarray:
    if not isinstance(ev, np.ndarray) or ev.dtype != EVENT_DTYPE or ev.ndim != 1:
        raise RefocusError(f"events must be a 1-D array of spikelens EVENT_DTYPE, got {getattr(ev, 'dtype', ev)}")
    return ev


def check_events(events: np.ndarray) -> CheckedEvents:
    """Reject unsorted streams and bad polarities once; the read-only view every wrapper then trusts."""
    if isinstance(events, CheckedEvents):
        return events
    ev = _dtype(events)
    back, badp = kernels.check_stream(ev)
    _raise_report(np.array([[back, badp]]))
    out = ev.view(CheckedEvents)
    out.flags.writeable = False
    return out


def _sensor(sensor: SensorSize) -> SensorSize:
    try:
        return sensor_size(sensor)
    except (TypeError, ValueError) as e:
        raise RefocusError(str(e)) from None


def _roi(roi: Roi | None, height: int, width: int) -> Roi:
    if roi is None:
        return 0, 0, height, width
    y, x, h, w = (int(v) for v in roi)
    if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > height or x + w > width:
        raise RefocusError(f"ROI (top={y}, left={x}, {h}x{w}) does not fit the {width}x{height} sensor")
    return y, x, h, w


def _out(out: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
    if out is None:
        return np.zeros(shape, dtype)
    if out.shape != shape or not out.flags.c_contiguous:
        raise RefocusError(f"out must be a C-contiguous array of shape {shape}, got {out.shape}")
    out.fill(0)
    return out


def _top(dtype) -> float:
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        return np.iinfo(dtype).max
    if dtype.kind == "f":
        return np.inf
    raise RefocusError(f"frames must be a signed integer or float type, got {dtype}")


def _raise_report(report: np.ndarray) -> None:
    back = report[:, 0][report[:, 0] >= 0]
    if back.size:
        raise RefocusError(f"events are not sorted by time (event {back.min()} goes back)")
    badp = report[:, 1][report[:, 1] >= 0]
    if badp.size:
        raise RefocusError(f"event {badp.min()} has a polarity other than 0/1")


def _check_shift(ev: np.ndarray, t_ref_us: int, *rates: float) -> None:
    """Keep (t - t_ref) * rate inside the range the kernels round exactly."""
    if ev.size == 0:
        return
    span = max(abs(int(ev["t"][0]) - int(t_ref_us)), abs(int(ev["t"][-1]) - int(t_ref_us)))
    for r in rates:
        if not np.isfinite(r) or span * abs(r) / 1e6 >= kernels.MAX_SHIFT:
            raise RefocusError(f"shift rate {r} px/s is not finite or shifts events by over 2**51 px")


def _bins(n_bins: int) -> int:
    if int(n_bins) < 1:
        raise RefocusError(f"need at least one time bin, got {n_bins}")
    return int(n_bins)


def pack_frames(
    events: np.ndarray,
    rate: float | tuple[float, float],
    t_ref_us: int,
    n_bins: int,
    sensor: SensorSize,
    roi: Roi | None = None,
    t_range: tuple[int, int] | None = None,
    dtype=np.int16,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Refocus with x' = x + rint((t - t_ref) * rate_x) (and y likewise), count into T x 2 x H x W (0 = ON).

    ``rate`` is px/s along x, or (rate_x, rate_y). Bins split ``t_range``
    ([first event, last event + 1) by default) into equal integer-microsecond
    parts: bin = (t - t0) * T // (t1 - t0). Events leaving the sensor or the
    ROI (top, left, height, width) are dropped. Events must be time-sorted.
    """
    ev = check_events(events)
    n_bins = _bins(n_bins)
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    frames = _out(out, (n_bins, 2, h, w), dtype)
    if ev.size == 0:
        return frames
    t0, t1 = (int(ev["t"][0]), int(ev["t"][-1]) + 1) if t_range is None else (int(t_range[0]), int(t_range[1]))
    if t1 <= t0:
        raise RefocusError(f"empty time range [{t0}, {t1})")
    _check_shift(ev, t_ref_us, rx, ry)
    edges = kernels.bin_edges(ev["t"], t0, t1, n_bins)
    kernels.pack_frames(ev, int(t_ref_us), rx / 1e6, ry / 1e6, edges, y0, x0, _top(dtype), frames)
    return frames


def pack_frames_esai(
    events: np.ndarray,
    scene: SAIScene,
    depth: float,
    n_bins: int = 30,
    roi: Roi | None = None,
    dtype=np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """E-SAI's preprocessing (codes/Preprocess.py, pack_with_manual_refocus), bit for bit.

    shift = round((t - t_ref) * fx * v / d) with t in seconds (half to even,
    as NumPy's round); x only. An event whose shifted x would leave the
    sensor is not dropped: it keeps its original x, as E-SAI does. The bins
    are (t - t_min) / ((t_max - t_min) / T) over ALL events, before the ROI
    crop, the last edge folded into bin T-1. Times travel as integer
    microseconds here, so a file whose float seconds carry sub-microsecond
    digits can differ from E-SAI at a bin edge; the simulator's cannot.
    (The generic :func:`pack_frames` drops events that leave the sensor.)
    """
    ev = check_events(events)
    n_bins = _bins(n_bins)
    fx, v, t_ref_us = scene.fx, scene.v, scene.t_ref_us
    width, height = _sensor(scene.sensor)
    y0, x0, h, w = _roi(roi, height, width)
    rate = scene.rate(depth)
    frames = _out(out, (n_bins, 2, h, w), dtype)
    _check_shift(ev, t_ref_us, rate)
    ref_s = int(t_ref_us) / 1e6
    if ev.size == 0:
        return frames
    min_t, max_t = int(ev["t"][0]) / 1e6, int(ev["t"][-1]) / 1e6  # sorted: checked at the door (check_events)
    interval = (max_t - min_t) / n_bins
    edges = kernels.esai_bin_edges(ev, min_t, interval, n_bins)
    kernels.pack_frames_esai(
        ev,
        ref_s,
        float(fx),
        float(v),
        float(depth),
        width,
        min_t,
        interval,
        edges,
        y0,
        x0,
        _top(dtype),
        frames,
    )
    return frames


def focal_stack_images(
    events: np.ndarray,
    rates: np.ndarray,
    t_ref_us: int,
    sensor: SensorSize,
    roi: Roi | None = None,
    rates_y: np.ndarray | None = None,
) -> np.ndarray:
    """Event-count images (D x H x W, int32) refocused at each rate (px/s), in parallel over rates."""
    ev = check_events(events)
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    rates = np.asarray(rates, np.float64).ravel()
    ry = np.zeros_like(rates) if rates_y is None else np.asarray(rates_y, np.float64).ravel()
    if ry.shape != rates.shape:
        raise RefocusError("rates and rates_y must have the same length")
    _check_shift(ev, t_ref_us, *rates, *ry)
    out = np.zeros((rates.size, h, w), np.int32)
    kernels.focal_stack(ev, int(t_ref_us), rates / 1e6, ry / 1e6, width, height, y0, x0, _block(rates.size, h * w), out)
    return out


#: Bytes of images one thread keeps hot while it refocuses a block of rates (about an L2 cache).
_BLOCK_BYTES = 1 << 20


def _block(n_rates: int, pixels: int) -> int:
    """Rates per thread pass: as many as fit _BLOCK_BYTES (at most 8), but enough blocks for every thread."""
    per_thread = -(-n_rates // numba.get_num_threads())
    return max(1, min(8, _BLOCK_BYTES // (4 * pixels), per_thread))


def accumulate(
    events: np.ndarray,
    rate: float | tuple[float, float],
    t_ref_us: int,
    sensor: SensorSize,
    roi: Roi | None = None,
) -> np.ndarray:
    """One refocused event-count image (H x W, int32), for display and sharpness scores."""
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    return focal_stack_images(events, [rx], t_ref_us, sensor, roi, [ry])[0]


def polarity_images(
    events: np.ndarray,
    rate: float,
    t_ref_us: int,
    sensor: SensorSize,
    roi: Roi | None = None,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """2 x H x W int64 counts (channel 0 = ON, 1 = OFF) refocused at ``rate`` px/s along x, leaving out
    events from the True sensor pixels of ``skip``.

    The one pass the training-free reconstruction needs (rate 0 gives each pixel's own counts).
    """
    ev = check_events(events)
    width, height = _sensor(sensor)
    y0, x0, h, w = _roi(roi, height, width)
    skip = np.zeros((height, width), np.bool_) if skip is None else np.ascontiguousarray(skip, dtype=np.bool_)
    if skip.shape != (height, width):
        raise RefocusError(f"skip must be the sensor's {height} x {width}, got {skip.shape}")
    _check_shift(ev, t_ref_us, rate)
    out = np.zeros((2, h, w), np.int64)
    chunks = max(1, min(numba.get_num_threads(), ev.size // 65536), -(-ev.size // 2**31))  # int32 per chunk
    outside = np.zeros(chunks, np.int64)
    kernels.polarity_images(ev, int(t_ref_us), rate / 1e6, skip, y0, x0, chunks, out, outside)
    if outside.any():
        raise RefocusError(f"{int(outside.sum())} events fall outside the {width} x {height} sensor")
    return out


def mask_hits(events: np.ndarray, rate: float, t_ref_us: int, mask: np.ndarray) -> np.ndarray:
    """Which events land on a True pixel of ``mask`` (H x W, the sensor) when refocused at ``rate`` px/s.

    Lets autofocus set aside the events a plane explains (its sharp edges) and look behind it.
    """
    ev = check_events(events)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if mask.ndim != 2:
        raise RefocusError(f"mask must be H x W, got shape {mask.shape}")
    _check_shift(ev, t_ref_us, rate)
    out = np.zeros(ev.size, np.bool_)
    kernels.mask_hits(ev, int(t_ref_us), rate / 1e6, mask, out)
    return out


def time_surface(
    events: np.ndarray,
    rate: float | tuple[float, float],
    t_ref_us: int,
    sensor: SensorSize,
    tau_us: float = 50_000.0,
    t_now_us: int | None = None,
) -> np.ndarray:
    """Signed exponential time surface of the refocused events: p * exp(-(t_now - t_last) / tau), H x W."""
    ev = check_events(events)
    width, height = _sensor(sensor)
    if tau_us <= 0:
        raise RefocusError(f"tau must be positive, got {tau_us}")
    rx, ry = (rate, 0.0) if np.isscalar(rate) else rate
    _check_shift(ev, t_ref_us, rx, ry)
    last_t = np.full((height, width), np.iinfo(np.int64).min, np.int64)
    last_p = np.zeros((height, width), np.int8)
    kernels.last_events(ev, int(t_ref_us), rx / 1e6, ry / 1e6, width, height, last_t, last_p)
    if t_now_us is None:
        t_now_us = int(ev["t"][-1]) if ev.size else 0
    return surface_from_last(last_t, last_p, tau_us, t_now_us)


def surface_from_last(last_t: np.ndarray, last_p: np.ndarray, tau_us: float, t_now_us: int) -> np.ndarray:
    seen = last_t != np.iinfo(np.int64).min
    age = np.where(seen, t_now_us - last_t, 0).astype(np.float64)
    sign = np.where(last_p > 0, 1.0, -1.0)
    return np.where(seen, sign * np.exp(-age / tau_us), 0.0).astype(np.float32)
