"""The main window: viewer and SAI tabs, recording and display docks, menus, playback timer.

Playback is a QTimer tick on the GUI thread that only slices events already
in memory (or an indexed HDF5 window, or a live stream's ring buffer) and
bins them into a uint8 image shown through a fixed-level lookup table;
opening, refocusing, exporting and reading live streams run on other
threads. A failed open leaves the current recording untouched. Every time
shown is relative to the recording's first event (DV cameras stamp events
with Unix-epoch microseconds).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from spikelens.app.classify_panel import ClassifyPanel
from spikelens.app.display_controls import DisplayControls
from spikelens.app.live_bar import LiveBar
from spikelens.app.rate_plot import RatePlot
from spikelens.app.sai_panel import SAIPanel
from spikelens.app.stream_dialog import ask_source
from spikelens.app.transport import TransportBar
from spikelens.app.workers import Worker, WorkerPool
from spikelens.datasets.streams import open_stream, parse_source
from spikelens.pipelines import display_frames as fr
from spikelens.pipelines.convert import convert
from spikelens.pipelines.images import write_png
from spikelens.pipelines.spool import RATE_BIN_US
from spikelens.pipelines.video_export import export_video
from spikelens.pipelines.viewer import LiveTick, Loaded, ViewerSession, load

TICK_MS = 15
MAX_RECENT = 8
FILE_FILTER = "Event recordings (*.aedat *.aedat4 *.dat *.raw *.bin *.h5 *.hdf5 *.npy *.npz);;All files (*)"
#: a metadata value shows this many lines of this many characters; the tooltip holds all of it
META_LINES = 12
META_LINE = 100


class MainWindow(QMainWindow):
    recordingOpened = pyqtSignal(str)
    #: the first events of a file being read are on screen: its path
    previewShown = pyqtSignal(str)
    loadFailed = pyqtSignal(str)
    exportFinished = pyqtSignal(str)
    streamOpened = pyqtSignal(str)
    #: a live stream ended (sender closed, cut, or failed): the reason
    streamEnded = pyqtSignal(str)
    #: a live recording was closed: its path
    recordingSaved = pyqtSignal(str)

    def __init__(self) -> None:
        super().__init__()
        self.settings_store = QSettings()
        self.workers = WorkerPool()
        scheme = self.settings_store.value("display/scheme", "red_blue")
        #: the state and policy; this window renders it and sends it the user's intents
        self.session = ViewerSession(fr.FrameSettings(scheme=scheme if scheme in fr.SCHEMES else "red_blue"))
        self._last_rate_update = 0.0
        self.error_box: QMessageBox | None = None
        self.last_error: str | None = None
        self._loader: Worker | None = None
        self._fps_times: list[float] = []
        self._lut_key: tuple[str, bool] | None = None
        self._last_tick = time.perf_counter()

        self.setWindowTitle("SpikeLens")
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        self._build_viewer()
        self._build_docks()
        self._build_menus()
        self._build_status()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self._restore_layout()

    # -- construction -----------------------------------------------------------------------------
    def _build_viewer(self) -> None:
        self.tabs = QTabWidget()
        viewer = QWidget()
        lay = QVBoxLayout(viewer)
        lay.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setToolTip("Event frames. Scroll to zoom, drag to pan, right-drag to zoom an axis.")
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.roi: pg.RectROI | None = None
        self.rate_plot = RatePlot()
        self.rate_plot.seekRequested.connect(self.seek)
        self.transport = TransportBar()
        self.transport.playToggled.connect(lambda on: self.play() if on else self.pause())
        self.transport.stepRequested.connect(self.step)
        self.transport.jumpRequested.connect(lambda where: self.jump(where))
        self.transport.speedChanged.connect(self.set_speed)
        self.transport.loopChanged.connect(self._set_loop)
        self.live_bar = LiveBar()
        self.live_bar.freeze.toggled.connect(lambda _on: self.render_current())
        self.live_bar.record.toggled.connect(self._record_toggled)
        self.live_bar.stop.clicked.connect(self.stop_stream)
        self.live_bar.hide()
        lay.addWidget(self.view, 1)
        lay.addWidget(self.rate_plot)
        lay.addWidget(self.transport)
        lay.addWidget(self.live_bar)
        self.tabs.addTab(viewer, "Viewer")
        self.sai = SAIPanel(self.workers, self.settings_store)
        self.tabs.addTab(self.sai, "SAI")
        self.classify = ClassifyPanel(self.workers, self.settings_store)
        self.tabs.addTab(self.classify, "Classify")
        self.tabs.setTabToolTip(0, "Replay the recording")
        self.tabs.setTabToolTip(1, "Synthetic-aperture refocusing: see through occluders")
        self.tabs.setTabToolTip(2, "Classify gestures live from any source with a hybrid SNN-CNN")
        self.setCentralWidget(self.tabs)

    def _build_docks(self) -> None:
        self.meta_widget = QWidget()
        self.meta_form = QFormLayout(self.meta_widget)
        self.meta_widget.setToolTip("What the file says about itself")
        self.meta_dock = self._dock("Recording", self.meta_widget, "meta")
        self.controls = DisplayControls(self.session.settings)
        self.controls.settingsChanged.connect(self.set_frame_settings)
        self.controls.roiToggled.connect(self._toggle_roi)
        self.controls_dock = self._dock("Display", self.controls, "display")

    def _dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        a.triggered.connect(slot)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setStatusTip(tip or text)
        a.setToolTip(tip or text)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&Open...", self.open_dialog, QKeySequence.StandardKey.Open, "Open an event recording")
        self._action(
            m, "Open &stream...", self.open_stream_dialog, "Ctrl+L", "A DV camera, a DV network stream, a paced replay"
        )
        self.recent_menu = m.addMenu("Open &Recent")
        m.addSeparator()
        self.export_actions = [
            self._action(m, "Export frame as &PNG...", self.export_png_dialog, "Ctrl+E", "Save the current frame"),
            self._action(m, "Export range as &MP4...", self.export_video_dialog, "Ctrl+M", "Render a time range"),
            self._action(m, "Export recording as &HDF5...", self.export_h5_dialog, "Ctrl+H", "Convert losslessly"),
        ]
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.meta_dock.toggleViewAction())
        v.addAction(self.controls_dock.toggleViewAction())
        for key, slot in (
            ("Space", self.toggle_play),
            ("Right", lambda: self.step(1)),
            ("Left", lambda: self.step(-1)),
            ("Home", lambda: self.jump("start")),
            ("End", lambda: self.jump("end")),
        ):
            QShortcut(QKeySequence(key), self, slot, context=Qt.ShortcutContext.WindowShortcut)
        self._refresh_recent()
        self._set_enabled(False)

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.pos_label = QLabel("no recording")
        self.pos_label.setToolTip("Playback position / duration")
        self.rate_label = QLabel("")
        self.rate_label.setToolTip("Events per second of recording time in the frame on screen")
        self.fps_label = QLabel("")
        self.fps_label.setToolTip("Frames drawn per second of wall time")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setToolTip("Reading the recording")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop reading this file")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self._cancel_loading)
        for w in (self.pos_label, self.rate_label, self.fps_label):
            sb.addWidget(w)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    def _set_enabled(self, on: bool) -> None:
        for a in self.export_actions:
            a.setEnabled(on)
        self.transport.setEnabled(on)

    # -- settings ---------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geo = self.settings_store.value("window/geometry")
        state = self.settings_store.value("window/state")
        if geo is not None:
            self.restoreGeometry(geo)
        if state is not None:
            self.restoreState(state)

    def _history(self, key: str) -> list[str]:
        value = self.settings_store.value(key, [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember_in(self, key: str, item: str) -> None:
        items = [item] + [p for p in self._history(key) if p != item]
        self.settings_store.setValue(key, items[:MAX_RECENT])

    def _recent(self) -> list[str]:
        return self._history("recent")

    def _remember(self, path: Path) -> None:
        self._remember_in("recent", str(path))
        self.settings_store.setValue("last_folder", str(path.parent))
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self._recent():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    def closeEvent(self, event) -> None:
        self.timer.stop()
        self.classify.stop()
        self._close_current()
        self.settings_store.setValue("window/geometry", self.saveGeometry())
        self.settings_store.setValue("window/state", self.saveState())
        self.settings_store.setValue("display/scheme", self.session.settings.scheme)
        self.settings_store.sync()
        self.workers.shutdown()
        self.sai.background.shutdown()
        super().closeEvent(event)

    # -- opening ----------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        folder = self.settings_store.value("last_folder", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open recording", folder, FILE_FILTER)
        if path:
            self.open_path(path)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            self.open_path(files[0])

    def open_path(self, path: str | Path) -> None:
        """Start reading ``path`` in the background; the first events show as soon as they are decoded.

        Cancel abandons the reader at once (a file that hangs its decoder cannot hold the window).
        """
        path = Path(path)
        self._cancel_loading()
        w = Worker.for_job(load, path, first_packet=lambda ev, meta: w.signals.partial.emit((ev, meta)))

        def current() -> bool:
            return self._loader is w

        w.signals.partial.connect(lambda pm, p=path: current() and self._preview(p, *pm))
        w.signals.progress.connect(lambda n, _t, _m: current() and self.progress.setFormat(f"{n / 1e6:.1f} M events"))
        w.signals.result.connect(lambda loaded: self._opened(loaded) if current() else loaded.source.close())
        w.signals.error.connect(lambda msg, p=path: current() and self._open_failed(p, msg))
        w.signals.finished.connect(lambda: current() and self._loading_done())
        self._loader = w
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage(f"reading {path.name} ...", 3000)
        self.workers.start(w)

    def _cancel_loading(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
            self._loading_done()

    def _loading_done(self) -> None:
        self._loader = None
        self.progress.hide()
        self.cancel_button.hide()

    def _preview(self, path: Path, events: np.ndarray, meta) -> None:
        """A preview while the rest loads: only when nothing else is on screen."""
        frame = self.session.preview(events, meta)
        if frame is not None:
            self._show(frame)
            self.setWindowTitle(f"{path.name} (loading) - SpikeLens")
            self.previewShown.emit(str(path))

    def _close_current(self) -> None:
        """Let go of the open recording or live stream (a recording in progress is finished first)."""
        self.pause()
        self._report_saved(self.session.close())
        self.live_bar.hide()
        self.transport.show()

    def _opened(self, loaded: Loaded) -> None:
        self._close_current()
        self.session.open_file(loaded)
        path, m = loaded.path, loaded.source.meta
        self.setWindowTitle(f"{path.name} [{m.format}, {m.width}x{m.height}] - SpikeLens")
        self.statusBar().showMessage(f"opened {path.name}", 4000)  # replaces "reading ...": it has loaded
        self._fill_meta_rows(self.session.info_rows())
        self.rate_plot.set_origin(loaded.source.t_start_us)
        self.rate_plot.set_rate(loaded.source.t_start_us, RATE_BIN_US, loaded.source.rate_hz)
        self.viewbox.setRange(xRange=(0, m.width), yRange=(0, m.height), padding=0.02)
        if self.roi is not None:
            self.controls.roi.setChecked(False)
        self._set_enabled(True)
        self._remember(path)
        self._setup_sai()
        self.classify.set_file(path)
        self.render_current()
        self.recordingOpened.emit(str(path))

    def _setup_sai(self) -> None:
        offer = self.session.sai
        if offer.scene is None:
            self.sai.setEnabled(False)
            self.sai.status.setText(offer.why_not)
            self.tabs.setTabText(1, "SAI")
            return
        self.sai.set_recording(offer.events, offer.scene)
        self.tabs.setTabText(1, "SAI ●" if offer.scene.has_geometry else "SAI")

    def _fill_meta_rows(self, rows: list[tuple[str, str]]) -> None:
        while self.meta_form.rowCount():
            self.meta_form.removeRow(0)
        for key, value in rows:
            lines = value.splitlines() or [""]
            shown = "\n".join(
                ln if len(ln) <= META_LINE else ln[: META_LINE - 1] + "\u2026" for ln in lines[:META_LINES]
            )
            if len(lines) > META_LINES:
                shown += f"\n\u2026 ({len(lines) - META_LINES} more lines: hover to read them all)"
            label = QLabel(shown)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if shown != value:
                label.setToolTip(value[:20_000])  # every line of a long header, whole
            self.meta_form.addRow(key, label)

    def _open_failed(self, path: Path, message: str) -> None:
        self.statusBar().clearMessage()  # no "reading ..." or "connecting ..." left behind
        self.show_error("Cannot open recording", f"{path}\n\n{message}")
        self.loadFailed.emit(str(path))

    def show_error(self, title: str, text: str) -> None:
        """A window-modal dialog that does not block the event loop (workers and tests keep running)."""
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box

    # -- live streams -----------------------------------------------------------------------------
    def open_stream_dialog(self) -> None:
        history = self._history("stream_history")
        text = ask_source(self, history)
        if text:
            self.open_stream(text)

    def open_stream(self, text: str) -> None:
        """Open a source string; a plain path opens as a file, everything else plays live."""
        try:
            spec = parse_source(text)
        except ValueError as exc:
            self.show_error("Cannot open stream", str(exc))
            return
        if spec.kind == "path":
            self.open_path(spec.path)
            return
        self._remember_in("stream_history", text)
        w = Worker(open_stream, spec)  # connecting can take a moment: never on the GUI thread
        w.signals.result.connect(lambda stream, t=text: self.view_stream(t, stream))
        w.signals.error.connect(lambda msg, t=text: self._open_failed(t, msg))
        self.statusBar().showMessage(f"connecting to {text} ...", 3000)
        self.workers.start(w)

    def view_stream(self, text: str, stream) -> None:
        """Show an open event stream live (what opening a source ends in; a benchmark may pass its own)."""
        self._close_current()
        self.session.open_stream(text, stream)
        m = stream.meta
        self.setWindowTitle(f"{text} [live, {m.width}x{m.height}] - SpikeLens")
        self.statusBar().showMessage(f"streaming {text}", 4000)  # replaces "connecting ...": it is live
        self._fill_meta_rows(self.session.info_rows())
        self.viewbox.setRange(xRange=(0, m.width), yRange=(0, m.height), padding=0.02)
        self.transport.hide()
        self.live_bar.reset(text)
        self.live_bar.show()
        for a in self.export_actions:
            a.setEnabled(a is self.export_actions[0])
        self._setup_sai()
        self.timer.start()
        self.streamOpened.emit(text)

    def stop_stream(self) -> None:
        if self.session.live is not None:
            self.session.stop_stream()
            self._live_tick()

    def _record_toggled(self, on: bool) -> None:
        if self.session.live is None:
            return
        if on and not self.session.recording:
            folder = Path(self.settings_store.value("last_folder", str(Path.home())))
            path, _ = QFileDialog.getSaveFileName(self, "Record to", str(folder / "live.h5"), "SpikeLens HDF5 (*.h5)")
            if not path:
                self.live_bar.set_recording(False)
                return
            self.start_recording(path)
        elif not on and self.session.recording:
            self.session.stop_recording()

    def start_recording(self, path: str | Path) -> None:
        """Record the live stream to ``path`` through the same recorder as `spikelens record`."""
        if self.session.live is None:
            return
        try:
            self.session.start_recording(path)
        except (ValueError, OSError, RuntimeError) as exc:
            self.live_bar.set_recording(False)
            self.show_error("Cannot record", f"{path}\n\n{exc}")
            return
        self.live_bar.set_recording(True)

    def stop_recording(self) -> None:
        self.session.stop_recording()

    def _report_saved(self, stats) -> None:
        if stats is not None:
            self.live_bar.set_recording(False)
            self.statusBar().showMessage(f"recorded {stats.events:,} events to {stats.path}", 6000)
            self.recordingSaved.emit(str(stats.path))

    def _live_tick(self) -> None:
        now = time.perf_counter()
        with_rates = now - self._last_rate_update > 0.2
        tick: LiveTick | None = self.session.live_tick(self.live_bar.frozen, with_rates)
        if tick is None:
            return
        self._report_saved(tick.saved)
        buf = self.session.live.buffer
        if buf.t_first_us is not None:
            self.rate_plot.set_origin(buf.t_first_us)
        if tick.frame is not None:
            self._show(tick.frame)
            self.pos_label.setText(self.session.position_text(self.live_bar.frozen))
        if tick.rates is not None:
            self._last_rate_update = now
            self.rate_plot.set_rate(tick.rates[0], RATE_BIN_US, tick.rates[1])
            self.rate_plot.set_position(buf.t_last_us)
        self.live_bar.show_status(tick.n_total, tick.recording)
        if tick.ended is not None:
            self.live_bar.ended(tick.ended)
            self.statusBar().showMessage(f"stream ended: {tick.ended}", 10_000)
            self.streamEnded.emit(tick.ended)

    # -- playback ---------------------------------------------------------------------------------
    def play(self) -> None:
        if self.session.play():
            self._last_tick = time.perf_counter()
            self.timer.start()
            self.transport.set_playing(True)

    def pause(self) -> None:
        self.session.pause()
        if self.session.live is None:
            self.timer.stop()
        self.transport.set_playing(False)

    def toggle_play(self) -> None:
        self.pause() if self.session.playing else self.play()

    def seek(self, t_us: int) -> None:
        self._show_current(self.session.seek(t_us))

    def step(self, frames: int) -> None:
        if self.session.clock is not None:
            self.pause()
            self._show_current(self.session.step(frames))

    def jump(self, where: str) -> None:
        self._show_current(self.session.jump(where))

    def set_speed(self, speed: float | None) -> None:
        self.session.set_speed(speed)
        self.transport.set_speed(speed)

    def _set_loop(self, on: bool) -> None:
        self.session.set_loop(on)

    def set_frame_settings(self, settings: fr.FrameSettings) -> None:
        self.session.set_settings(settings)
        self.render_current()

    def _tick(self) -> None:
        now = time.perf_counter()
        wall, self._last_tick = now - self._last_tick, now
        if self.session.live is not None:
            self._live_tick()
            return
        frame = self.session.tick(wall)
        if not self.session.playing:
            self.pause()
        self._show_current(frame)

    def render_current(self) -> None:
        self._show_current(self.session.render())

    def _show_current(self, frame: fr.Frame | None) -> None:
        if frame is None:
            return
        self._show(frame)
        self.pos_label.setText(self.session.position_text(self.live_bar.frozen))
        if self.session.live is None and self.session.clock is not None:
            self.rate_plot.set_position(self.session.clock.position_us)

    def _show(self, frame: fr.Frame) -> None:
        self.display_image(frame.image)
        now = time.perf_counter()
        self._fps_times = [t for t in self._fps_times if now - t < 1.0] + [now]
        span = max(frame.t1_us - frame.t0_us, 1)
        self.rate_label.setText(f"{frame.n_events / span:.2f} M ev/s shown")
        self.fps_label.setText(f"{len(self._fps_times)} fps")

    def display_image(self, image: np.ndarray) -> None:
        """The fast path: uint8 levels, fixed levels, and a lookup table set only when it changes."""
        s = self.session.settings
        key = (s.scheme, fr.is_signed(s.mode))
        if key != self._lut_key:
            self.image.setLookupTable(fr.lut(*key))
            self._lut_key = key
        self.image.setImage(image, autoLevels=False, levels=(0, 255))

    # -- what the session shows, for the panels, exports and tests that read it ---------------------
    @property
    def frames_rendered(self) -> int:
        return self.session.frames_rendered

    @property
    def frame(self) -> fr.Frame | None:
        return self.session.frame

    @property
    def frame_settings(self) -> fr.FrameSettings:
        return self.session.settings

    @property
    def source(self):
        return self.session.source

    @property
    def clock(self):
        return self.session.clock

    @property
    def live(self):
        return self.session.live

    @property
    def path(self) -> Path | None:
        return self.session.path

    # -- ROI --------------------------------------------------------------------------------------
    def _toggle_roi(self, on: bool) -> None:
        if on and self.source is not None:
            w, h = self.source.sensor
            self.roi = pg.RectROI([w / 4, h / 4], [w / 2, h / 2], pen=pg.mkPen("#ffd54f", width=2))
            self.roi.setToolTip("Drag to move, handle to resize: only events inside are shown")
            self.roi.sigRegionChangeFinished.connect(self._roi_moved)
            self.viewbox.addItem(self.roi)
            self._roi_moved()
        else:
            if self.roi is not None:
                self.viewbox.removeItem(self.roi)
                self.roi = None
            self.session.set_roi(None)
            self.render_current()

    def _roi_moved(self) -> None:
        if self.roi is None:
            return
        x, y = (round(v) for v in self.roi.pos())
        w, h = (max(1, round(v)) for v in self.roi.size())
        self.session.set_roi((y, x, h, w))
        self.render_current()

    # -- export -----------------------------------------------------------------------------------
    def _ask_save(self, title: str, suffix: str, filt: str) -> str:
        folder = Path(self.settings_store.value("last_folder", str(Path.home())))
        stem = self.path.stem if self.path else "spikelens"
        path, _ = QFileDialog.getSaveFileName(self, title, str(folder / f"{stem}{suffix}"), filt)
        return path

    def export_png_dialog(self) -> None:
        path = self._ask_save("Export frame", ".png", "PNG image (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str | Path) -> None:
        if self.frame is None:
            return
        try:
            write_png(fr.to_rgb(self.frame.image, self.frame_settings), path)
        except (OSError, ValueError) as exc:
            self.show_error("Export failed", f"{path}\n\n{exc}")
            return
        self.statusBar().showMessage(f"saved {path}", 4000)
        self.exportFinished.emit(str(path))

    def export_video_dialog(self) -> None:
        if self.clock is None:
            return
        path = self._ask_save("Export video", ".mp4", "MP4 video (*.mp4)")
        if path:
            c = self.clock
            self.export_video(path, c.t_start_us, c.t_end_us)

    def export_video(self, path: str | Path, t0_us: int, t1_us: int, fps: float = 30.0) -> Worker | None:
        builder = self.session.builder
        if builder is None:
            return None
        speed = self.session.speed or 1.0
        w = Worker.for_job(export_video, builder, self.session.settings, path, t0_us, t1_us, fps, speed)
        return self._run_export(w, path, "Rendering video")

    def export_h5_dialog(self) -> None:
        path = self._ask_save("Export HDF5", ".h5", "SpikeLens HDF5 (*.h5)")
        if path and self.path is not None:
            self.export_h5(path)

    def export_h5(self, path: str | Path) -> Worker | None:
        if self.path is None or self.source is None:
            return None
        w = Worker.for_job(convert, self.path, path, total=self.source.n_events)
        return self._run_export(w, path, "Writing HDF5")

    def _run_export(self, w: Worker, path, label: str) -> Worker:
        dialog = QProgressDialog(f"{label}: {Path(path).name}", "Cancel", 0, 100, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        dialog.canceled.connect(w.cancel)
        w.signals.progress.connect(lambda d, t, _m: dialog.setValue(int(100 * d / t) if t > 0 else 0))
        w.signals.result.connect(lambda _r: self.exportFinished.emit(str(path)))
        w.signals.result.connect(lambda _r: self.statusBar().showMessage(f"saved {path}", 4000))
        w.signals.error.connect(lambda msg: self.show_error("Export failed", f"{path}\n\n{msg}"))
        w.signals.cancelled.connect(lambda: self.statusBar().showMessage("export cancelled", 4000))
        w.signals.finished.connect(dialog.reset)
        w.signals.finished.connect(dialog.deleteLater)
        self.export_dialog = dialog
        return self.workers.start(w)
