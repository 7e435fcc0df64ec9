"""The stream seam: source strings, paced replay, DV network streams (a real NetworkWriter on 127.0.0.1),
cameras (no camera here: the error and the packet conversion), the live simulator, and the recorder."""

import subprocess
import sys
import time

import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import RecordingMeta, open_recording, write_h5
from spikelens.datasets.patterns import rotating_bar
from spikelens.datasets.streams import (
    EventStream,
    SourceSyntaxError,
    StreamError,
    open_stream,
    parse_source,
)
from spikelens.datasets.streams.dv import CameraStream, DvReaderStream, NetworkStream
from spikelens.datasets.streams.replay import ReplayStream
from spikelens.datasets.streams.simulated import SimulatedGestureStream
from spikelens.pipelines.jobs import Job
from spikelens.pipelines.live import LiveBuffer, StreamPump
from spikelens.pipelines.record import Recorder, record

from helpers import DvSender, assert_events_equal, free_port


@pytest.fixture(scope="module")
def bar(tmp_path_factory):
    """A 128x128 rotating bar, 0.6 s, stamped like a DV camera (Unix-epoch microseconds)."""
    ev = rotating_bar(128, 128, duration_us=600_000, n_events=60_000, seed=3)
    ev["t"] += 1_605_537_493_718_345
    path = tmp_path_factory.mktemp("streams") / "bar.h5"
    write_h5(path, ev, RecordingMeta(None, "test", 128, 128, "DVXplorer_test"))
    return path, ev


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("rec.aedat4", {"kind": "path", "path": "rec.aedat4"}),
        ("file:rec.h5", {"kind": "file", "path": "rec.h5", "speed": 1.0}),
        ("file:/a/b@c.h5@2.5", {"kind": "file", "path": "/a/b@c.h5", "speed": 2.5}),
        ("file:rec.h5@10x", {"kind": "file", "speed": 10.0}),
        ("dv-net:127.0.0.1:7777", {"kind": "dv-net", "host": "127.0.0.1", "port": 7777}),
        ("dv-net:[::1]:7777", {"kind": "dv-net", "host": "::1", "port": 7777}),
        ("camera", {"kind": "camera", "serial": None}),
        ("camera:DXA00093", {"kind": "camera", "serial": "DXA00093"}),
        ("sim:gesture", {"kind": "sim", "seed": 0}),
        ("sim:gesture:42", {"kind": "sim", "seed": 42}),
        ("sim:gesture:42@4", {"kind": "sim", "seed": 42, "speed": 4.0}),
        ("sim:gesture@2x", {"kind": "sim", "seed": 0, "speed": 2.0}),
    ],
)
def test_source_strings(text, want):
    spec = parse_source(text)
    for key, value in want.items():
        got = getattr(spec, key)
        assert (str(got) if key == "path" else got) == value
    assert spec.live == (spec.kind in ("dv-net", "camera", "sim"))


@pytest.mark.parametrize(
    "text",
    [
        "dv-net:7777",
        "dv-net:host:port",
        "dv-net:h:70000",
        "sim:cars",
        "sim:gesture:x",
        "sim:gesture@0",
        "file:",
        "file:a@0",
        "",
    ],
)
def test_bad_source_strings_say_what_is_wrong(text):
    with pytest.raises(SourceSyntaxError, match="sources are PATH"):
        parse_source(text)


def test_a_file_is_a_finite_stream(bar):
    path, ev = bar
    with open_stream(str(path)) as s:
        assert isinstance(s, EventStream) and s.finite and not s.realtime
        assert_events_equal(np.concatenate(list(s.packets())), ev)


def test_replay_is_paced_and_exact(bar):
    path, ev = bar
    with open_stream(f"file:{path}@4") as s:
        assert isinstance(s, ReplayStream) and s.finite and s.realtime
        start = time.monotonic()
        got, arrivals = [], []
        for pkt in s.packets():
            got.append(pkt)
            if pkt.size:
                arrivals.append((time.monotonic() - start, (int(pkt["t"][-1]) - int(ev["t"][0])) / 4e6))
    assert_events_equal(np.concatenate(got), ev)
    lag = [wall - due for wall, due in arrivals]
    assert min(lag) > -0.002 and np.median(lag) < 0.05  # never early, and on time
    assert arrivals[-1][0] == pytest.approx(0.6 / 4, abs=0.1) and "end of the recording" in s.end_reason


def test_replay_hands_back_control_in_gaps(tmp_path):
    ev = rotating_bar(32, 32, duration_us=100_000, n_events=100, seed=0)
    ev["t"][50:] += 400_000  # a 0.4 s gap
    path = tmp_path / "gap.h5"
    write_h5(path, ev, RecordingMeta(None, "t", 32, 32))
    with open_stream(f"file:{path}@1") as s:
        gaps, last = [], time.monotonic()
        for _ in s.packets():
            now = time.monotonic()
            gaps.append(now - last)
            last = now
    assert max(gaps) < 0.25  # heartbeats every 50 ms; slack for a loaded CI machine


@pytest.mark.slow
def test_network_stream_records_every_event_bit_for_bit(tmp_path, samples):
    """A real DVXplorer file (Unix-epoch times), served at real time by dv-processing's NetworkWriter."""
    real = samples / "sample.aedat4"
    sender = DvSender(real)
    try:
        out = tmp_path / "live.h5"
        with open_stream(sender.source) as stream:
            assert isinstance(stream, NetworkStream) and not stream.finite
            assert (stream.meta.width, stream.meta.height) == (320, 240) and "DVXplorer" in stream.meta.camera
            stats = record(stream, out)
        n_sent = sender.sent()
    finally:
        sender.close()
    with open_recording(real) as rec:
        want = rec.load()
    assert n_sent == want.size and stats.events == want.size and stats.error is None
    assert "closed the connection" in stats.reason
    with open_recording(out) as got:
        assert (got.meta.width, got.meta.height) == (320, 240)
        assert_events_equal(got.load(), want)


@pytest.mark.slow
def test_sender_cut_mid_stream_keeps_exactly_what_was_sent(tmp_path, samples):
    sender = DvSender(samples / "sample.aedat4", speed=2.0, cut_after=25)
    out = tmp_path / "cut.h5"
    try:
        r = subprocess.run(
            [sys.executable, "-m", "spikelens", "record", sender.source, "-o", str(out), "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        n_sent = sender.sent()
    finally:
        sender.close()
    assert r.returncode == 0, r.stderr
    assert f"wrote {n_sent} events" in r.stdout and "closed the connection" in r.stdout
    with open_recording(samples / "sample.aedat4") as rec:
        want = rec.load()[:n_sent]
    with open_recording(out) as got:
        assert_events_equal(got.load(), want)
    assert 0 < n_sent < 111_954


def test_refused_connection_is_one_line_and_status_2(tmp_path):
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "spikelens", "record", f"dv-net:127.0.0.1:{port}", "-o", str(tmp_path / "x.h5")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "connection refused" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_no_camera_is_a_clear_error():
    with pytest.raises(StreamError, match="no iniVation camera found"):
        open_stream("camera")
    with pytest.raises(StreamError, match="camera:XYZ: no iniVation camera found"):
        CameraStream("XYZ")


class FakeDvReader:
    """Stands in for a camera: hands out real dv.EventStore packets, then stops like an unplugged device."""

    def __init__(self, stores):
        self.stores = list(stores)

    def getNextEventBatch(self):
        return self.stores.pop(0) if self.stores else None

    def isRunning(self):
        return bool(self.stores)


def test_dv_packets_convert_exactly():
    import dv_processing as dv

    start = 1_700_000_000_000_000
    stores = [
        dv.data.generate.uniformEventsWithinTimeRange(
            start + k * 10_000, __import__("datetime").timedelta(0, 0, 10_000), (346, 260), 5_000, k
        )
        for k in range(4)
    ]
    want = np.concatenate([s.numpy() for s in stores])
    meta = RecordingMeta(None, "dv-camera", 346, 260, "fake")
    s = DvReaderStream("camera", FakeDvReader(stores), meta)
    got = np.concatenate(list(s.packets()))
    np.testing.assert_array_equal(got["t"], want["timestamp"])
    np.testing.assert_array_equal(got["x"], want["x"])
    np.testing.assert_array_equal(got["y"], want["y"])
    np.testing.assert_array_equal(got["p"], want["polarity"])
    assert s.events_received == want.size and "closed" in s.end_reason


def _stores(start, n):
    import datetime

    import dv_processing as dv

    span = datetime.timedelta(microseconds=10_000)
    return [
        dv.data.generate.uniformEventsWithinTimeRange(start + k * 10_000, span, (346, 260), 100, k) for k in range(n)
    ]


class IdleDvReader(FakeDvReader):
    """Connected, but the camera sees nothing."""

    def isRunning(self):
        return True


def test_a_silent_source_times_out_and_hands_back_control():
    from spikelens.datasets.streams import StreamTimeout

    s = DvReaderStream("camera", IdleDvReader(_stores(0, 2)), RecordingMeta(None, "dv-camera", 346, 260), 0.3)
    got, start = [], time.monotonic()
    with pytest.raises(StreamTimeout, match=r"no events for 0\.3 s"):
        for pkt in s.packets():
            got.append((time.monotonic() - start, pkt.size))
    assert sum(n for _, n in got) == 200 and sum(n == 0 for _, n in got) >= 3  # heartbeats while waiting
    assert 0.3 <= time.monotonic() - start < 1.5
    s.close()


@pytest.mark.slow
def test_reconnect_resumes_after_the_sender_comes_back():
    class Reconnecting(DvReaderStream):
        def __init__(self, *a, **kw):
            self.spare = [FakeDvReader(_stores(1_000_000, 3))]
            super().__init__(*a, **kw)

        def _connect(self):
            return self.spare.pop() if self.spare else None

    s = Reconnecting("dv-net:x:1", FakeDvReader(_stores(0, 2)), RecordingMeta(None, "dv-net", 346, 260), None, 2.0)
    ev = np.concatenate(list(s.packets()))
    assert ev.size == 500 and np.all(np.diff(ev["t"]) >= 0) and "closed" in s.end_reason
    s.close()


def test_dv_packets_outside_the_sensor_are_an_error():
    import dv_processing as dv

    store = dv.EventStore()
    store.push_back(1, 400, 3, True)
    s = DvReaderStream("camera", FakeDvReader([store]), RecordingMeta(None, "dv-camera", 346, 260))
    with pytest.raises(StreamError, match=r"outside the 346x260 sensor"):
        list(s.packets())


def test_simulated_gesture_stream_is_live_and_labelled():
    with open_stream("sim:gesture:3") as s:
        assert isinstance(s, SimulatedGestureStream) and not s.finite and s.realtime
        start, packets = time.monotonic(), []
        for pkt in s.packets():
            packets.append(pkt)
            if time.monotonic() - start > 0.6:
                break
    ev = np.concatenate(packets)
    assert ev.size > 1000 and np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].max() < 128 and ev["y"].max() < 128
    assert ev["t"][-1] <= 1e6 * (time.monotonic() - start) + 10_000  # never ahead of real time
    assert len(s.labels) == 11 and sorted(lab for lab, _, _ in s.labels) == list(range(11))


def test_the_simulator_can_be_paced_faster_than_real_time():
    with open_stream("sim:gesture:3@4") as s:
        start, last = time.monotonic(), 0
        for pkt in s.packets():
            last = int(pkt["t"][-1]) if pkt.size else last
            if time.monotonic() - start > 0.5:
                break
        wall = time.monotonic() - start
    assert last <= 4e6 * wall + 10_000  # never ahead of 4x real time
    assert last > 4e6 * 0.5 * 0.5  # and not far behind it


def test_info_probes_a_live_source(capsys):
    assert main(["info", "sim:gesture:1", "--json", "--probe-s", "0.5"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "sim-gesture" and (info["width"], info["height"]) == (128, 128)
    assert info["events"] > 0 and info["rate_hz"] > 0 and info["probe_s"] >= 0.5


@pytest.mark.parametrize(("limit", "value"), [("--events", "12345"), ("--seconds", "0.25")])
def test_record_stops_at_a_limit(bar, tmp_path, capsys, limit, value):
    path, ev = bar
    out = tmp_path / "lim.h5"
    assert main(["record", str(path), "-o", str(out), limit, value, "-q"]) == 0
    want = ev[:12345] if limit == "--events" else ev[ev["t"] < ev["t"][0] + 250_000]
    with open_recording(out) as got:
        assert_events_equal(got.load(), want)
    assert "reached the limit" in capsys.readouterr().out


class InterruptedStream:
    """A live source the user stops with Ctrl-C after ``n`` packets."""

    finite, realtime, end_reason = False, True, None

    def __init__(self, ev, n):
        self.meta, self.ev, self.n = RecordingMeta(None, "test", 128, 128), ev, n

    def packets(self):
        for i in range(self.n):
            yield self.ev[i * 1000 : (i + 1) * 1000]
        raise KeyboardInterrupt

    def close(self):
        pass


def test_ctrl_c_leaves_a_complete_file(bar, tmp_path):
    _, ev = bar
    out = tmp_path / "ctrl_c.h5"
    seen = []
    stats = record(InterruptedStream(ev, 7), out, job=Job(lambda d, t, m: seen.append(m)))
    assert stats.reason == "stopped by Ctrl-C" and stats.events == 7000
    with open_recording(out) as got:
        assert_events_equal(got.load(), ev[:7000])


def test_recorder_refuses_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"\.h5"):
        Recorder(tmp_path / "x.npz", RecordingMeta(None, "t", 1, 1))


def test_live_buffer_windows_match_the_whole_array(bar):
    _, ev = bar
    buf = LiveBuffer(RecordingMeta(None, "t", 128, 128), max_events=30_000, keep_us=10_000_000)
    for i in range(0, ev.size, 777):
        buf.push(ev[i : i + 777])
    assert 30_000 - 777 < len(buf) <= 30_000 and buf.n_total == ev.size  # bounded, oldest dropped first
    t0 = buf.t_oldest_us
    kept = ev[ev.size - len(buf) :]
    assert kept["t"][0] == t0
    t_end = int(ev["t"][-1]) + 1
    for a, b in [(t0, t_end), (t_end - 50_000, t_end - 10_000), (t_end - 1, t_end)]:
        assert_events_equal(buf.window(a, b), kept[(kept["t"] >= a) & (kept["t"] < b)])
    assert_events_equal(buf.last_n(t_end, 5000), kept[-5000:])
    assert buf.pixel_counts.sum() == len(buf)
    start, rates = buf.rates(1_000_000)
    assert rates.sum() * 0.01 == pytest.approx(ev.size, rel=0.01) and start <= int(ev["t"][0])


def test_pump_records_while_viewing(bar, tmp_path):
    path, ev = bar
    pump = StreamPump(open_stream(f"file:{path}@3")).start()
    pump.start_recording(tmp_path / "rec.h5")
    assert pump.finished.wait(10)
    pump.stop()
    assert pump.end_reason and pump.error is None and pump.recording.events == ev.size
    with open_recording(tmp_path / "rec.h5") as got:
        assert_events_equal(got.load(), ev)
