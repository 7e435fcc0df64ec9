"""The Classify tab under pytest-qt: the same decisions as the command line, a live DV stream cut mid-way,
a bad checkpoint, and a device list that knows when CUDA is absent."""

import pytest

pytest.importorskip("PyQt6")

import torch
from PyQt6.QtCore import QThreadPool

from spikelens.datasets import SensorSize
from spikelens.datasets.detect import open_recording
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.classification import classify_path
from spikelens.pipelines.classify_windows import classify_offline

from helpers import WAIT, DvSender, make_window


@pytest.fixture
def gesture_file(gesture_dataset):
    return gesture_dataset[1]


def wait_model(qtbot, panel):
    qtbot.waitUntil(lambda: panel.model is not None, timeout=WAIT)


def run_to_end(qtbot, panel, timeout=WAIT * 3):
    seen = []
    panel.decided.connect(seen.extend)
    panel.start()
    qtbot.waitUntil(lambda: panel.session.done and not panel.timer.isActive(), timeout=timeout)
    return seen


@pytest.mark.slow
def test_classify_tab_decides_as_the_command_line(qtbot, window, gesture_file):
    """A recording read as fast as it goes: every window's decision is the offline one, and Score file
    reports what `spikelens classify` reports."""
    w = window
    panel = w.classify
    wait_model(qtbot, panel)
    panel.source.setCurrentText(str(gesture_file))
    seen = run_to_end(qtbot, panel)
    with open_recording(gesture_file) as rec:
        ev, sensor = rec.load(), SensorSize.of(rec.meta)
    ends, probs = classify_offline(load_model("gesture", "cpu"), ev, sensor, 100_000)
    assert [d.t_us for d in seen] == ends.tolist()
    assert [d.window_class for d in seen] == probs.argmax(axis=1).tolist()
    assert "ended" in panel.status.text() and panel.start_button.text() == "Start"
    assert seen[-1].stats["energy"]["snn_uj"] > 0 and len(seen[-1].stats["layers"]) >= 3
    assert panel.label.text().split()[0] in panel.model.config.classes
    panel.score_file()
    qtbot.waitUntil(lambda: panel.score is not None, timeout=WAIT)
    want = classify_path(gesture_file, "gesture", "cpu").score
    got = panel.score.score
    assert [r["predicted"] for r in got["segments"]] == [r["predicted"] for r in want["segments"]]
    assert got["accuracy"] == want["accuracy"] and f"accuracy {want['accuracy']:.3f}" in panel.status.text()


@pytest.mark.slow
def test_classify_tab_over_a_dv_network_stream_survives_the_sender_cut(qtbot, window, gesture_file):
    panel = window.classify
    wait_model(qtbot, panel)
    sender = DvSender(gesture_file, speed=4.0, cut_after=200)
    try:
        panel.source.setCurrentText(sender.source)
        seen = run_to_end(qtbot, panel)
        n_sent = sender.sent()
    finally:
        sender.close()
    assert seen and panel.session.summary.events == n_sent
    assert "closed the connection" in panel.status.text()
    assert window.isVisible() and panel.start_button.isEnabled()


def test_a_bad_checkpoint_shows_a_dialog_and_keeps_the_model(qtbot, window, tmp_path):
    panel = window.classify
    wait_model(qtbot, panel)
    before = panel.model
    shown = []
    panel.picker.loadFailed.connect(shown.append)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint at all")
    worker = panel.picker.load(str(bad))
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=WAIT)
    assert worker.done.wait(5)
    assert "not a SpikeLens or E-SAI checkpoint (a text file)" in shown[0] and panel.model is before
    assert panel.picker.model_box.currentText() == "gesture"
    recon = tmp_path / "recon.pt"  # a real checkpoint, but of a reconstruction network
    from spikelens.hybrid_net.registry import save_model
    from spikelens.pipelines.reconstruction import build_model

    save_model(build_model("hybridlite"), recon)
    panel.picker.load(str(recon))
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=WAIT)
    assert "not a classifier" in shown[1] and panel.model is before


def test_device_list_and_settings_persist(qtbot, settings_dir):
    w = make_window(qtbot)
    panel = w.classify
    wait_model(qtbot, panel)
    box = panel.picker.device_box
    names = [box.itemText(i) for i in range(box.count())]
    cuda_item = box.model().item(2)
    assert names[:2] == ["auto", "cpu"]
    assert cuda_item.isEnabled() == torch.cuda.is_available()
    assert ("not available" in names[2]) != torch.cuda.is_available()
    panel.source.setCurrentText("sim:gesture:5")
    panel.start()
    qtbot.waitUntil(lambda: panel.session is not None, timeout=WAIT)
    panel.stop()
    w.close()
    assert QThreadPool.globalInstance().waitForDone(WAIT)
    again = make_window(qtbot)
    assert again.classify.source.itemText(0) == "sim:gesture:5"
    wait_model(qtbot, again.classify)
    assert again.classify.picker.model_box.currentText() == "gesture"
    again.close()
    assert QThreadPool.globalInstance().waitForDone(WAIT)


def test_a_long_source_path_is_elided_in_the_middle(qtbot, window):
    """Unfocused, the source box shows both the start of the path and the file name, with "…" between; the
    text itself (what Start reads) and the tooltip stay whole."""
    panel = window.classify
    path = "/data/recordings/" + "deep/" * 30 + "user07_fluorescent_led.aedat"
    panel.source.setCurrentText(path)
    window.resize(1100, 700)
    window.show()
    window.tabs.setCurrentWidget(panel)
    edit = panel.source.lineEdit()
    qtbot.waitUntil(lambda: edit.width() > 250, timeout=WAIT)
    shown = edit.shown_text()
    assert "…" in shown and shown.startswith("/data/") and shown.endswith("led.aedat")
    assert edit.text() == path and panel.source.currentText() == path and edit.toolTip() == path
    edit.repaint()  # the eliding paint path runs without error
    panel.source.setCurrentText("sim:gesture")
    assert edit.shown_text() == "sim:gesture"
