"""Live DV network streams: how fast `record` keeps up without losing an event, and send-to-frame latency.

    python benchmarks/streams.py [--rates 5 10 20 40] [--seconds 2] [--latency-rate 5]

A child process runs a real dv-processing NetworkWriter on 127.0.0.1. It
builds the whole stream before it starts (native dv-processing generator,
640x480, 10 ms packets, timestamps on the wall clock), then sends each packet
when its last event is due. Side by side, same sender, one run each:

* ``dv reader only``: a bare dv.io.NetworkReader draining the socket (the
  transport's ceiling on this machine: the sender and the receiver share
  2 cores);
* ``spikelens stream``: our stream alone (drain thread, checks, conversion);
* ``spikelens record``: our stream into SpikeLens HDF5 (`spikelens record`).

A rate is "kept up" when every event sent arrived and the last one arrived
within 0.25 s of the sender's last write ("lag"). "sender late" is how far
the sender itself fell behind real time: where it is large, the sender, not
the receiver, limits the figure. Latency: at --latency-rate, the live pump and
frame builder (the GUI's path, without Qt's paint) build a frame every 15 ms;
latency is wall clock at the finished frame minus the newest event's
timestamp in it (both processes read the same clock).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKET_US = 10_000
SIZE = (640, 480)
#: a receiver still running this long after it connected is stopped (and its count reported)
GIVE_UP_S = 60.0


def sender(port: int, rate: float, seconds: float, ready, result) -> None:
    """Child: build the stream, listen, wait for a client, send paced on the wall clock."""
    import dv_processing as dv

    n_packets = round(seconds * 1e6 / PACKET_US)
    per = max(1, round(rate * PACKET_US / 1e6))
    start_us = int((time.time() + 1.0 + n_packets * per / 4e7) * 1e6)  # after the build (~40 M ev/s)
    stores = [
        dv.data.generate.uniformEventsWithinTimeRange(
            start_us + k * PACKET_US, datetime.timedelta(microseconds=PACKET_US), SIZE, per, k
        )
        for k in range(n_packets)
    ]
    writer = dv.io.NetworkWriter("127.0.0.1", port, dv.io.Stream.EventStream(0, "events", "bench", SIZE))
    ready.set()
    while writer.getClientCount() == 0:
        time.sleep(0.001)
    for k, store in enumerate(stores):
        due = (start_us + (k + 1) * PACKET_US) / 1e6
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        writer.writeEvents(store)
    while writer.getQueuedPacketCount():
        time.sleep(0.001)
    done = time.time()
    # seconds the sender took beyond the stream's own length (0: it kept real time)
    result.put((n_packets * per, done - start_us / 1e6 - seconds, done))
    time.sleep(0.5)
    import os

    os._exit(0)


def start_sender(rate: float, seconds: float):
    from helpers_port import free_port

    port = free_port()
    ctx = mp.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=sender, args=(port, rate, seconds, ready, result), daemon=True)
    proc.start()
    if not ready.wait(120):
        raise RuntimeError("the sender did not start")
    return proc, port, result


def receive_raw(port: int) -> tuple[int, float]:
    """(events, wall time of the last one) through a bare dv reader."""
    import dv_processing as dv

    r = dv.io.NetworkReader("127.0.0.1", port)
    n, last = 0, 0.0
    deadline = time.time() + GIVE_UP_S
    while time.time() < deadline:
        b = r.getNextEventBatch()
        if b is not None:
            n, last = n + b.size(), time.time()
        elif not r.isRunning():
            return n, last
        else:
            time.sleep(0.0002)
    return n, last


class Timed:
    """Passes a stream through, noting when its last non-empty packet arrived."""

    def __init__(self, stream) -> None:
        self.stream, self.meta, self.finite, self.end_reason, self.last = stream, stream.meta, False, None, 0.0

    def packets(self):
        for p in self.stream.packets():
            if p.size:
                self.last = time.time()
            yield p


def receive_stream(port: int) -> tuple[int, float]:
    """(events, wall time of the last one) through our stream alone (drain thread, checks), writing nothing."""
    from spikelens.datasets.streams import open_stream

    n, last = 0, 0.0
    deadline = time.time() + GIVE_UP_S
    with open_stream(f"dv-net:127.0.0.1:{port}") as s:
        for p in s.packets():
            if p.size:
                n, last = n + p.size, time.time()
            if time.time() > deadline:
                break
    return n, last


def receive_record(port: int) -> tuple[int, float]:
    """(events, wall time of the last one) through `spikelens record` into HDF5."""
    from spikelens.datasets.streams import open_stream
    from spikelens.pipelines.record import record

    with tempfile.TemporaryDirectory() as d, open_stream(f"dv-net:127.0.0.1:{port}") as s:
        timed = Timed(s)
        n = record(timed, Path(d) / "bench.h5", seconds=GIVE_UP_S).events
        return n, timed.last


def run(receiver, rate: float, seconds: float) -> tuple[int, int, float, float]:
    proc, port, result = start_sender(rate, seconds)
    got, t_last = receiver(port)
    try:
        sent, behind_s, t_sender_done = result.get(timeout=60)
    except queue.Empty:  # the receiver stopped reading: the sender's queue never drained
        proc.kill()
        return -1, got, float("nan"), float("nan")
    proc.join(5)
    return sent, got, behind_s, t_last - t_sender_done


def latency(rate: float, seconds: float) -> tuple[list[float], int]:
    from spikelens.datasets.streams import open_stream
    from spikelens.pipelines.display_frames import FrameBuilder, FrameSettings, to_rgb
    from spikelens.pipelines.live import StreamPump

    proc, port, result = start_sender(rate, seconds)
    pump = StreamPump(open_stream(f"dv-net:127.0.0.1:{port}")).start()
    builder, settings = FrameBuilder(pump.buffer), FrameSettings()
    lat, seen = [], None
    while not pump.finished.is_set():
        time.sleep(0.015)  # the GUI's timer
        t_last = pump.buffer.t_last_us
        if t_last is None or t_last == seen:  # nothing new (before the start, after the end)
            continue
        seen = t_last
        to_rgb(builder.frame(t_last + 1, settings).image, settings)
        lat.append(time.time() * 1e3 - t_last / 1e3)
    sent = result.get(timeout=60)[0]
    proc.join(5)
    return lat[5:], sent - pump.buffer.n_total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[5, 10, 20, 40], help="M events/s")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--latency-rate", type=float, default=5.0, help="M events/s")
    ap.add_argument("--series", action="store_true", help="also print every frame's latency")
    args = ap.parse_args()
    print(f"DV network stream on 127.0.0.1, {args.seconds:g} s per run, 10 ms packets, {SIZE[0]}x{SIZE[1]}")
    print(
        f"{'rate':>8} | {'receiver':<17} | {'sent':>10} | {'received':>10} | {'sender late s':>13} | "
        f"{'lag s':>6} | kept up"
    )
    for rate in args.rates:
        receivers = (("dv reader only", receive_raw), ("spikelens stream", receive_stream))
        for name, receiver in (*receivers, ("spikelens record", receive_record)):
            sent, got, behind, lag = run(receiver, rate * 1e6, args.seconds)
            ok = got == sent and lag < 0.25  # a sender that never finished reports sent = -1
            print(
                f"{rate:>6g} M | {name:<17} | {sent:>10,} | {got:>10,} | {behind:>13.2f} | {lag:>6.2f} | "
                f"{'yes' if ok else 'NO'}"
            )
    lat, lost = latency(args.latency_rate * 1e6, max(args.seconds, 3.0))
    if args.series:
        print(" ".join(f"{v:.0f}" for v in lat))
    q = statistics.quantiles(lat, n=20)
    print(
        f"\nsend-to-frame latency at {args.latency_rate:g} M ev/s ({len(lat)} frames, {lost} events lost): "
        f"median {statistics.median(lat):.1f} ms, p95 {q[18]:.1f} ms, max {max(lat):.1f} ms"
    )
    print("(it includes the 10 ms packets' own span and the 15 ms frame timer, 7.5 ms on average)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    np.seterr(all="ignore")
    main()
