"""The one protocol for everything that yields events: files, replays, cameras, network streams, simulators.

Consumers (playback, recording, classification, the GUI) see only this:
``meta``, ``packets()`` of time-ordered event arrays, ``close()``, a context
manager, and two flags: ``finite`` (it ends by itself, like a file) and
``realtime`` (packets arrive at the pace of the scene, like a camera).

Open-ended sources never block a consumer for long: while no events arrive
they yield an empty packet every ``heartbeat_s``, so a loop over
``packets()`` regains control to check limits, cancellation or redraw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import empty_events, pack_columns
from spikelens.datasets.recording import RecordingMeta

#: how often an idle live source hands control back (an empty packet)
HEARTBEAT_S = 0.05
#: the furthest a live stream's clock may jump forward between or within packets: no camera's clock
#: jumps a day inside one stream, a damaged timestamp does (and would size the file's time index)
MAX_JUMP_US = 86_400_000_000


class StreamError(FormatError):
    """A live source failed: no such camera, connection refused, data that makes no sense."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(None, f"{source}: {problem}")
        self.source = source


class StreamTimeout(StreamError):
    """A live source sent nothing for longer than its read timeout."""


class StreamDisconnected(StreamError):
    """The connection dropped and could not be re-established."""


@runtime_checkable
class EventStream(Protocol):
    meta: RecordingMeta
    #: ends by itself (a file); False for cameras, network streams and live simulators
    finite: bool
    #: packets arrive at the scene's own pace (camera, network, paced replay)
    realtime: bool
    #: why packets() stopped without an error (None while running, or when nothing was said)
    end_reason: str | None

    def packets(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> EventStream: ...

    def __exit__(self, *exc: object) -> None: ...


class LiveStream:
    """Base of the open-ended sources: context manager, checked packets, why the stream ended."""

    finite = False
    realtime = True

    def __init__(self, source: str, meta: RecordingMeta) -> None:
        self.source = source
        self.meta = meta
        #: set when the stream ended without an error (the sender closed, the replay finished)
        self.end_reason: str | None = None
        self.events_received = 0
        self._last_t: int | None = None

    def packets(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or connection; idempotent."""

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source} {self.meta.width}x{self.meta.height}>"

    def _checked(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Columns to events as sent: impossible coordinates or time going back between packets are errors;
        disorder inside one packet is sorted (stably)."""
        if t.size == 0:
            return empty_events()
        ev, bad, unsorted = pack_columns(t, x, y, p, self.meta.width, self.meta.height)
        if bad >= 0:
            e = ev[bad]
            raise StreamError(
                self.source,
                f"event (x={e['x']}, y={e['y']}, p={e['p']}) outside the {self.meta.width}x{self.meta.height} sensor",
            )
        if unsorted >= 0:
            ev = ev[np.argsort(ev["t"], kind="stable")]
        if self._last_t is not None and ev["t"][0] < self._last_t:
            raise StreamError(
                self.source, f"time went back from {self._last_t} us to {int(ev['t'][0])} us between packets"
            )
        start = int(ev["t"][0]) if self._last_t is None else self._last_t
        if int(ev["t"][-1]) - start > MAX_JUMP_US:
            raise StreamError(
                self.source,
                f"time jumped forward by {(int(ev['t'][-1]) - start) / 3.6e9:.1f} hours after "
                f"{self.events_received} events (a damaged timestamp?)",
            )
        self._last_t = int(ev["t"][-1])
        self.events_received += ev.size
        return ev


def sleep_until(deadline: float, clock=time.monotonic) -> None:
    """Sleep until the monotonic ``deadline`` (no-op when it has passed)."""
    wait = deadline - clock()
    if wait > 0:
        time.sleep(wait)
