"""Live sources for viewers: a bounded buffer of recent events, filled by a thread that pumps a stream.

The pump thread is the only reader of the stream; it appends each packet to
a :class:`LiveBuffer` (and, while recording, to a :class:`Recorder`). A view
redraws from the buffer on its own timer, so a slow view never slows the
stream and a burst on the stream never blocks the view. Qt-free.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import numpy as np

from spikelens.datasets.events import empty_events
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.streams import EventStream, StreamError
from spikelens.pipelines.record import Recorder, RecordStats
from spikelens.pipelines.spool import RATE_BIN_US

#: the buffer keeps at most this many events ...
BUFFER_EVENTS = 8_000_000
#: ... and nothing older than this behind the newest event
BUFFER_US = 10_000_000


class LiveBuffer:
    """The recent past of a stream: packets in a bounded deque, and the event rate per 10 ms bin.

    Thread-safe: one thread pushes, any thread reads windows.
    """

    def __init__(self, meta: RecordingMeta, max_events: int = BUFFER_EVENTS, keep_us: int = BUFFER_US) -> None:
        self.meta = meta
        self.max_events, self.keep_us = max_events, keep_us
        self._packets: collections.deque[np.ndarray] = collections.deque()
        self._size = 0
        self._rates: dict[int, int] = {}
        self._lock = threading.Lock()
        self.n_total = 0
        self.t_first_us: int | None = None
        self.t_last_us: int | None = None

    def push(self, pkt: np.ndarray) -> None:
        if pkt.size == 0:
            return
        bins, counts = np.unique(pkt["t"] // RATE_BIN_US, return_counts=True)
        with self._lock:
            self._packets.append(pkt)
            self._size += pkt.size
            self.n_total += pkt.size
            if self.t_first_us is None:
                self.t_first_us = int(pkt["t"][0])
            self.t_last_us = int(pkt["t"][-1])
            for b, c in zip(bins.tolist(), counts.tolist(), strict=True):
                self._rates[b] = self._rates.get(b, 0) + c
            horizon = self.t_last_us - self.keep_us
            while self._packets and (self._size > self.max_events or int(self._packets[0]["t"][-1]) < horizon):
                self._size -= self._packets.popleft().size
            if len(self._rates) > 2 * self.keep_us // RATE_BIN_US:
                oldest = horizon // RATE_BIN_US
                self._rates = {k: v for k, v in self._rates.items() if k >= oldest}

    def __len__(self) -> int:
        return self._size

    @property
    def t_oldest_us(self) -> int | None:
        with self._lock:
            return int(self._packets[0]["t"][0]) if self._packets else None

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Buffered events with t0 <= t < t1."""
        with self._lock:
            parts = [p for p in self._packets if p["t"][-1] >= t0 and p["t"][0] < t1]
        out = []
        for p in parts:
            lo, hi = np.searchsorted(p["t"], [t0, t1])
            if hi > lo:
                out.append(p[lo:hi])
        return np.concatenate(out) if out else empty_events()

    def last_n(self, t1: int, n: int) -> np.ndarray:
        """The ``n`` buffered events before ``t1`` (fewer when the buffer holds fewer)."""
        with self._lock:
            packets = list(self._packets)
        out, need = [], n
        for p in reversed(packets):
            if p["t"][0] >= t1:
                continue
            hi = int(np.searchsorted(p["t"], t1))
            take = p[max(0, hi - need) : hi]
            out.append(take)
            need -= take.size
            if need <= 0:
                break
        return np.concatenate(out[::-1]) if out else empty_events()

    @property
    def pixel_counts(self) -> np.ndarray:
        """Events per pixel over the buffer (the hot-pixel filter's input)."""
        with self._lock:
            packets = list(self._packets)
        counts = np.zeros(self.meta.width * self.meta.height, np.int64)
        for p in packets:
            counts += np.bincount(p["y"].astype(np.int64) * self.meta.width + p["x"], minlength=counts.size)
        return counts

    def rates(self, span_us: int) -> tuple[int, np.ndarray]:
        """(start time, events/s per RATE_BIN_US bin) over the last ``span_us`` before the newest event."""
        with self._lock:
            if self.t_last_us is None:
                return 0, np.zeros(0)
            hi = self.t_last_us // RATE_BIN_US
            lo = hi - span_us // RATE_BIN_US + 1
            r = np.array([self._rates.get(k, 0) for k in range(lo, hi + 1)], np.float64)
        return lo * RATE_BIN_US, r * (1e6 / RATE_BIN_US)


class StreamPump:
    """Reads ``stream`` on a daemon thread into ``buffer``; optionally records to HDF5 at the same time.

    The thread is a daemon so a source stuck inside a driver can be
    abandoned; :meth:`stop` asks it to finish and closes the stream.
    """

    def __init__(self, stream: EventStream, buffer: LiveBuffer | None = None) -> None:
        self.stream = stream
        self.buffer = buffer or LiveBuffer(stream.meta)
        self.finished = threading.Event()
        self.end_reason: str | None = None
        self.error: str | None = None
        self.recording: RecordStats | None = None
        self._recorder: Recorder | None = None
        self._stop_recording = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"pump {getattr(stream, 'source', '')}", daemon=True)

    def start(self) -> StreamPump:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for pkt in self.stream.packets():
                if self._stop.is_set():
                    self.end_reason = "stopped"
                    break
                self.buffer.push(pkt)
                with self._lock:
                    if self._recorder is not None and (self._stop_recording or not self._recorder.add(pkt)):
                        self._finish_recording("stopped" if self._stop_recording else "reached the limit")
            else:
                self.end_reason = self.stream.end_reason or "the stream ended"
        except StreamError as exc:
            self.error = str(exc)
        except Exception as exc:  # reported to the viewer; the window stays alive
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                if self._recorder is not None:
                    self._finish_recording(self.error or self.end_reason or "the stream ended")
            self.finished.set()

    # -- recording (the pump thread writes; other threads only ask) ---------------------------------
    @property
    def is_recording(self) -> bool:
        return self._recorder is not None

    def start_recording(self, path: str | Path, max_events: int | None = None, max_us: int | None = None) -> None:
        with self._lock:
            if self._recorder is not None:
                raise RuntimeError("already recording")
            if self.finished.is_set():
                raise StreamError(getattr(self.stream, "source", "stream"), "the stream has ended")
            self.recording = None
            self._stop_recording = False
            self._recorder = Recorder(path, self.stream.meta, max_events, max_us)

    def stop_recording(self) -> None:
        """Ask the pump thread to close the file after the current packet (``recording`` then holds its stats)."""
        with self._lock:
            self._stop_recording = True
            if self.finished.is_set() and self._recorder is not None:
                self._finish_recording("stopped")

    def _finish_recording(self, reason: str) -> None:
        rec, self._recorder = self._recorder, None
        assert rec is not None
        rec.close()
        self.recording = rec.stats(reason)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop reading and close the stream (waits up to ``timeout_s`` for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.stream.close()
