"""Qt-free replay: random access to a recording, frame building and a playback clock.

The GUI drives these from a timer; the CLI and benchmarks can drive them
directly. :func:`open_source` streams a recording once (any format), keeping
it in memory when small and spilling it into a temporary indexed HDF5 file
when large, so playback memory stays bounded; the same pass yields the event
rate over the whole recording and per-pixel counts (for the hot-pixel filter).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from spikelens.datasets.atomic import atomic_output
from spikelens.datasets.detect import open_recording
from spikelens.datasets.errors import FormatError
from spikelens.datasets.filters import background_activity_filter, hot_pixel_mask
from spikelens.datasets.formats.hdf5 import H5EventWriter, H5Recording
from spikelens.datasets.recording import RecordingMeta
from spikelens.refocus.frames import time_surface

Mode = Literal["polarity", "count", "time_surface", "on", "off"]
Scheme = Literal["red_blue", "grey", "colormap"]
MODES: tuple[Mode, ...] = ("polarity", "count", "time_surface", "on", "off")
SCHEMES: tuple[Scheme, ...] = ("red_blue", "grey", "colormap")
#: recordings up to this many events stay in memory; larger ones go to a temporary HDF5 file
MEMORY_EVENTS = 40_000_000
RATE_BIN_US = 10_000


class Cancelled(Exception):
    """Raised inside a pipeline when its ``cancelled`` callback says stop."""


class EventSource:
    """Time-windowed access to one recording (in memory or in an indexed HDF5 file)."""

    def __init__(
        self,
        meta: RecordingMeta,
        rate_hz: np.ndarray,
        pixel_counts: np.ndarray,
        t_start_us: int,
        t_end_us: int,
        events: np.ndarray | None = None,
        h5: H5Recording | None = None,
        temp: Path | None = None,
    ) -> None:
        self.meta = meta
        self.rate_hz = rate_hz
        self.pixel_counts = pixel_counts
        self.t_start_us, self.t_end_us = t_start_us, t_end_us
        self.n_events = int(pixel_counts.sum())
        self._events = events
        self._h5 = h5
        self._temp = temp

    @property
    def sensor(self) -> tuple[int, int]:
        return self.meta.height, self.meta.width

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Events with t0 <= t < t1."""
        if self._events is not None:
            lo, hi = np.searchsorted(self._events["t"], [t0, t1])
            return self._events[lo:hi]
        assert self._h5 is not None
        return self._h5.window(int(t0), int(t1))

    def last_n(self, t1: int, n: int) -> np.ndarray:
        """The ``n`` events before ``t1`` (fewer at the start of the recording)."""
        if self._events is not None:
            hi = int(np.searchsorted(self._events["t"], t1))
            return self._events[max(0, hi - n) : hi]
        span = max(RATE_BIN_US, int(n / max(self.n_events / max(self.duration_us, 1), 1e-9)))
        while True:
            ev = self.window(t1 - span, t1)
            if ev.size >= n or t1 - span <= self.t_start_us:
                return ev[-n:]
            span *= 4

    @property
    def duration_us(self) -> int:
        return self.t_end_us - self.t_start_us

    def all_events(self, limit: int = MEMORY_EVENTS) -> np.ndarray:
        if self._events is not None:
            return self._events
        if self.n_events > limit:
            raise ValueError(f"{self.n_events} events is more than the {limit} this view loads at once")
        return self.window(self.t_start_us, self.t_end_us + 1)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)


def open_source(
    path: str | Path,
    first_packet: Callable[[np.ndarray, RecordingMeta], object] | None = None,
    progress: Callable[[int], object] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    memory_events: int = MEMORY_EVENTS,
) -> EventSource:
    """Read ``path`` once: ``first_packet`` gets the first events at once (for a first frame), ``progress``
    the events read so far. Raises :class:`FormatError` for unreadable files, :class:`Cancelled` on cancel."""
    path = Path(path)
    rec = open_recording(path)
    meta = rec.meta
    indexed = isinstance(rec, H5Recording)  # replayable from the file itself
    tally = _Tally(meta.width * meta.height)
    spool = _Spool(meta, memory_events // 4 if indexed else memory_events, spill=not indexed)
    try:
        for pkt in rec.packets():
            if cancelled():
                raise Cancelled
            if tally.n == 0 and first_packet is not None and pkt.size:
                first_packet(pkt, meta)
            tally.add(pkt, meta.width)
            spool.add(pkt, tally.n)
            if progress:
                progress(tally.n)
        if tally.n == 0:
            raise FormatError(path, "the recording holds no events")
    except BaseException:
        rec.close()
        spool.discard()
        raise
    rate, t0, t1 = _rates(tally.rates)
    if indexed and spool.overflowed:
        return EventSource(meta, rate, tally.counts, t0, t1, h5=rec)
    rec.close()
    return EventSource(meta, rate, tally.counts, t0, t1, **spool.finish())


class _Tally:
    """Event rate per RATE_BIN_US and per-pixel counts, accumulated packet by packet."""

    def __init__(self, n_pixels: int) -> None:
        self.rates: dict[int, int] = {}
        self.counts = np.zeros(n_pixels, np.int64)
        self.n = 0

    def add(self, pkt: np.ndarray, width: int) -> None:
        uniq, c = np.unique(pkt["t"] // RATE_BIN_US, return_counts=True)
        for k, v in zip(uniq.tolist(), c.tolist(), strict=True):
            self.rates[k] = self.rates.get(k, 0) + v
        self.counts += np.bincount(pkt["y"].astype(np.int64) * width + pkt["x"], minlength=self.counts.size)
        self.n += pkt.size


class _Spool:
    """Packets in memory up to ``limit`` events; past it, moved into a temporary indexed HDF5 file
    (``spill``) or dropped (the source file is already indexed)."""

    def __init__(self, meta: RecordingMeta, limit: int, spill: bool) -> None:
        self.meta, self.limit, self.spill = meta, limit, spill
        self.parts: list[np.ndarray] = []
        self.writer: H5EventWriter | None = None
        self.temp: Path | None = None
        self.overflowed = False

    def add(self, pkt: np.ndarray, n_total: int) -> None:
        if not self.overflowed and n_total > self.limit:
            self.overflowed = True
            if self.spill:
                fd, name = tempfile.mkstemp(prefix="spikelens-replay-", suffix=".h5")
                os.close(fd)
                self.temp = Path(name)
                self.writer = H5EventWriter(self.temp, self.meta, compression="blosc-lz4")
                for p in self.parts:
                    self.writer.append(p)
            self.parts = []
        if self.writer is not None:
            self.writer.append(pkt)
        elif not self.overflowed:
            self.parts.append(pkt)

    def finish(self) -> dict:
        if self.writer is not None:
            self.writer.close()
            return {"h5": H5Recording(self.temp), "temp": self.temp}
        return {"events": np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]}

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


def _rates(rates: dict[int, int]) -> tuple[np.ndarray, int, int]:
    lo, hi = min(rates), max(rates)
    r = np.zeros(hi - lo + 1, np.float64)
    for k, v in rates.items():
        r[k - lo] = v
    return r * (1e6 / RATE_BIN_US), lo * RATE_BIN_US, (hi + 1) * RATE_BIN_US


@dataclass(frozen=True)
class FrameSettings:
    """How a frame is built and coloured (what the View controls set)."""

    mode: Mode = "polarity"
    scheme: Scheme = "red_blue"
    #: a frame is the last ``window_us`` (window) or the last ``events`` events (count)
    slicing: Literal["time", "count"] = "time"
    window_us: int = 33_000
    events: int = 20_000
    tau_us: float = 20_000.0
    #: counts at which colour saturates
    saturation: int = 4
    denoise: bool = False
    denoise_us: int = 5_000
    hot_pixels: bool = False
    roi: tuple[int, int, int, int] | None = None  # y, x, h, w


@functools.cache
def lut(scheme: Scheme, signed: bool) -> np.ndarray:
    """256 x 3 uint8 lookup table (read-only, built once); signed modes put "no events" at index 128."""
    table = _build_lut(scheme, signed)
    table.flags.writeable = False
    return table


def _build_lut(scheme: Scheme, signed: bool) -> np.ndarray:
    i = np.arange(256, dtype=np.float32)
    if scheme == "colormap":
        cmap = cv2.COLORMAP_TWILIGHT_SHIFTED if signed else cv2.COLORMAP_INFERNO
        return cv2.applyColorMap(i.astype(np.uint8)[:, None], cmap)[:, 0, ::-1].copy()
    if scheme == "grey":
        v = i if signed else 128 + i / 2
        return np.repeat(np.clip(v, 0, 255).astype(np.uint8)[:, None], 3, axis=1)
    # red/blue on dark: OFF blue below 128, ON red above; unsigned counts run dark -> red
    bg = 24
    if signed:
        on = np.clip((i - 128) / 127, 0, 1)
        off = np.clip((128 - i) / 128, 0, 1)
        rgb = np.stack([bg + (255 - bg) * on, bg + 90 * on * off, bg + (255 - bg) * off], 1)
    else:
        k = i / 255
        rgb = np.stack([bg + (255 - bg) * k, bg + 120 * k**2, bg * (1 - k)], 1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def is_signed(mode: Mode) -> bool:
    return mode in ("polarity", "time_surface")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # H x W uint8 levels (see lut)
    t0_us: int
    t1_us: int
    n_events: int


class FrameBuilder:
    """Events -> uint8 level image: the display's fast path (fixed levels, colour by LUT)."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self._hot: np.ndarray | None = None

    def hot_mask(self) -> np.ndarray:
        if self._hot is None:
            self._hot = hot_pixel_mask(self.source.pixel_counts)
        return self._hot

    def events(self, t_us: int, s: FrameSettings) -> np.ndarray:
        src = self.source
        ev = src.window(t_us - s.window_us, t_us) if s.slicing == "time" else src.last_n(t_us, s.events)
        if s.roi is not None:
            y, x, h, w = s.roi
            keep = (ev["x"] >= x) & (ev["x"] < x + w) & (ev["y"] >= y) & (ev["y"] < y + h)
            ev = ev[keep]
        if s.hot_pixels and ev.size:
            ev = ev[~self.hot_mask()[ev["y"].astype(np.int64) * src.meta.width + ev["x"]]]
        if s.denoise and ev.size:
            ev = ev[background_activity_filter(ev, src.meta.width, src.meta.height, s.denoise_us)]
        return ev

    def frame(self, t_us: int, s: FrameSettings) -> Frame:
        ev = self.events(t_us, s)
        h, w = self.source.sensor
        t0 = int(ev["t"][0]) if (s.slicing == "count" and ev.size) else t_us - s.window_us
        return Frame(render(ev, (h, w), s, t_us), t0, t_us, int(ev.size))


def render(ev: np.ndarray, sensor: tuple[int, int], s: FrameSettings, t_now_us: int) -> np.ndarray:
    h, w = sensor
    if s.mode == "time_surface":
        surf = time_surface(ev, 0.0, t_now_us, (h, w), s.tau_us, t_now_us) if ev.size else np.zeros((h, w))
        return np.clip(128 + 127 * surf, 0, 255).astype(np.uint8)
    idx = ev["y"].astype(np.int64) * w + ev["x"]
    scale = 127 / s.saturation if s.mode == "polarity" else 255 / s.saturation
    if s.mode == "polarity":
        net = np.bincount(idx, weights=2.0 * ev["p"] - 1, minlength=h * w)
        img = 128 + net * scale
    else:
        sel = slice(None) if s.mode == "count" else (ev["p"] == (1 if s.mode == "on" else 0))
        img = np.bincount(idx[sel], minlength=h * w) * scale
    return np.clip(img, 0, 255).astype(np.uint8).reshape(h, w)


def to_rgb(image: np.ndarray, s: FrameSettings) -> np.ndarray:
    return lut(s.scheme, is_signed(s.mode))[image]


SPEEDS = (0.01, 0.03, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)


@dataclass
class Clock:
    """Playback position. ``speed`` None means as fast as possible: one frame window per tick."""

    t_start_us: int
    t_end_us: int
    position_us: int
    speed: float | None = 1.0
    loop: bool = False
    playing: bool = False

    def advance(self, wall_s: float, frame_us: int) -> bool:
        """Move on by ``wall_s`` of wall time; returns False when playback stopped at the end."""
        step = frame_us if self.speed is None else max(1, round(wall_s * 1e6 * self.speed))
        pos = self.position_us + step
        if pos > self.t_end_us:
            if self.loop:
                pos = self.t_start_us + (pos - self.t_end_us) % max(1, self.t_end_us - self.t_start_us)
            else:
                self.position_us, self.playing = self.t_end_us, False
                return False
        self.position_us = pos
        return True

    def seek(self, t_us: int) -> None:
        self.position_us = int(min(max(t_us, self.t_start_us), self.t_end_us))

    def step(self, frames: int, frame_us: int) -> None:
        self.seek(self.position_us + frames * frame_us)


def export_video(
    builder: FrameBuilder,
    settings: FrameSettings,
    path: str | Path,
    t0_us: int,
    t1_us: int,
    fps: float = 30.0,
    speed: float = 1.0,
    progress: Callable[[int, int], object] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """Render [t0, t1) to an MP4 (OpenCV mp4v) at ``speed`` x real time; returns frames written."""
    path = Path(path)
    step = max(1, round(1e6 * speed / fps))
    times = np.arange(t0_us + step, t1_us + 1, step)
    if times.size == 0:
        raise ValueError("the export range is shorter than one frame")
    h, w = builder.source.sensor
    with atomic_output(path, path.suffix) as tmp:
        out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not out.isOpened():
            raise OSError(f"OpenCV cannot write {path.name} (no mp4v encoder)")
        try:
            for k, t in enumerate(times):
                if cancelled():
                    raise Cancelled
                out.write(to_rgb(builder.frame(int(t), settings).image, settings)[..., ::-1])
                if progress:
                    progress(k + 1, times.size)
        finally:
            out.release()
    return int(times.size)


__all__ = [
    "MODES",
    "SCHEMES",
    "SPEEDS",
    "Cancelled",
    "Clock",
    "EventSource",
    "Frame",
    "FrameBuilder",
    "FrameSettings",
    "export_video",
    "lut",
    "open_source",
    "render",
    "to_rgb",
]
