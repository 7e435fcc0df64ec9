"""Random access to a finite recording for replay: read it once, keep it in memory or spill to indexed HDF5.

:func:`open_source` streams a recording once (any format), keeping it in
memory when small and spilling it into a temporary indexed HDF5 file when
large, so replay memory stays bounded; the same pass yields the event rate
over the whole recording and per-pixel counts (for the hot-pixel filter).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikelens.datasets.detect import open_recording
from spikelens.datasets.errors import FormatError
from spikelens.datasets.formats.hdf5 import H5EventWriter, H5Recording
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sensor_size import SensorSize
from spikelens.pipelines.jobs import Job, ensure

#: recordings up to this many events stay in memory; larger ones go to a temporary HDF5 file
MEMORY_EVENTS = 40_000_000
RATE_BIN_US = 10_000


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

    @classmethod
    def of_events(cls, events: np.ndarray, meta: RecordingMeta) -> EventSource:
        """Time-sorted events already in memory (a first packet) as a source."""
        pixels = events["y"].astype(np.int64) * meta.width + events["x"]
        counts = np.bincount(pixels, minlength=meta.width * meta.height)
        t0, t1 = (int(events["t"][0]), int(events["t"][-1])) if events.size else (0, 0)
        return cls(meta, np.zeros(0), counts, t0, t1, events=events)

    @property
    def sensor(self) -> SensorSize:
        return SensorSize.of(self.meta)

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
    job: Job | None = None,
    memory_events: int = MEMORY_EVENTS,
) -> EventSource:
    """Read ``path`` once: ``first_packet`` gets the first events at once (for a first frame), ``job``
    the events read so far. Raises :class:`FormatError` for unreadable files, ``Cancelled`` on cancel."""
    path = Path(path)
    job = ensure(job)
    rec = open_recording(path)
    meta = rec.meta
    indexed = isinstance(rec, H5Recording)  # replayable from the file itself
    tally = _Tally(meta.width * meta.height)
    spool = _Spool(meta, memory_events // 4 if indexed else memory_events, spill=not indexed)
    try:
        for pkt in rec.packets():
            job.check()
            if tally.n == 0 and first_packet is not None and pkt.size:
                first_packet(pkt, meta)
            tally.add(pkt, meta.width)
            spool.add(pkt, tally.n)
            job.report(tally.n, None, f"{tally.n / 1e6:.1f} M events")
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
