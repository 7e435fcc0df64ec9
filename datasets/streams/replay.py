"""A file replayed at SPEED x real time: a finite source that arrives like a live one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from spikelens.datasets.events import empty_events
from spikelens.datasets.recording import Recording
from spikelens.datasets.streams.base import HEARTBEAT_S

#: wall time covered by one replayed packet: short enough for smooth live views
SLICE_WALL_S = 0.01


class ReplayStream:
    """Yields the recording's events when their time comes, ``speed`` x faster than they were recorded.

    Gaps in the recording become empty heartbeat packets, so a consumer is
    never blocked longer than ``HEARTBEAT_S``.
    """

    finite = True
    realtime = True

    def __init__(self, recording: Recording, speed: float = 1.0, clock=time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.recording = recording
        self.meta = recording.meta
        self.speed = float(speed)
        self.source = f"file:{recording.path}@{speed:g}"
        self.end_reason: str | None = None
        self._clock = clock

    def packets(self) -> Iterator[np.ndarray]:
        slice_us = max(1, round(SLICE_WALL_S * 1e6 * self.speed))
        start_wall: float | None = None
        t0 = 0
        for pkt in self.recording.packets():
            t = pkt["t"]
            if start_wall is None:
                start_wall, t0 = self._clock(), int(t[0])
            lo = 0
            while lo < t.size:
                hi = int(np.searchsorted(t, t[lo] + slice_us, side="left"))
                # a slice goes out when its last event is due
                yield from self._wait(start_wall + (int(t[hi - 1]) - t0) / 1e6 / self.speed)
                yield pkt[lo:hi]
                lo = hi
        self.end_reason = "the replay reached the end of the recording"

    def _wait(self, deadline: float) -> Iterator[np.ndarray]:
        while True:
            left = deadline - self._clock()
            if left <= 0:
                return
            time.sleep(min(left, HEARTBEAT_S))
            if deadline - self._clock() > 0:
                yield empty_events()

    def close(self) -> None:
        self.recording.close()

    def __enter__(self) -> ReplayStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
