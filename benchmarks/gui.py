"""GUI replay: render frames/s and the longest GUI-thread stall, our display path vs a naive one.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui.py [--seconds 4] [--rate 5e6]
    QT_QPA_PLATFORM=offscreen python benchmarks/gui.py --big-gb 1

A 346x260 recording with --rate events/s (default 5 M ev/s, --seconds long)
is written to HDF5, opened in the real MainWindow and replayed at 1x for 3 s
of wall time with 33 ms frames, twice:

* ours: uint8 level image + fixed levels + uint8 lookup table (pyqtgraph's fast path);
* naive: the same frame converted to float RGB and shown with autoLevels,
  as a straightforward implementation would.

A 5 ms heartbeat QTimer runs throughout; the longest gap between its ticks,
minus 5 ms, is the longest the GUI thread was blocked (opening included:
reading runs on a worker). Targets: >= 30 fps, stall < 50 ms.

With --models (run on its own) the window views a live 128x128 stream at
2 M ev/s (a recording replayed in real time), while the Classify tab
classifies a second real-time replay of it and the SAI tab reconstructs a
simulated occluded scene at a new depth every 300 ms: the live view's frames
per second and the longest GUI stall (targets: >= 30 fps, < 50 ms).

With --soak S (run on its own) the live view shows an endless 2 M ev/s
128x128 stream (a block of random events looped with advancing time, paced
in real time) for S seconds (the issue's soak: 600): resident memory every
10 s, the longest GUI stall, stalls over 100 ms counted, and every event
sent accounted for in the live buffer's count.

With --big-gb G (run on its own) a Prophesee .dat file of G GB is written and
the time from open to the first frame on screen is measured (target < 2 s for
1 GB), with the peak resident memory while it is indexed (mapped file pages
included).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from spikelens.app.main_window import MainWindow
from spikelens.datasets import RecordingMeta, write_h5
from spikelens.datasets.formats.prophesee import encode_dat
from spikelens.datasets.patterns import random_events, sai_points

W, H = 346, 260


class Heartbeat:
    def __init__(self, interval_ms: int = 5) -> None:
        self.interval = interval_ms / 1000
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def worst_stall_ms(self) -> float:
        return max(0.0, (max(self.gaps, default=0) - self.interval) * 1000)


def wait(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_for(signal, timeout_s: float = 120) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()


def naive_display(window: MainWindow):
    """Float RGB + autoLevels in place of the uint8/LUT display step (bookkeeping unchanged)."""
    from spikelens.pipelines import display_frames as fr

    window.image.setLookupTable(None)

    def display(image: np.ndarray) -> None:
        rgb = fr.to_rgb(image, window.frame_settings).astype(np.float64) / 255.0
        window.image.setImage(rgb, autoLevels=True)

    return display


def replay(path: Path, naive: bool) -> dict[str, float]:
    window = MainWindow()
    window.show()
    wait(0.5)  # first paint and layout are not part of the measurement
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    window.open_path(path)
    wait_for(window.recordingOpened)
    opened = time.perf_counter() - t0
    wait(0.2)
    open_stall = beat.worst_stall_ms()
    beat.start()
    if naive:
        window.display_image = naive_display(window)
    frame_times: list[float] = []
    render = window.render_current

    def timed_render() -> None:
        s = time.perf_counter()
        render()
        frame_times.append(time.perf_counter() - s)

    window.render_current = timed_render
    window.set_speed(1.0)
    n0 = window.frames_rendered
    start = time.perf_counter()
    window.play()
    wait(3.0)
    elapsed = time.perf_counter() - start
    window.pause()
    frames = window.frames_rendered - n0
    shown = window.frame.n_events / max(window.frame.t1_us - window.frame.t0_us, 1)
    window.close()
    return {
        "fps": frames / elapsed,
        "frame_ms": statistics.median(frame_times) * 1000 if frame_times else float("nan"),
        "stall_ms": beat.worst_stall_ms(),
        "open_stall_ms": open_stall,
        "open_s": opened,
        "shown_mev": shown,
    }


def models_under_load(tmp: Path, seconds: float = 6.0, rate: float = 2e6) -> dict[str, float]:
    from spikelens.datasets.formats.esai import write_esai
    from spikelens.datasets.simulator.sai import make_scene, simulate_scene

    n = int(rate * (seconds + 4))
    ev = random_events(n, 128, 128, rate_hz=rate, seed=2)
    live = tmp / "live_2M.h5"
    write_h5(live, ev, RecordingMeta(live, "benchmark", 128, 128))
    rng = np.random.default_rng(7)
    sai_events, meta = simulate_scene(make_scene("photo:camera", rng), rng)
    scene = tmp / "scene.npy"
    write_esai(scene, sai_events, meta)

    window = MainWindow()
    window.show()
    window.open_path(scene)
    wait_for(window.recordingOpened)
    sai = window.sai
    while sai.picker.model is None or window.classify.model is None:
        wait(0.1)
    sai.recon_box.setChecked(True)
    wait_for(sai.reconstructed)
    window.open_stream(f"file:{live}@1")
    wait_for(window.streamOpened)
    window.classify.source.setCurrentText(f"file:{live}@1")
    window.classify.start()
    wait(0.5)
    beat = Heartbeat()
    beat.start()
    shown = []
    sai.reconstructed.connect(shown.append)
    n0, t0 = window.frames_rendered, time.perf_counter()
    depth = meta.extra["depth"]
    for k in range(int(seconds / 0.3)):
        sai.set_depth(depth * (0.8 + 0.05 * (k % 8)))
        wait(0.3)
    elapsed = time.perf_counter() - t0
    fps = (window.frames_rendered - n0) / elapsed
    decisions = window.classify.session.take()
    window.classify.stop()
    summary = window.classify.session.summary
    window.close()
    return {
        "fps": fps,
        "stall_ms": beat.worst_stall_ms(),
        "reconstructions": len(shown),
        "decisions": (summary.decisions if summary else 0) or len(decisions),
        "skipped": summary.skipped if summary else 0,
        "seconds": elapsed,
    }


class LoopStream:
    """An endless real-time stream: one block of events sent again and again with advancing time."""

    finite = False
    realtime = True

    def __init__(self, rate: float, packet_s: float = 0.01) -> None:
        from spikelens.datasets import RecordingMeta

        self.meta = RecordingMeta(None, "benchmark", 128, 128)
        self.source = f"loop:{rate:g}"
        self.end_reason = None
        self.sent = 0
        self._block = random_events(int(rate * 2), 128, 128, rate_hz=rate, seed=5)
        self._packet = int(rate * packet_s)
        self._stop = False

    def packets(self):
        span = int(self._block["t"][-1]) + 1
        start, k, lo = time.monotonic(), 0, 0
        while not self._stop:
            pkt = self._block[lo : lo + self._packet].copy()
            pkt["t"] += k * span
            due = start + int(pkt["t"][-1]) / 1e6
            while (left := due - time.monotonic()) > 0 and not self._stop:
                time.sleep(min(left, 0.05))
            self.sent += pkt.size
            yield pkt
            lo += self._packet
            if lo >= self._block.size:
                lo, k = 0, k + 1

    def close(self) -> None:
        self._stop = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def live_soak(seconds: float, rate: float = 2e6) -> dict:
    """The live view on an endless ``rate`` stream for ``seconds``: memory, stalls, events accounted for."""
    from soak import rss_mb  # benchmarks run as scripts: soak.py beside this one imports

    window = MainWindow()
    window.show()
    stream = LoopStream(rate)
    window.view_stream(stream.source, stream)
    beat = Heartbeat()
    beat.start()
    n0, t0 = window.frames_rendered, time.perf_counter()
    samples = []
    while (now := time.perf_counter() - t0) < seconds:
        wait(10.0)
        samples.append((now + 10, rss_mb(os.getpid())))
    elapsed = time.perf_counter() - t0
    fps = (window.frames_rendered - n0) / elapsed
    received = window.live.buffer.n_total
    window.close()
    gaps = [(g - beat.interval) * 1000 for g in beat.gaps]
    after = [m for t, m in samples if t >= 60] or [m for _, m in samples]
    return {
        "seconds": elapsed,
        "fps": fps,
        "stall_ms": max(gaps, default=0.0),
        "stalls_over_100ms": sum(g > 100 for g in gaps),
        "rss_first": after[0],
        "rss_peak": max(after),
        "rss_end": after[-1],
        "sent": stream.sent,
        "received": received,
    }


def first_frame(path: Path) -> tuple[float, float, float]:
    window = MainWindow()
    window.show()
    shown: list[float] = []
    window.previewShown.connect(lambda _path: shown.append(time.perf_counter()))
    t0 = time.perf_counter()
    window.open_path(path)
    while not shown and time.perf_counter() - t0 < 60:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    t_first = shown[0] - t0 if shown else float("nan")
    wait_for(window.recordingOpened, 600)
    t_all = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    window.close()
    return t_first, t_all, peak


def write_big_dat(path: Path, gigabytes: float, rate: float) -> None:
    """Tile one block of random events (8 bytes each) with advancing time until the file is big enough."""
    block = random_events(4_000_000, W, H, rate_hz=rate, seed=3)
    span = int(block["t"][-1]) + 1
    skip = len(encode_dat(block[:0], W, H))
    with open(path, "wb") as f:
        f.write(encode_dat(block[:0], W, H))
        k = 0
        while f.tell() < gigabytes * 1e9:
            chunk = block.copy()
            chunk["t"] += k * span
            f.write(encode_dat(chunk, W, H)[skip:])
            k += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=5e6)
    ap.add_argument("--big-gb", type=float, default=0.0)
    ap.add_argument("--models", action="store_true", help="live view + live classification + reconstruction")
    ap.add_argument("--soak", type=float, default=0.0, help="live view of an endless 2 M ev/s stream, seconds")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    tmp = Path(tempfile.mkdtemp(prefix="spikelens-bench-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app.setOrganizationName("SpikeLensBench")
    pg.setConfigOptions(imageAxisOrder="row-major")

    if args.models:
        r = models_under_load(tmp)
        print(
            f"live view of a 2 M ev/s stream while classifying it live and reconstructing every 300 ms "
            f"({r['seconds']:.1f} s, platform {app.platformName()}):\n"
            f"  view {r['fps']:.1f} fps, longest GUI stall {r['stall_ms']:.1f} ms; "
            f"{r['reconstructions']} reconstructions, {r['decisions']} decisions, {r['skipped']} windows skipped\n"
            "  targets: >= 30 fps, stall < 50 ms"
        )
        return
    if args.soak > 0:
        r = live_soak(args.soak)
        growth = 100 * (r["rss_peak"] - r["rss_first"]) / r["rss_first"]
        print(
            f"live view soak, 2 M ev/s for {r['seconds']:.0f} s (platform {app.platformName()}):\n"
            f"  view {r['fps']:.1f} fps; longest GUI stall {r['stall_ms']:.1f} ms, "
            f"{r['stalls_over_100ms']} over 100 ms\n"
            f"  RSS after 1 min {r['rss_first']:.0f} MB, peak {r['rss_peak']:.0f} MB, end {r['rss_end']:.0f} MB "
            f"(growth {growth:.1f} %)\n"
            f"  events sent {r['sent']:,}, received by the view {r['received']:,}\n"
            "  targets: memory growth < 10 % after the first minute, no stall over 100 ms"
        )
        return
    if args.big_gb > 0:  # on its own, so peak memory is this file's alone
        big = tmp / "big.dat"
        write_big_dat(big, args.big_gb, args.rate)
        print(f"Prophesee .dat of {big.stat().st_size / 1e9:.2f} GB: ", end="", flush=True)
        t_first, t_all, peak = first_frame(big)
        print(f"first frame after {t_first:.2f} s, fully indexed after {t_all:.1f} s, peak RSS {peak:.0f} MB")
        big.unlink()
        return
    n = int(args.rate * args.seconds)
    ev, _ = sai_points(
        W, H, n_events=int(n * 2.2), duration_us=int(args.seconds * 1e6), seed=1
    )  # ~half land on the sensor
    ev = ev[:n]
    ev["t"] = ev["t"] * (args.seconds * 1e6 / max(int(ev["t"][-1]), 1))  # exactly --rate events/s
    path = tmp / "replay.h5"
    write_h5(path, ev, RecordingMeta(path, "benchmark", W, H))
    print(f"{n / 1e6:.0f} M events, {W}x{H}, {args.rate / 1e6:g} M ev/s, platform {app.platformName()}, 33 ms frames\n")
    head = (
        f"{'display path':<34}{'render fps':>12}{'median frame':>14}{'worst stall':>13}{'open stall':>12}{'shown':>14}"
    )
    print(head)
    rows = {}
    for name, naive in (("ours (uint8 + LUT, fixed levels)", False), ("naive (float RGB, autoLevels)", True)):
        r = rows[name] = replay(path, naive)
        print(
            f"{name:<34}{r['fps']:>12.1f}{r['frame_ms']:>12.1f}ms{r['stall_ms']:>11.1f}ms{r['open_stall_ms']:>10.1f}ms"
            f"{r['shown_mev']:>9.2f} Mev/s"
        )
    ours = rows["ours (uint8 + LUT, fixed levels)"]
    print(f"\nopened (indexed, rate plot ready) in {ours['open_s']:.2f} s; targets: >= 30 fps, stall < 50 ms")
    print("(render fps is capped by the 15 ms playback timer; the median frame time is the cost)")


if __name__ == "__main__":
    main()
