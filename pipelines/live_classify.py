"""Classify any event stream as it arrives: files, replays, cameras, DV network streams, the simulator.

The loop that ``spikelens live`` and the GUI's live tab run: pull packets,
feed a :class:`StreamClassifier`, hand each decision on. Real-time sources
get catching up (skipped windows are counted, never silent); a stream that
ends (a file's end, a sender that closed or was cut) ends the loop with its
reason; a failing stream's :class:`StreamError` propagates.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from spikelens.datasets.sensor_size import SensorSize
from spikelens.datasets.streams import EventStream
from spikelens.pipelines.classify_windows import Decision, StreamClassifier


@dataclass
class LiveSummary:
    decisions: int
    skipped: int
    events: int
    end_reason: str
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def decisions_per_s(self) -> float:
        return self.decisions / self.wall_s if self.wall_s > 0 else 0.0


def with_window(model: nn.Module, window_us: int | None) -> nn.Module:
    """The model fed windows of ``window_us`` (its T bins stretched to fit) instead of its trained length."""
    if window_us is None:
        return model
    steps = model.config.steps
    if window_us <= 0 or window_us % steps:
        raise ValueError(f"a window of {window_us} us must be positive and split into {steps} whole-microsecond bins")
    model.config = dataclasses.replace(model.config, window_us=int(window_us))
    return model


def classify_stream(
    stream: EventStream,
    model: nn.Module,
    hop_us: int = 100_000,
    smooth: int = 3,
    on_decision: Callable[[Decision], object] = lambda d: None,
    stop: threading.Event | None = None,
    stats: bool = False,
) -> LiveSummary:
    """Run until the stream ends, ``stop`` is set or the user interrupts (Ctrl-C: the summary says so);
    returns what happened. ``stats``: each decision also carries its window's frames, spikes per layer and
    energy estimate (for a GUI)."""
    speed = getattr(stream, "speed", 1.0) if stream.realtime else None
    sensor = SensorSize.of(stream.meta)
    if not (sensor.width > 0 and sensor.height > 0):
        raise ValueError(f"{getattr(stream, 'source', stream)}: the stream does not say its sensor size")
    sc = StreamClassifier(model, sensor, hop_us, smooth, speed, stats=stats, keep_frames=stats)
    events = 0
    reason, interrupted = "stopped", False
    start = time.monotonic()
    try:
        for pkt in stream.packets():
            if stop is not None and stop.is_set():
                break
            events += pkt.size
            for d in sc.feed(pkt):
                on_decision(d)
        else:
            reason = getattr(stream, "end_reason", None) or "the source ended"
    except KeyboardInterrupt:
        reason, interrupted = "stopped by Ctrl-C", True
    wall = time.monotonic() - start
    return LiveSummary(sc.decided, sc.skipped, events, reason, wall, interrupted)


class ClassifySession:
    """``classify_stream`` on a thread of its own, for a GUI: decisions queue up, the GUI drains them.

    ``start()`` opens the source and runs until it ends, fails or ``stop()``; nothing here blocks the
    caller. ``take()`` returns the decisions since the last call; ``done``, ``summary`` and ``error`` say
    how it ended (a disconnect is an ``end_reason``, a failing stream an ``error``).
    """

    def __init__(self, source: str, model: nn.Module, hop_us: int = 100_000, smooth: int = 3) -> None:
        self.source, self.model, self.hop_us, self.smooth = source, model, hop_us, smooth
        self.sensor: SensorSize | None = None
        self.summary: LiveSummary | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: list[Decision] = []
        self._thread = threading.Thread(target=self._run, name=f"classify {source}", daemon=True)

    def start(self) -> ClassifySession:
        self._thread.start()
        return self

    def _run(self) -> None:
        from spikelens.datasets.streams import open_stream

        try:
            with open_stream(self.source) as stream:
                self.sensor = SensorSize.of(stream.meta)
                self.summary = classify_stream(
                    stream, self.model, self.hop_us, self.smooth, self._push, self._stop, stats=True
                )
        except Exception as exc:  # shown by the GUI; the session just ends
            self.error = str(exc) or type(exc).__name__

    def _push(self, d: Decision) -> None:
        with self._lock:
            self._queue.append(d)

    def take(self) -> list[Decision]:
        with self._lock:
            out, self._queue = self._queue, []
        return out

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
