"""Windows of events as a classifier sees them, offline and streaming, with the same frames either way.

A window is ``[end - window_us, end)`` cut into the model's T equal bins;
each bin is a 2 x S x S count image (channel 0 = ON), events scaled from
the sensor to S x S. Offline and live windows lie on one grid: the k-th ends
at ``origin + window_us + k * hop_us``, origin being the first event's time.

:class:`StreamClassifier` bins every event once, into ticks of
gcd(bin, hop) microseconds; a window's bins are sums of whole ticks, so its
frames are exactly the offline ones, built without re-reading old events.
The network itself starts from rest in every window (its neurons' state
depends on where the window starts), so the state carried between hops is
the binned past, not membrane potentials.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from spikelens.datasets.sensor_size import SensorSize, sensor_size
from spikelens.hybrid_net.classify import ClassifierConfig


def bin_events(events: np.ndarray, t0: int, bin_us: int, n_bins: int, sensor: SensorSize, size: int) -> np.ndarray:
    """n_bins x 2 x size x size float32 counts of the events in [t0, t0 + n_bins * bin_us); channel 0 = ON."""
    w, h = sensor_size(sensor)
    b = (events["t"] - t0) // bin_us
    keep = (b >= 0) & (b < n_bins)
    if not keep.all():
        events, b = events[keep], b[keep]
    xs = events["x"].astype(np.int64) * size // w
    ys = events["y"].astype(np.int64) * size // h
    ch = 1 - (events["p"] > 0)
    flat = ((b * 2 + ch) * size + ys) * size + xs
    counts = np.bincount(flat, minlength=n_bins * 2 * size * size)
    return counts.reshape(n_bins, 2, size, size).astype(np.float32)


def window_frames(events: np.ndarray, end_us: int, cfg: ClassifierConfig, sensor: SensorSize) -> np.ndarray:
    """The T x 2 x S x S frames of the window ending at ``end_us``."""
    lo, hi = np.searchsorted(events["t"], [end_us - cfg.window_us, end_us])
    return bin_events(events[lo:hi], end_us - cfg.window_us, cfg.bin_us, cfg.steps, sensor, cfg.size)


def window_ends(t_first: int, t_last: int, cfg: ClassifierConfig, hop_us: int) -> np.ndarray:
    """Ends of the grid's windows that are complete by the event at ``t_last`` (end <= t_last)."""
    first = t_first + cfg.window_us
    if t_last < first:
        return np.empty(0, np.int64)
    return first + hop_us * np.arange((t_last - first) // hop_us + 1, dtype=np.int64)


@torch.no_grad()
def predict(model: nn.Module, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Class probabilities (n x classes) of n windows' frames (n x T x 2 x S x S)."""
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch])).to(dev).transpose(0, 1)
        out.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    n = len(model.config.classes)
    return np.concatenate(out) if out else np.empty((0, n), np.float32)


@torch.no_grad()
def predict_with_stats(model: nn.Module, frames: np.ndarray) -> tuple[np.ndarray, dict]:
    """One window's probabilities, its spikes per layer and its energy estimate, from one forward pass."""
    from spikelens.hybrid_net.energy import energy

    dev = next(model.parameters()).device
    logits, stats = model(torch.from_numpy(frames[:, None]).to(dev), stats=True)
    layers = [{"name": s["name"], "spikes": s["spikes"], "rate": s["rate"]} for s in stats["layers"]]
    return torch.softmax(logits.float(), dim=1)[0].cpu().numpy(), {"layers": layers, "energy": energy(stats)}


def classify_offline(
    model: nn.Module, events: np.ndarray, sensor: SensorSize, hop_us: int, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(window ends, probabilities) of every complete window of a recording, on the streaming grid; the
    frames are built ``batch`` windows at a time, so memory stays bounded for any length."""
    cfg = model.config
    ends = window_ends(int(events["t"][0]), int(events["t"][-1]), cfg, hop_us) if events.size else np.empty(0, int)
    probs = np.empty((ends.size, len(cfg.classes)), np.float32)
    for i in range(0, ends.size, batch):
        part = ends[i : i + batch]
        probs[i : i + part.size] = predict(model, np.stack([window_frames(events, int(e), cfg, sensor) for e in part]))
    return ends.astype(np.int64), probs


@dataclass(frozen=True)
class Run:
    """Consecutive windows with the same (smoothed) decision."""

    cls: int
    t0_us: int  # the first decision's interval starts here (its window end minus one hop)
    t1_us: int  # the last window's end
    windows: int
    confidence: float  # the mean smoothed probability of ``cls`` over the run


@dataclass(frozen=True)
class Timeline:
    """A recording classified as ``live`` would: one decision per hop, smoothed, merged into runs."""

    hop_us: int
    ends_us: np.ndarray  # window ends
    probabilities: np.ndarray  # per window, as the network gave them
    smoothed: np.ndarray  # mean of the last ``smooth`` windows (live's label)
    runs: list[Run]


def classify_timeline(
    model: nn.Module, events: np.ndarray, sensor: SensorSize, hop_us: int, smooth: int = 3, batch: int = 64
) -> Timeline:
    """Every complete window on the streaming grid (:func:`classify_offline`), smoothed, merged into runs."""
    ends, probs = classify_offline(model, events, sensor, hop_us, batch)
    cum = np.cumsum(np.vstack([np.zeros((1, probs.shape[1]), np.float64), probs]), axis=0)
    lo = np.maximum(np.arange(ends.size) + 1 - max(smooth, 1), 0)
    smoothed = ((cum[1:] - cum[lo]) / (np.arange(ends.size) + 1 - lo)[:, None]).astype(np.float32)
    runs: list[Run] = []
    labels = smoothed.argmax(axis=1) if ends.size else np.empty(0, int)
    start = 0
    for i in range(1, ends.size + 1):
        if i == ends.size or labels[i] != labels[start]:
            k = int(labels[start])
            conf = float(smoothed[start:i, k].mean())
            runs.append(Run(k, int(ends[start]) - hop_us, int(ends[i - 1]), i - start, conf))
            start = i
    return Timeline(hop_us, ends, probs, smoothed, runs)


def classify_segment(model: nn.Module, events: np.ndarray, t0: int, t1: int, sensor: SensorSize) -> np.ndarray:
    """Probabilities of one labelled segment: the mean over its windows, one bin apart, events of
    [t0, t1) only. A segment shorter than a window is one window from t0 (the rest is empty)."""
    cfg = model.config
    lo, hi = np.searchsorted(events["t"], [t0, t1])
    ev = events[lo:hi]
    ends = np.arange(t0 + cfg.window_us, t1 + 1, cfg.bin_us) if t1 - t0 >= cfg.window_us else [t0 + cfg.window_us]
    frames = np.stack([window_frames(ev, int(e), cfg, sensor) for e in ends])
    return predict(model, frames).mean(axis=0)


@dataclass
class Decision:
    t_us: int  # the window's end, in the stream's clock
    probabilities: np.ndarray  # of this window
    smoothed: np.ndarray  # mean of the last ``smooth`` windows' probabilities
    net_ms: float
    latency_ms: float  # from the arrival of the window's last packet to this decision
    skipped: int = 0  # windows dropped since the previous decision, to catch up with a real-time source
    events: int = 0  # events in the window
    frames: np.ndarray | None = None  # the window's T x 2 x S x S counts (kept with ``keep_frames``)
    stats: dict | None = None  # spikes per layer and the energy estimate (with ``stats``)

    @property
    def window_class(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def cls(self) -> int:
        return int(np.argmax(self.smoothed))


@dataclass
class _Tick:
    counts: np.ndarray
    events: int = 0
    arrived: float = 0.0  # monotonic time its last event arrived


@dataclass
class StreamClassifier:
    """Feed packets in time order; get a :class:`Decision` for each window as it completes.

    ``speed`` (a real-time source: 1, or a replay's speed) turns on catching up: the lag is how far the
    stream's clock trails the wall clock (x speed) beyond the least it ever trailed; while it exceeds a hop,
    or when several windows complete at once, windows are skipped (counted in ``skipped`` and in the next
    decision's ``skipped``) instead of decided, so decisions stay current. Without ``speed`` (a file read
    as fast as it goes) every window is decided.
    """

    model: nn.Module
    sensor: SensorSize
    hop_us: int = 100_000
    smooth: int = 3
    speed: float | None = None
    #: also measure spikes per layer and energy on each decision (the same forward pass)
    stats: bool = False
    keep_frames: bool = False
    skipped: int = 0
    decided: int = 0
    lag_us: float = 0.0
    _ticks: dict[int, _Tick] = field(default_factory=dict)
    _origin: int | None = None
    _next: int = 0  # index of the next window to decide
    _recent: collections.deque = field(default_factory=collections.deque)
    _min_offset: float = math.inf
    _pending_skips: int = 0

    def __post_init__(self) -> None:
        cfg: ClassifierConfig = self.model.config
        sensor_size(self.sensor)
        if self.hop_us <= 0 or self.smooth < 1:
            raise ValueError("hop_us must be positive and smooth at least 1")
        self.cfg = cfg
        self.tick_us = math.gcd(cfg.bin_us, self.hop_us)
        self._recent = collections.deque(maxlen=self.smooth)

    def _window_end(self, k: int) -> int:
        return self._origin + self.cfg.window_us + k * self.hop_us

    def feed(self, events: np.ndarray, arrived: float | None = None) -> list[Decision]:
        if events.size == 0:
            return []
        arrived = time.monotonic() if arrived is None else arrived
        if self._origin is None:
            self._origin = int(events["t"][0])
        s = self.cfg.size
        tick = (events["t"] - self._origin) // self.tick_us
        first, last = int(tick[0]), int(tick[-1])
        counts = bin_events(events, self._origin + first * self.tick_us, self.tick_us, last - first + 1, self.sensor, s)
        per_tick = np.bincount(tick - first, minlength=last - first + 1)
        for i, n in enumerate(per_tick.tolist()):
            if n:
                tk = self._ticks.setdefault(first + i, _Tick(np.zeros((2, s, s), np.float32)))
                tk.counts += counts[i]
                tk.events += n
                tk.arrived = arrived
        t_now = int(events["t"][-1])
        ready = []
        while self._window_end(self._next) <= t_now:
            ready.append(self._next)
            self._next += 1
        if not ready:
            return []
        if self.speed is not None:
            offset = arrived * 1e6 * self.speed - t_now
            self._min_offset = min(self._min_offset, offset)
            self.lag_us = offset - self._min_offset
            keep = [] if self.lag_us > self.hop_us else ready[-1:]
        else:
            keep = ready
        self._pending_skips += len(ready) - len(keep)
        self.skipped += len(ready) - len(keep)
        out = []
        for k in keep:
            out.append(self._decide(k, self._pending_skips))
            self._pending_skips = 0
        self._forget(self._next)
        return out

    def _decide(self, k: int, skipped: int) -> Decision:
        cfg, s = self.cfg, self.cfg.size
        per_bin = cfg.bin_us // self.tick_us
        start_tick = (self._window_end(k) - cfg.window_us - self._origin) // self.tick_us
        frames = np.zeros((cfg.steps, 2, s, s), np.float32)
        n, arrived = 0, 0.0
        for b in range(cfg.steps):
            for i in range(start_tick + b * per_bin, start_tick + (b + 1) * per_bin):
                tk = self._ticks.get(i)
                if tk is not None:
                    frames[b] += tk.counts
                    n += tk.events
                    arrived = max(arrived, tk.arrived)
        t0 = time.perf_counter()
        stats = None
        if self.stats:
            probs, stats = predict_with_stats(self.model, frames)
        else:
            probs = predict(self.model, frames[None])[0]
        net_ms = (time.perf_counter() - t0) * 1e3
        self._recent.append(probs)
        self.decided += 1
        latency = (time.monotonic() - arrived) * 1e3 if arrived else 0.0
        smoothed = np.mean(self._recent, axis=0)
        kept = frames if self.keep_frames else None
        return Decision(self._window_end(k), probs, smoothed, net_ms, latency, skipped, n, kept, stats)

    def _forget(self, k: int) -> None:
        """Drop ticks no window from the k-th on needs."""
        oldest = (self._window_end(k) - self.cfg.window_us - self._origin) // self.tick_us
        for i in [i for i in self._ticks if i < oldest]:
            del self._ticks[i]
