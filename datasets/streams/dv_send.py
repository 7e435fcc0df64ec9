"""Serve a recording as a DV network stream (dv-processing NetworkWriter), paced at SPEED x real time.

For tests, benchmarks and demos: anything that reads ``dv-net:HOST:PORT``
(SpikeLens, DV, dv-processing) can consume it. Run as a script it prints
``LISTENING`` once the port is open and ``SENT <events>`` once every packet
left the writer's queue; ``--cut-after K`` then kills the process without
closing anything, the way a sender dies mid-stream.

    python -m spikelens.datasets.streams.dv_send FILE --port 7777 [--speed 1] [--cut-after K]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from spikelens.datasets.detect import open_recording
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.streams.base import sleep_until

#: recording time per network packet
PACKET_US = 10_000


def to_store(events: np.ndarray) -> Any:
    """A ``dv.EventStore`` of our events (dv-processing builds stores event by event: about 2 M ev/s)."""
    import dv_processing as dv

    store = dv.EventStore()
    push = store.push_back
    for t, x, y, p in zip(
        events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), (events["p"] > 0).tolist(), strict=True
    ):
        push(t, x, y, p)
    return store


def packets_of(events: np.ndarray, packet_us: int = PACKET_US) -> Iterator[np.ndarray]:
    """Consecutive slices of ``packet_us`` recording time."""
    lo = 0
    while lo < events.size:
        hi = int(np.searchsorted(events["t"], events["t"][lo] + packet_us, side="left"))
        yield events[lo:hi]
        lo = hi


def open_writer(meta: RecordingMeta, host: str, port: int) -> Any:
    import dv_processing as dv

    stream = dv.io.Stream.EventStream(0, "events", meta.camera or "SpikeLens", (meta.width, meta.height))
    return dv.io.NetworkWriter(host, port, stream)


def wait_for_client(writer: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while writer.getClientCount() == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no client connected within {timeout_s:g} s")
        time.sleep(0.005)


def drain(writer: Any) -> None:
    """Wait until the writer's queue is empty (every packet handed to the socket)."""
    while writer.getQueuedPacketCount():
        time.sleep(0.002)


def send(writer: Any, stores: list[tuple[int, Any]], speed: float) -> None:
    """Write (first event time, store) pairs when their time comes."""
    start = time.monotonic()
    t0 = stores[0][0] if stores else 0
    for t, store in stores:
        sleep_until(start + (t - t0) / 1e6 / speed)
        writer.writeEvents(store)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="any recording SpikeLens reads")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--speed", type=float, default=1.0, help="x real time")
    ap.add_argument("--cut-after", type=int, help="die (SIGKILL) after this many packets")
    args = ap.parse_args(argv)
    with open_recording(args.file) as rec:
        events, meta = rec.load(), rec.meta
    chunks = list(packets_of(events))
    if args.cut_after is not None:
        chunks = chunks[: args.cut_after]
    stores = [(int(c["t"][0]), to_store(c)) for c in chunks]
    writer = open_writer(meta, args.host, args.port)
    print("LISTENING", flush=True)
    wait_for_client(writer)
    send(writer, stores, args.speed)
    drain(writer)
    time.sleep(0.2)  # let the kernel hand the last bytes to the reader
    print(f"SENT {sum(c.size for c in chunks)}", flush=True)
    if args.cut_after is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(0)  # dv-processing's NetworkWriter destructor can block while a client is connected


if __name__ == "__main__":
    sys.exit(main())
