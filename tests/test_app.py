"""The desktop app under pytest-qt (offscreen). Qt warnings fail a test (qt_log_level_fail in pyproject)."""

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6")  # the GUI is an extra; these tests run wherever it is installed (CI does)

from PyQt6.QtCore import Qt, QThreadPool

from spikelens.datasets import open_recording
from spikelens.datasets.bundled import bundled_sample
from spikelens.refocus import AutofocusResult

from helpers import WAIT, make_window, open_file


def test_open_play_seek_speed_and_modes(qtbot, window):
    w = window
    open_file(qtbot, w, bundled_sample())
    assert w.statusBar().currentMessage().startswith("opened ")  # not a stale "reading ..."
    assert "rotating_bar.h5" in w.windowTitle() and "128x128" in w.windowTitle()
    assert w.source.n_events == 80_000
    labels = [
        w.meta_form.itemAt(i, w.meta_form.ItemRole.FieldRole).widget().text() for i in range(w.meta_form.rowCount())
    ]
    assert "hdf5" in labels and "80,000" in labels
    n0 = w.frames_rendered
    w.play()
    qtbot.waitUntil(lambda: w.frames_rendered >= n0 + 5, timeout=WAIT)
    w.pause()
    assert w.clock.position_us > w.clock.t_start_us and "fps" in w.fps_label.text()
    w.seek(500_000)
    assert w.clock.position_us == 500_000 and w.rate_plot.cursor.value() == pytest.approx(0.5)
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.clock.position_us == 500_000 + w.frame_settings.window_us
    qtbot.keyClick(w, Qt.Key.Key_Home)
    assert w.clock.position_us == w.clock.t_start_us
    w.set_speed(None)
    assert w.transport.speed.currentData() is None
    w.set_speed(100.0)
    w.play()
    qtbot.waitUntil(lambda: not w.clock.playing, timeout=WAIT)  # 100x reaches the end and stops
    assert w.clock.position_us == w.clock.t_end_us
    w.seek(500_000)
    before = w.image.image.copy()
    w.controls.set_value(mode="time_surface")
    assert w.frame_settings.mode == "time_surface" and not np.array_equal(before, w.image.image)
    w.controls.set_value(scheme="colormap")
    assert w.image.lut.shape == (256, 3)


def test_roi_and_filters(qtbot, window):
    w = window
    open_file(qtbot, w, bundled_sample())
    w.seek(400_000)
    full = w.frame.n_events
    w.controls.roi.setChecked(True)
    assert w.frame_settings.roi is not None and 0 < w.frame.n_events < full
    w.controls.roi.setChecked(False)
    assert w.frame_settings.roi is None and w.frame.n_events == full
    w.controls.denoise.setChecked(True)
    assert w.frame.n_events < full


def test_sai_view_slider_and_autofocus(qtbot, window, sai_file):
    w = window
    open_file(qtbot, w, sai_file)
    sai = w.sai
    assert sai.isEnabled() and sai.fx.value() == 320.0
    qtbot.waitUntil(lambda: sai.stack_ready, timeout=WAIT)
    with qtbot.waitSignal(sai.depthShown, timeout=WAIT):
        sai.slider.setValue(300)
    assert sai.depth == pytest.approx(float(sai.depth_grid()[300]))
    assert sai.depth_box.value() == pytest.approx(sai.depth, abs=1e-3)
    assert sai.images.items[1].image is not None and sai.images.items[3].image.shape == (64, 96)
    sai.autofocus_button.click()
    qtbot.waitUntil(lambda: sai.autofocus_result is not None, timeout=WAIT)
    r = sai.autofocus_result
    assert sai.depth == pytest.approx(r.depth) and sai.curve.getData()[0].size == r.depths.size
    assert sai.best.value() == pytest.approx(r.depth)
    assert sai.occluder_line.isVisible() == (r.occluder_depth is not None)
    qtbot.waitUntil(lambda: sai.autofocus_button.isEnabled(), timeout=WAIT)


def test_sai_view_marks_the_target_and_the_occluder(qtbot, window, sai_file):
    """Both peaks on the plot, both depths in the status line, focus on the target."""
    sai = window.sai
    open_file(qtbot, window, sai_file)
    assert not sai.best.isVisible()  # no "target" on the plot before autofocus has found one
    depths = np.linspace(0.2, 2.0, 50)
    found = AutofocusResult(
        depth=1.1,
        rate=320 * 0.177 / 1.1,
        depths=depths,
        scores=np.exp(-(((depths - 0.4) / 0.02) ** 2)),
        occluder_depth=0.4,
        occluder_rate=320 * 0.177 / 0.4,
        behind_depths=depths[depths > 0.47],
        behind_scores=np.exp(-(((depths[depths > 0.47] - 1.1) / 0.03) ** 2)),
    )
    sai.show_autofocus(found)
    assert sai.depth == pytest.approx(1.1) and sai.best.value() == pytest.approx(1.1) and sai.best.isVisible()
    assert sai.occluder_line.isVisible() and sai.occluder_line.value() == pytest.approx(0.4)
    assert sai.behind_curve.getData()[0].size == found.behind_depths.size
    assert "target at 1.100 m" in sai.status.text() and "occluder at 0.400 m" in sai.status.text()
    sai.show_autofocus(AutofocusResult(0.9, 60.0, depths, np.zeros(50)))
    assert not sai.occluder_line.isVisible() and "one plane, at 0.900 m" in sai.status.text()


def test_sai_images_share_the_width_whatever_their_titles(qtbot):
    """A long title (a reconstruction's PSNR, a depth) once widened its own column."""
    from spikelens.app.sai_panel import ImagePanel

    panel = ImagePanel(["unfocused", "refocused at 0.696 m, a long title", "reconstruction (15.90 dB) and more", "gt"])
    qtbot.addWidget(panel)
    panel.resize(1200, 300)
    panel.show()
    for k in range(4):
        panel.show_image(k, np.zeros((260, 346), np.uint8))
    panel.set_title(3, "ground truth, now much longer than it was")
    qtbot.wait(50)
    widths = [vb.sceneBoundingRect().width() for vb in panel.boxes]
    assert max(widths) - min(widths) < 2, widths


def test_exports(qtbot, window, tmp_path):
    w = window
    open_file(qtbot, w, bundled_sample())
    w.seek(300_000)
    with qtbot.waitSignal(w.exportFinished, timeout=WAIT):
        w.export_png(tmp_path / "frame.png")
    assert cv2.imread(str(tmp_path / "frame.png")).shape == (128, 128, 3)
    with qtbot.waitSignal(w.exportFinished, timeout=WAIT):
        w.export_video(tmp_path / "clip.mp4", 0, 500_000)
    cap = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 15
    cap.release()
    with qtbot.waitSignal(w.exportFinished, timeout=WAIT):
        w.export_h5(tmp_path / "copy.h5")
    with open_recording(tmp_path / "copy.h5") as a, open_recording(bundled_sample()) as b:
        np.testing.assert_array_equal(a.load(), b.load())


def test_corrupt_file_shows_a_dialog_and_keeps_the_recording(qtbot, window, tmp_path):
    w = window
    open_file(qtbot, w, bundled_sample())
    bad = tmp_path / "broken.aedat4"
    bad.write_bytes(b"#!AER-DAT4.0\r\n" + b"\xff" * 64)
    with qtbot.waitSignal(w.loadFailed, timeout=WAIT):
        w.open_path(bad)
    assert w.error_box is not None and w.error_box.isVisible()
    assert "broken.aedat4" in w.error_box.text()
    assert w.source is not None and w.path == bundled_sample() and "rotating_bar" in w.windowTitle()
    w.error_box.accept()
    with qtbot.waitSignal(w.loadFailed, timeout=WAIT):
        w.open_path(tmp_path / "missing.h5")
    assert "missing.h5" in w.last_error
    w.error_box.accept()


def test_settings_persist(qtbot, settings_dir):
    w = make_window(qtbot)
    open_file(qtbot, w, bundled_sample())
    w.controls.set_value(scheme="grey")
    w.close()
    assert QThreadPool.globalInstance().waitForDone(WAIT)
    again = make_window(qtbot)
    assert again.frame_settings.scheme == "grey"
    assert again._recent() == [str(bundled_sample())]
    assert again.recent_menu.actions()[0].text() == str(bundled_sample())
    again.close()


def test_a_long_header_is_shown_whole_or_said_to_be_longer(qtbot, window, tmp_path):
    """An AEDAT 3.1 header's lines are shown as lines (not cut at 60 characters), and a header longer than
    the panel says so and holds every line in its tooltip."""
    from PyQt6.QtWidgets import QLabel

    from spikelens.datasets.formats.aedat3 import Aedat31Writer
    from spikelens.datasets.patterns import random_events

    path = tmp_path / "g.aedat"
    with Aedat31Writer(path) as wr:
        wr.append(random_events(2000, 128, 128, seed=2))
    open_file(qtbot, window, path)
    form = window.meta_form
    texts = {
        form.itemAt(i, form.ItemRole.LabelRole).widget().text(): form.itemAt(i, form.ItemRole.FieldRole).widget()
        for i in range(form.rowCount())
    }
    label = texts["header"]
    assert isinstance(label, QLabel)
    header = window.source.meta.extra["header"]
    first_lines = header.splitlines()[:3]
    assert all(line in label.text() for line in first_lines)
    assert "Start-Time" not in header or any("Start-Time" in ln and ln in label.text() for ln in header.splitlines())


def test_autofocus_cancel_stops_the_sweep(qtbot, window, sai_file, monkeypatch):
    """Pressed again while it runs, Autofocus cancels: the job stops and no result is applied."""
    import time

    from spikelens.app import sai_panel

    def slow(events, scene, job):
        for _ in range(1000):
            job.check()
            time.sleep(0.01)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(sai_panel, "autofocus", slow)
    sai = window.sai
    open_file(qtbot, window, sai_file)
    qtbot.waitUntil(lambda: sai.stack_ready, timeout=WAIT)  # its status line comes first
    sai.autofocus_button.click()
    assert sai.autofocusing and sai.autofocus_button.text() == "Cancel"
    sai.autofocus_button.click()
    qtbot.waitUntil(lambda: not sai.autofocusing, timeout=WAIT)
    assert sai.autofocus_result is None and sai.autofocus_button.text() == "Autofocus"
    assert sai.status.text() == "autofocus cancelled"
