"""An opened recording: metadata beside a stream of time-ordered event packets.

Every reader subclasses :class:`Recording` and implements ``_raw_chunks``,
which decodes the file in bounded pieces in file order. This base class turns
those pieces into checked, time-ordered packets, whole-file loads and
[t0, t1) windows, so the checks live in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import EVENT_DTYPE, empty_events, scan_events

#: Default decode granularity: big enough to amortise per-chunk overhead,
#: small enough that an hour-long file replays in bounded memory.
CHUNK_EVENTS = 1 << 20


@dataclass
class RecordingMeta:
    """What travels beside the events: sensor geometry, source and extras.

    ``extra`` holds format-specific metadata (SAI fx, v, depth, t_ref, APS
    frames, header fields, ...). Values are scalars, strings or NumPy arrays.
    """

    path: Path | None
    format: str
    width: int
    height: int
    camera: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordingStats:
    events: int
    t_start_us: int | None
    t_end_us: int | None

    @property
    def duration_us(self) -> int:
        if self.t_start_us is None or self.t_end_us is None:
            return 0
        return self.t_end_us - self.t_start_us


class Scanned(NamedTuple):
    """A decoded chunk whose kernel already found its first bad / backwards event (-1: none)."""

    events: np.ndarray
    bad: int
    unsorted: int


class UnsortedTimestampsWarning(UserWarning):
    """Timestamps went backwards in the file; SpikeLens sorted them."""


class Recording:
    """Base class of every reader. Use as a context manager or call close()."""

    format_name = "?"
    #: the EventStream flags: a file ends by itself and is read as fast as the consumer takes it
    finite = True
    realtime = False
    end_reason: str | None = None

    def __init__(self, path: str | Path | None, meta: RecordingMeta) -> None:
        self.path = None if path is None else Path(path)
        self.meta = meta
        self._warned_unsorted = False

    # -- what a reader implements -------------------------------------------------
    def _raw_chunks(self, max_events: int | None) -> Iterator[np.ndarray | Scanned]:
        """Decoded events in file order, about ``max_events`` each (None = as few chunks as possible).

        Kernels that check events as they write them yield :class:`Scanned`.
        """
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------
    def packets(self, max_events: int = CHUNK_EVENTS) -> Iterator[np.ndarray]:
        """Time-ordered event packets in bounded memory.

        Disorder inside a packet, or between neighbouring packets, is sorted
        (stably) with a warning; a file whose timestamps jump back further
        than that raises :class:`FormatError`, since sorting it needs the
        whole file in memory (use :meth:`load`).
        """
        pending: np.ndarray | None = None
        emitted_t = None
        for raw in self._raw_chunks(max_events):
            chunk = self._checked(raw)
            if chunk.size == 0:
                continue
            if pending is None:
                pending = chunk
                continue
            head_t = chunk["t"][0]
            if emitted_t is not None and head_t < emitted_t:
                raise FormatError(
                    self.path,
                    f"timestamps go back from {emitted_t} us to {head_t} us across packets; "
                    "load the whole file to sort it (Recording.load)",
                )
            cut = int(np.searchsorted(pending["t"], head_t, side="right"))
            if cut < pending.size:  # the tail of pending interleaves with chunk
                self._warn_unsorted()
                merged = np.concatenate([pending[cut:], chunk])
                chunk = merged[np.argsort(merged["t"], kind="stable")]
            if cut:
                emitted_t = pending["t"][cut - 1]
                yield pending[:cut]
            pending = chunk
        if pending is not None and pending.size:
            yield pending

    def load(self) -> np.ndarray:
        """The whole recording as one time-sorted array (sorting with a warning if needed)."""
        chunks, unsorted = [], False
        for raw in self._raw_chunks(None):
            ev, bad, back = self._scan(raw)
            if bad >= 0:
                self._raise_bad(ev, bad)
            if ev.size:
                unsorted |= back >= 0 or (bool(chunks) and ev["t"][0] < chunks[-1]["t"][-1])
                chunks.append(ev)
        if not chunks:
            return empty_events()
        ev = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        if unsorted:
            self._warn_unsorted()
            ev = ev[np.argsort(ev["t"], kind="stable")]
        return ev

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Events with t0 <= t < t1, reading no further than needed."""
        parts = []
        for pkt in self.packets():
            if pkt["t"][-1] < t0:
                continue
            if pkt["t"][0] >= t1:
                break
            lo, hi = np.searchsorted(pkt["t"], [t0, t1], side="left")
            parts.append(pkt[lo:hi])
        return np.concatenate(parts) if parts else empty_events()

    def stats(self) -> RecordingStats:
        """Event count and time range, in one streaming pass."""
        n, t0, t1 = 0, None, None
        for pkt in self.packets():
            n += pkt.size
            if t0 is None:
                t0 = int(pkt["t"][0])
            t1 = int(pkt["t"][-1])
        return RecordingStats(n, t0, t1)

    def close(self) -> None:
        """Release file handles (readers that keep one open override this)."""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return f"<{type(self).__name__} {m.format} {m.width}x{m.height} {self.path}>"

    # -- helpers --------------------------------------------------------------------
    def _infer_geometry(self) -> tuple[int, int]:
        """Sensor size from the events' extent, for files whose header gives none (one pass)."""
        w = h = 1
        for raw in self._raw_chunks(CHUNK_EVENTS):
            c = raw.events if isinstance(raw, Scanned) else raw
            if c.size:
                w, h = max(w, int(c["x"].max()) + 1), max(h, int(c["y"].max()) + 1)
        return w, h

    def _scan(self, raw: np.ndarray | Scanned) -> Scanned:
        if isinstance(raw, Scanned):
            return raw
        return Scanned(raw, *scan_events(raw, self.meta.width, self.meta.height))

    def _checked(self, raw: np.ndarray | Scanned) -> np.ndarray:
        chunk, bad, unsorted = self._scan(raw)
        if bad >= 0:
            self._raise_bad(chunk, bad)
        if unsorted >= 0:
            self._warn_unsorted()
            chunk = chunk[np.argsort(chunk["t"], kind="stable")]
        return chunk

    def _raise_bad(self, ev: np.ndarray, i: int) -> None:
        e = ev[i]
        raise FormatError(
            self.path,
            f"impossible event (x={e['x']}, y={e['y']}, p={e['p']}) for a "
            f"{self.meta.width}x{self.meta.height} sensor at t={e['t']} us",
        )

    def _warn_unsorted(self) -> None:
        if not self._warned_unsorted:
            self._warned_unsorted = True
            warnings.warn(
                f"{self.path}: timestamps are not monotonic; events were sorted by time",
                UnsortedTimestampsWarning,
                stacklevel=3,
            )


class ArrayRecording(Recording):
    """A recording already in memory (small formats, simulator output, tests)."""

    def __init__(self, events: np.ndarray, meta: RecordingMeta) -> None:
        super().__init__(meta.path, meta)
        if events.dtype != EVENT_DTYPE:
            raise FormatError(meta.path, f"events have dtype {events.dtype}, expected {EVENT_DTYPE}")
        self._events = events

    def _raw_chunks(self, max_events: int | None) -> Iterator[np.ndarray]:
        step = max_events or max(self._events.size, 1)
        for i in range(0, self._events.size, step):
            yield self._events[i : i + step]
