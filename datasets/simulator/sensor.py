"""An ESIM/v2e-style event camera: rendered intensity frames in, time-ordered events out.

The signal comes from :mod:`.pixels` (per-pixel log intensity, mismatched
thresholds, interpolated timestamps, refractory period). On top of it the
sensor adds background activity (Poisson, uniform over pixels and polarity),
optional hot pixels (a few pixels firing fast at a fixed polarity), which do
not touch the pixels' memorised levels, and optional low-light shot noise,
which does. Every random draw comes from the generator the simulator was
built with, so a seed fixes the output.

Shot noise is what photon and dark-current noise in the photoreceptor make
of a dim pixel (v2e's model, Graca and Delbruck 2021): events of either
polarity, at a rate highest in the dark and falling linearly with intensity
to ``shot_noise_bright`` of it at white, scaled by the nominal threshold over
the pixel's own (a lower threshold is crossed more often). A noise crossing
is a real crossing, so the pixel memorises the noisy level and, the signal
not having moved, fires back once its refractory period allows: noise comes
in ON/OFF pairs, as a dim real pixel's does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from spikelens.datasets.events import empty_events
from spikelens.datasets.simulator.pixels import NEVER, emit_pixels


@dataclass(frozen=True)
class SensorParams:
    """Sensor constants. Thresholds and ``threshold_sigma`` are in natural-log intensity units (as in v2e)."""

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    #: pixel-to-pixel standard deviation of each threshold
    threshold_sigma: float = 0.03
    #: thresholds never fall below this, however unlucky the draw
    threshold_min: float = 0.01
    refractory_us: float = 100.0
    #: offset added to intensity (in [0, 1]) before the log: keeps dark pixels from amplifying noise
    log_eps: float = 0.01
    #: background-activity rate per pixel
    noise_rate_hz: float = 0.1
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 200.0
    #: low-light shot noise: events per second of a black pixel, both polarities together
    shot_noise_hz: float = 0.0
    #: the shot-noise rate of a white pixel, as a share of the black one's (v2e's 0.25)
    shot_noise_bright: float = 0.25

    def __post_init__(self) -> None:
        if min(self.threshold_on, self.threshold_off) <= 0 or self.threshold_min <= 0:
            raise ValueError("contrast thresholds must be positive")
        if self.threshold_sigma < 0 or self.refractory_us < 0 or self.log_eps <= 0:
            raise ValueError("threshold_sigma and refractory_us must be >= 0 and log_eps > 0")
        if min(self.noise_rate_hz, self.hot_pixel_rate_hz, self.shot_noise_hz) < 0:
            raise ValueError("noise rates must be >= 0")
        if not 0 <= self.hot_pixel_fraction <= 1 or not 0 <= self.shot_noise_bright <= 1:
            raise ValueError("hot_pixel_fraction and shot_noise_bright must be in [0, 1]")


def _as_intensity(frame: np.ndarray) -> np.ndarray:
    """Frames are floats in [0, 1] or uint8 (scaled by 1/255); colour is averaged to grey."""
    f = np.asarray(frame)
    if f.ndim == 3:
        f = f.mean(axis=2, dtype=np.float32) if f.dtype != np.uint8 else f.mean(axis=2) / 255.0
    elif f.dtype == np.uint8:
        f = f / np.float32(255.0)
    if f.ndim != 2:
        raise ValueError(f"a frame must be H x W (or H x W x C), got shape {np.shape(frame)}")
    return f.astype(np.float32, copy=False)


class EventSimulator:
    """Stateful sensor: :meth:`step` turns the next frame into the events since the previous one."""

    def __init__(
        self,
        first_frame: np.ndarray,
        t0_us: int,
        params: SensorParams | None = None,
        seed: int | np.random.Generator | None = 0,
    ) -> None:
        self.params = params = params or SensorParams()
        self.rng = np.random.default_rng(seed)
        self._log = self._log_of(_as_intensity(first_frame))
        self.height, self.width = self._log.shape
        n = self._log.size
        self._ref = self._log.ravel().astype(np.float64)
        self._last = np.full(n, NEVER)
        draw = self.rng.normal
        lo = params.threshold_min
        self.c_on = np.maximum(params.threshold_on + params.threshold_sigma * draw(size=n), lo).astype(np.float32)
        self.c_off = np.maximum(params.threshold_off + params.threshold_sigma * draw(size=n), lo).astype(np.float32)
        n_hot = round(params.hot_pixel_fraction * n)
        self.hot_pixels = self.rng.choice(n, n_hot, replace=False) if n_hot else np.zeros(0, np.int64)
        self._hot_pol = self.rng.integers(0, 2, n_hot).astype(np.int8)
        self.t_us = int(t0_us)
        # kernel output columns (t, x, y, p), reused every step and doubled when a step overflows them
        self._cols = self._columns(max(4096, n // 8))

    def _log_of(self, intensity: np.ndarray) -> np.ndarray:
        return np.log(intensity + np.float32(self.params.log_eps))

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Events in (previous time, ``t_us``], sorted by time."""
        t_us = int(t_us)
        if t_us <= self.t_us:
            raise ValueError(f"frame times must increase: {t_us} after {self.t_us}")
        intensity = _as_intensity(frame)
        log1 = self._log_of(intensity)
        if log1.shape != self._log.shape:
            raise ValueError(f"frame shape {log1.shape} differs from the sensor's {self._log.shape}")
        signal = self._signal(self._log.ravel(), log1.ravel(), self.t_us, t_us)
        parts = [signal, self._noise(self.t_us, t_us)]
        if self.params.shot_noise_hz:
            parts.append(self._shot_noise(intensity.ravel(), self.t_us, t_us))
        self._log, self.t_us = log1, t_us
        ev = np.concatenate(parts)
        return ev[np.argsort(ev["t"], kind="stable")]  # the kernel writes in pixel order

    @staticmethod
    def _columns(size: int) -> list[np.ndarray]:
        return [np.empty(size, dt) for dt in (np.int64, np.int16, np.int16, np.int8)]

    def _signal(self, log0: np.ndarray, log1: np.ndarray, t0: int, t1: int) -> np.ndarray:
        parts, start = [], 0
        p = self.params
        while start < log0.size:
            cols = self._cols
            n, start = emit_pixels(
                log0,
                log1,
                t0,
                t1,
                self._ref,
                self._last,
                self.c_on,
                self.c_off,
                p.refractory_us,
                self.width,
                start,
                *cols,
            )
            ev = empty_events(n)
            ev["t"], ev["x"], ev["y"], ev["p"] = (c[:n] for c in cols)
            parts.append(ev)
            if start < log0.size:  # out of room: grow, and carry on from the pixel that did not fit
                self._cols = self._columns(cols[0].size * 2)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _noise(self, t0: int, t1: int) -> np.ndarray:
        p, rng = self.params, self.rng
        dt_s = (t1 - t0) * 1e-6
        n_ba = rng.poisson(p.noise_rate_hz * self._log.size * dt_s) if p.noise_rate_hz else 0
        n_hot = rng.poisson(p.hot_pixel_rate_hz * self.hot_pixels.size * dt_s) if self.hot_pixels.size else 0
        if n_ba + n_hot == 0:
            return empty_events(0)
        pix = rng.integers(0, self._log.size, n_ba)
        pol = rng.integers(0, 2, n_ba).astype(np.int8)
        if n_hot:
            k = rng.integers(0, self.hot_pixels.size, n_hot)
            pix = np.concatenate([pix, self.hot_pixels[k]])
            pol = np.concatenate([pol, self._hot_pol[k]])
        ev = empty_events(pix.size)
        ev["t"] = rng.integers(t0 + 1, t1 + 1, pix.size)
        ev["x"], ev["y"], ev["p"] = pix % self.width, pix // self.width, pol
        return ev

    def _shot_noise(self, intensity: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Shot-noise events in (t0, t1] (see the module docstring), each moving its pixel's memorised level
        by its threshold, applied after the step's signal. One that falls in its pixel's refractory period is
        not fired, nor a pixel's second in one step (a step is far shorter than a dim pixel's mean time
        between noise events)."""
        p, rng = self.params, self.rng
        inten = np.clip(intensity, 0.0, 1.0, dtype=np.float64)
        per_pol = 0.5 * p.shot_noise_hz * (t1 - t0) * 1e-6 * (1 + (p.shot_noise_bright - 1) * inten)
        # the nominal threshold over the pixel's own: a lower threshold is crossed more often
        on_rate, off_rate = per_pol * (p.threshold_on / self.c_on), per_pol * (p.threshold_off / self.c_off)
        pix, pol = [], []
        for polarity, rate in ((1, on_rate), (0, off_rate)):
            cum = np.cumsum(rate)
            n = rng.poisson(cum[-1])
            pix.append(np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), cum.size - 1))
            pol.append(np.full(n, polarity, np.int8))
        pixels, pols = np.concatenate(pix), np.concatenate(pol)
        t = rng.integers(t0 + 1, t1 + 1, pixels.size)
        first = np.zeros(pixels.size, bool)
        first[np.unique(pixels, return_index=True)[1]] = True
        keep = first & (t >= self._last[pixels] + p.refractory_us)
        pixels, pols, t = pixels[keep], pols[keep], t[keep]
        self._ref[pixels] += np.where(pols == 1, self.c_on[pixels], -self.c_off[pixels])
        self._last[pixels] = t
        ev = empty_events(pixels.size)
        ev["t"], ev["x"], ev["y"], ev["p"] = t, pixels % self.width, pixels // self.width, pols
        return ev


def simulate_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    params: SensorParams | None = None,
    seed: int | np.random.Generator | None = 0,
) -> Iterator[np.ndarray]:
    """Event packets (one per frame after the first) from ``(t_us, frame)`` pairs."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    sim = EventSimulator(first[1], first[0], params, seed)
    for t, frame in it:
        yield sim.step(frame, t)


def simulate(
    render: Callable[[int], np.ndarray],
    times_us: Iterable[int],
    params: SensorParams | None = None,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """All events of ``render(t)`` sampled at ``times_us`` (render steps short enough that edges move < 1 px)."""
    parts = list(simulate_frames(((int(t), render(int(t))) for t in times_us), params, seed))
    return np.concatenate(parts) if parts else empty_events(0)


def frame_times(duration_us: int, step_us: int, t0_us: int = 0) -> np.ndarray:
    """Render instants from ``t0`` to ``t0 + duration`` inclusive, ``step_us`` apart (the last step may be shorter)."""
    if step_us <= 0 or duration_us <= 0:
        raise ValueError("duration and step must be positive")
    t = np.arange(t0_us, t0_us + duration_us, step_us, dtype=np.int64)
    return np.append(t, t0_us + duration_us)
