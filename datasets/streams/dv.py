"""Live iniVation sources through dv-processing: DV network streams (AEDAT 4 over TCP) and USB cameras.

Timestamps stay as the camera sends them (Unix-epoch microseconds).
dv-processing's readers do not block: ``getNextEventBatch`` returns None
when nothing is queued, and ``isRunning`` turns False once the connection or
device is gone, after which the queued packets are drained. DV's network
protocol has no end-of-stream marker, so a sender that closes and one that is
cut look alike: both end the stream, and ``end_reason`` says how many events
came first. With ``reconnect_s`` the stream waits that long for the sender to
come back instead.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from spikelens.datasets.events import empty_events
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.streams.base import HEARTBEAT_S, LiveStream, StreamDisconnected, StreamError, StreamTimeout
from spikelens.datasets.streams.dv_gate import DvGate, GateError

#: how long to sleep when nothing is queued: bounds the added latency
POLL_S = 0.0005
_END = object()


def _dv() -> Any:
    try:
        import dv_processing
    except ImportError as exc:  # pragma: no cover - dv-processing is a core dependency
        raise StreamError("dv", f"live DV sources need dv-processing: pip install dv-processing ({exc})") from exc
    return dv_processing


class DvReaderStream(LiveStream):
    """Packets from any dv-processing reader with ``getNextEventBatch`` / ``isRunning``.

    A daemon thread drains the reader from the moment the stream opens:
    dv-processing discards what it has not handed out once the peer closes,
    so a consumer busy elsewhere (writing a file, a network step) must not be
    the one polling. The thread only copies packets into a queue; ``packets()``
    checks and converts them on the consumer's thread.
    """

    def __init__(
        self,
        source: str,
        reader: Any,
        meta: RecordingMeta,
        read_timeout_s: float | None = None,
        reconnect_s: float = 0.0,
    ) -> None:
        super().__init__(source, meta)
        self._reader = reader
        self.read_timeout_s = read_timeout_s
        self.reconnect_s = reconnect_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._drain, name=f"drain {source}", daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        """A fresh reader after a disconnect (network only); None when the source cannot reconnect."""
        return None

    def _drain(self) -> None:
        stopping = False  # the reader stopped: one more poll takes what it queued before
        try:
            while not self._closing.is_set():
                batch = self._reader.getNextEventBatch()
                if batch is not None:
                    if batch.size():
                        self._queue.put(batch.numpy())
                    continue
                if not self._reader.isRunning():
                    if not stopping:
                        stopping = True
                        continue
                    stopping = False
                    if self._reconnect():
                        continue
                    break
                time.sleep(POLL_S)
        except Exception as exc:  # handed to the consumer as a StreamDisconnected
            self._queue.put(exc)
        self._queue.put(_END)

    def packets(self) -> Iterator[np.ndarray]:
        idle_since = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                if self.read_timeout_s is not None and time.monotonic() - idle_since > self.read_timeout_s:
                    raise StreamTimeout(self.source, f"no events for {self.read_timeout_s:g} s") from None
                yield empty_events()
                continue
            if item is _END:
                self._raise_refusal()
                if not self._closing.is_set():
                    self.end_reason = f"the sender closed the connection after {self.events_received} events"
                return
            if isinstance(item, Exception):
                self._raise_refusal()
                raise StreamDisconnected(self.source, f"read failed after {self.events_received} events: {item}")
            idle_since = time.monotonic()
            yield self._checked(item["timestamp"], item["x"], item["y"], item["polarity"])

    def _raise_refusal(self) -> None:
        """Raise what the network gate refused, if it refused anything (network streams only)."""

    def _reconnect(self) -> bool:
        deadline = time.monotonic() + self.reconnect_s
        while time.monotonic() < deadline and not self._closing.is_set():
            try:
                self._reader = self._connect()
            except StreamError:
                self._reader = None
            if self._reader is not None:
                return True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return False

    def close(self) -> None:
        """Stop the drain thread; dv-processing closes the socket or device when the reader is released."""
        self._closing.set()
        self._thread.join(1.0)
        self._reader = None


class NetworkStream(DvReaderStream):
    """``dv-net:HOST:PORT``: the event stream of a DV NetworkWriter (or DV's "Output to network").

    dv-processing reads the stream through a :class:`~.dv_gate.DvGate`, which checks DV's framing with
    bounded buffers first: a peer that is not a DV sender, or lies about its sizes, is one error line
    (within a few seconds, in bounded memory) instead of gigabytes allocated.
    """

    def __init__(self, host: str, port: int, read_timeout_s: float | None = None, reconnect_s: float = 0.0) -> None:
        self.host, self.port = host, int(port)
        source = f"dv-net:{host}:{port}"
        self._gate: DvGate | None = None
        reader = self._open(source)
        w, h = reader.getEventResolution() or (0, 0)
        meta = RecordingMeta(None, "dv-net", int(w), int(h), reader.getCameraName() or None, {"source": source})
        super().__init__(source, reader, meta, read_timeout_s, reconnect_s)

    def _open(self, source: str) -> Any:
        try:
            gate = DvGate(self.host, self.port)
        except GateError as exc:
            raise StreamError(source, str(exc)) from None
        except OSError as exc:
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            raise StreamError(source, f"cannot connect: {reason} (is a DV network output running there?)") from None
        try:
            reader = _dv().io.NetworkReader(*gate.address)
        except RuntimeError as exc:
            gate.close()
            why = gate.refusal(0) or f"not a DV event stream: {str(exc).split(' [', 1)[0]}"
            raise StreamError(source, why) from None
        if not reader.isEventStreamAvailable():
            gate.close()
            raise StreamError(source, "the server sends no event stream")
        if self._gate is not None:
            self._gate.close()
        self._gate = gate
        return reader

    def _connect(self) -> Any:
        return self._open(self.source)

    def _raise_refusal(self) -> None:
        why = self._gate.refusal() if self._gate is not None else None
        if why:
            raise StreamError(self.source, f"{why} (after {self.events_received} events)")

    def close(self) -> None:
        super().close()
        if self._gate is not None:
            self._gate.close()


class CameraStream(DvReaderStream):
    """``camera[:SERIAL]``: a USB iniVation camera (DVXplorer, DAVIS, DVS128) opened by dv-processing."""

    def __init__(self, serial: str | None = None, read_timeout_s: float | None = None) -> None:
        dv = _dv()
        source = f"camera:{serial}" if serial else "camera"
        found = dv.io.camera.discover()
        if not found:
            raise StreamError(source, "no iniVation camera found (is it plugged in, and may this user open it?)")
        try:
            reader = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except (RuntimeError, IndexError) as exc:
            raise StreamError(source, f"cannot open the camera: {exc}") from exc
        if not reader.isEventStreamAvailable():
            raise StreamError(source, "the camera has no event output")
        w, h = reader.getEventResolution()
        meta = RecordingMeta(None, "dv-camera", int(w), int(h), reader.getCameraName(), {"source": source})
        super().__init__(source, reader, meta, read_timeout_s)
