"""The desktop app on real camera files and live sources (offscreen; Qt warnings fail a test)."""

import threading

import numpy as np
import pytest

pytest.importorskip("PyQt6")

from PyQt6.QtCore import QThreadPool

from spikelens.datasets import open_recording
from spikelens.datasets.bundled import bundled_sample
from spikelens.pipelines import viewer

from helpers import WAIT, DvSender, assert_events_equal, open_file


def test_every_real_sample_opens_or_explains(qtbot, window, samples):
    """Real cameras stamp events with Unix-epoch microseconds: every time shown must be relative."""
    w = window
    for path in sorted(samples.iterdir()):
        opened, failed = [], []
        w.recordingOpened.connect(opened.append)
        w.loadFailed.connect(failed.append)
        w.open_path(path)
        qtbot.waitUntil(lambda opened=opened, failed=failed: bool(opened or failed), timeout=WAIT)
        w.recordingOpened.disconnect(opened.append)
        w.loadFailed.disconnect(failed.append)
        if failed:  # only a file without events may refuse, and the dialog names it
            assert path.name in w.last_error and "no events" in w.last_error
            w.error_box.accept()
            continue
        c = w.clock
        assert w.rate_plot._t.size and 0 <= w.rate_plot._t[0] < 0.05  # seconds since the first event
        assert w.pos_label.text().strip().startswith("0.")
        w.seek(c.t_end_us)
        assert float(w.pos_label.text().split("/")[1].split()[0]) == pytest.approx((c.t_end_us - c.t_start_us) / 1e6)
        if w.sai.isEnabled():
            assert 0 <= w.sai.t_ref.value() <= (c.t_end_us - c.t_start_us) // 1000 + 1
        w.play()
        n = w.frames_rendered
        qtbot.waitUntil(lambda n=n: w.frames_rendered > n + 2, timeout=WAIT)
        w.pause()


@pytest.mark.slow
def test_live_view_of_a_dv_network_stream_records_and_survives_the_end(qtbot, window, samples, tmp_path):
    w = window
    real = samples / "sample.aedat4"
    sender = DvSender(real, speed=0.5)
    try:
        with qtbot.waitSignal(w.streamOpened, timeout=WAIT):
            w.open_stream(sender.source)
        assert w.live is not None and "live" in w.windowTitle()
        qtbot.waitUntil(lambda: w.frame is not None and w.frame.n_events > 0, timeout=WAIT)
        assert not w.statusBar().currentMessage().startswith("connecting")  # it streams: say so, not "connecting"
        out = tmp_path / "live.h5"
        w.start_recording(out)
        assert w.live_bar.record.isChecked()
        w.live_bar.freeze.setChecked(True)
        frozen_at = w.frame.t1_us
        qtbot.wait(200)
        assert w.frame.t1_us == frozen_at and "frozen" in w.pos_label.text()
        w.live_bar.freeze.setChecked(False)
        qtbot.waitUntil(lambda: w.frame.t1_us > frozen_at, timeout=WAIT)
        reasons = []
        w.streamEnded.connect(reasons.append)
        qtbot.waitUntil(lambda: bool(reasons), timeout=WAIT)
        assert "closed the connection" in reasons[0]
        n_sent = sender.sent()
    finally:
        sender.close()
    qtbot.waitUntil(lambda: out.exists(), timeout=WAIT)
    assert "ended" in w.live_bar.status.text() and not w.live_bar.record.isChecked()
    with open_recording(real) as rec, open_recording(out) as got:
        want, events = rec.load(), got.load()
    # recording started after the first frames: a contiguous tail of what was sent, to the last event
    assert n_sent == want.size and 0 < events.size < want.size
    assert w.live.buffer.n_total == want.size  # the frame path saw every event too
    assert_events_equal(events, want[want.size - events.size :])
    assert w.rate_plot._t.size and w.rate_plot._t[-1] < 5  # relative seconds, rolling
    open_file(qtbot, w, bundled_sample())  # the window carries on with a file
    assert w.live is None and w.transport.isVisible()


def test_a_refused_stream_shows_a_dialog(qtbot, window):
    from helpers import free_port

    w = window
    with qtbot.waitSignal(w.loadFailed, timeout=WAIT):
        w.open_stream(f"dv-net:127.0.0.1:{free_port()}")
    assert "connection refused" in w.last_error
    w.error_box.accept()
    w.open_stream("dv-net:nonsense")
    assert "sources are PATH" in w.last_error
    w.error_box.accept()


def test_simulated_gesture_stream_plays_live(qtbot, window):
    w = window
    with qtbot.waitSignal(w.streamOpened, timeout=WAIT):
        w.open_stream("sim:gesture:2")
    qtbot.waitUntil(lambda: w.frame is not None and w.live.buffer.n_total > 5_000, timeout=WAIT)
    assert w.frame.image.shape == (128, 128)
    w.stop_stream()
    qtbot.waitUntil(lambda: "ended" in w.live_bar.status.text(), timeout=WAIT)


def test_a_hanging_open_can_be_abandoned(qtbot, window, monkeypatch):
    """A file that hangs its decoder (h5py spinning on a corrupt foreign file) must not hold the window."""
    release = threading.Event()
    real_open = viewer.open_source

    def hanging(path, **kw):
        if "hangs" in str(path):
            release.wait(30)
        return real_open(bundled_sample(), **kw)

    monkeypatch.setattr(viewer, "open_source", hanging)
    w = window
    w.open_path("hangs.h5")
    assert w.cancel_button.isVisible()
    w.cancel_button.click()
    assert not w.cancel_button.isVisible() and not w.progress.isVisible()
    open_file(qtbot, w, bundled_sample())  # usable at once
    assert w.path == bundled_sample()
    release.set()  # the abandoned reader ends; its late result is closed, not shown
    assert QThreadPool.globalInstance().waitForDone(WAIT)
    assert w.path == bundled_sample() and np.any(w.image.image)


def test_a_hostile_pickle_runs_nothing_when_opened_or_dropped(qtbot, window, tmp_path):
    import os

    from test_safe_pickle import exploits, write_npy

    w = window
    marker = tmp_path / "PWNED"
    evil = write_npy(tmp_path / "evil.npy", exploits(marker)["os.system"])
    with qtbot.waitSignal(w.loadFailed, timeout=WAIT):
        w.open_path(evil)
    assert "refused to load posix.system" in w.last_error and "evil.npy" in w.last_error
    w.error_box.accept()
    assert not marker.exists() and not os.path.exists("PWNED")
