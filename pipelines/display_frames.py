"""Events -> display frames: settings, the uint8 level image, and lookup tables.

The display's fast path: a frame is an H x W uint8 image of levels with
fixed meaning (128 = no events in signed modes), coloured by a 256-entry
lookup table, so the GUI never rescales. One :class:`FrameBuilder` serves
replay of a file and the live view: both hand it a source with ``window``,
``last_n``, ``meta`` and ``pixel_counts``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np

from spikelens.datasets.filters import background_activity_filter, hot_pixel_mask
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sensor_size import SensorSize
from spikelens.refocus.frames import time_surface


class WindowedEvents(Protocol):
    """What a frame builder reads: a file's indexed spool or a live ring buffer."""

    meta: RecordingMeta

    @property
    def pixel_counts(self) -> np.ndarray: ...

    def window(self, t0: int, t1: int) -> np.ndarray: ...

    def last_n(self, t1: int, n: int) -> np.ndarray: ...


Mode = Literal["polarity", "count", "time_surface", "on", "off"]
Scheme = Literal["red_blue", "grey", "colormap"]
MODES: tuple[Mode, ...] = ("polarity", "count", "time_surface", "on", "off")
SCHEMES: tuple[Scheme, ...] = ("red_blue", "grey", "colormap")


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

    def __init__(self, source: WindowedEvents) -> None:
        self.source = source
        self._hot: np.ndarray | None = None

    @property
    def sensor(self) -> SensorSize:
        return SensorSize.of(self.source.meta)

    def hot_mask(self) -> np.ndarray:
        """Pixels firing far above the rest, from the source's counts when first needed
        (the whole file, or what a live buffer holds at that moment)."""
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
        t0 = int(ev["t"][0]) if (s.slicing == "count" and ev.size) else t_us - s.window_us
        return Frame(render(ev, self.sensor, s, t_us), t0, t_us, int(ev.size))


def render(ev: np.ndarray, sensor: SensorSize, s: FrameSettings, t_now_us: int) -> np.ndarray:
    w, h = sensor
    if s.mode == "time_surface":
        surf = time_surface(ev, 0.0, t_now_us, sensor, s.tau_us, t_now_us) if ev.size else np.zeros((h, w))
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
