"""Stream any event source into SpikeLens HDF5 in bounded memory (`spikelens record`, the GUI's Record button).

Whatever stops a recording (its time or event limit, the end of the
stream, a disconnect, Ctrl-C, a cancel, a bad packet) the file is closed
properly and holds every event received up to then: the writer is finished
in a ``finally``, and the file appears under its name only once whole.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spikelens.datasets.atomic import atomic_output
from spikelens.datasets.events import EVENT_DTYPE, split_columns
from spikelens.datasets.formats.hdf5 import H5EventWriter
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.streams import EventStream, StreamError
from spikelens.pipelines.jobs import Cancelled, Job, ensure

#: events buffered before one append to the HDF5 columns (amortises h5py's per-call cost)
FLUSH_EVENTS = 1 << 18


@dataclass(frozen=True)
class RecordStats:
    path: Path
    events: int
    t_first_us: int | None
    t_last_us: int | None
    wall_s: float
    #: why it stopped, in words
    reason: str
    #: the error that ended it, if any (the file is still complete)
    error: str | None = None

    @property
    def rate_hz(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0


class Recorder:
    """A sink for packets: ``add`` until it returns False (limit reached), then ``close``.

    ``max_us`` cuts at first event + ``max_us`` (stream time), ``max_events``
    after exactly that many events.
    """

    def __init__(
        self, path: str | Path, meta: RecordingMeta, max_events: int | None = None, max_us: int | None = None
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"{self.path}: recordings are written as SpikeLens HDF5 (.h5 or .hdf5)")
        for name, value in (("event limit", max_events), ("time limit", max_us)):
            if value is not None and value <= 0:
                raise ValueError(f"the {name} must be positive, got {value}")
        self.max_events, self.max_us = max_events, max_us
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_output(self.path, ".h5"))
        self._writer = self._stack.enter_context(H5EventWriter(tmp, replace(meta, path=self.path)))
        # contiguous column buffers: filled in one pass per packet, written without another copy
        self._cols = tuple(np.empty(FLUSH_EVENTS, EVENT_DTYPE[c]) for c in ("t", "x", "y", "p"))
        self._fill = 0
        self.events = 0
        self.t_first_us: int | None = None
        self.t_last_us: int | None = None
        self.full = False
        self.closed = False

    def add(self, pkt: np.ndarray) -> bool:
        """Take a packet; False once a limit is reached (the excess is not written)."""
        if self.full or pkt.size == 0:
            return not self.full
        if self.t_first_us is None:
            self.t_first_us = int(pkt["t"][0])
        if self.max_us is not None:
            cut = int(np.searchsorted(pkt["t"], self.t_first_us + self.max_us, side="left"))
            if cut < pkt.size:
                pkt, self.full = pkt[:cut], True
        if self.max_events is not None and self.events + pkt.size >= self.max_events:
            pkt, self.full = pkt[: self.max_events - self.events], True
        if pkt.size:
            self.events += pkt.size
            self.t_last_us = int(pkt["t"][-1])
        while pkt.size:
            take = min(pkt.size, FLUSH_EVENTS - self._fill)
            split_columns(pkt[:take], self._cols, self._fill)
            self._fill += take
            pkt = pkt[take:]
            if self._fill == FLUSH_EVENTS:
                self.flush()
        return not self.full

    def flush(self) -> None:
        if self._fill:
            self._writer.append_columns(*(c[: self._fill] for c in self._cols))
            self._fill = 0

    def close(self) -> None:
        """Write what is buffered, the index, and move the file into place."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self._stack.close()

    def stats(self, reason: str, wall_s: float = 0.0, error: str | None = None) -> RecordStats:
        return RecordStats(self.path, self.events, self.t_first_us, self.t_last_us, wall_s, reason, error)

    def discard(self) -> None:
        """Drop the file (nothing appears under the output name)."""
        if not self.closed:
            self.closed = True
            self._stack.__exit__(RuntimeError, RuntimeError("discarded"), None)


def record(
    stream: EventStream,
    path: str | Path,
    *,
    seconds: float | None = None,
    events: int | None = None,
    job: Job | None = None,
) -> RecordStats:
    """Write ``stream`` to ``path`` until ``seconds`` of it, ``events`` events, or its end.

    For a live stream ``seconds`` also bounds wall time, so a quiet camera
    still stops. Ctrl-C and cancellation end the recording like a limit
    does; a stream error ends it with ``error`` set. Progress goes to ``job``
    as (events, limit or None, "N events, R ev/s"). Nothing is ever dropped: a backlog waits in the reader.
    """
    job = ensure(job)
    max_us = None if seconds is None else round(seconds * 1e6)
    rec = Recorder(path, stream.meta, events, max_us)
    start = time.monotonic()
    last_report = 0.0
    reason, error = "", None
    try:
        for pkt in stream.packets():
            if not rec.add(pkt):
                reason = "reached the limit"
                break
            now = time.monotonic()
            if seconds is not None and not stream.finite and now - start >= seconds:
                reason = "reached the time limit"
                break
            if now - last_report >= 0.2:
                last_report = now
                rate = rec.events / max(now - start, 1e-9)
                job.report(rec.events, events, f"{rec.events:,} events, {rate / 1e6:.2f} M ev/s")
        else:
            reason = stream.end_reason or "the stream ended"
    except KeyboardInterrupt:
        reason = "stopped by Ctrl-C"
    except Cancelled:
        reason = "cancelled"
    except StreamError as exc:
        reason, error = "the stream failed", str(exc)
    finally:
        rec.close()
    return rec.stats(reason, time.monotonic() - start, error)
