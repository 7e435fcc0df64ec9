"""The Classify tab: a source, a model and a device in; live decisions, probabilities and spikes out.

The model loads on a worker; the stream and the network run on a
:class:`ClassifySession` thread; a 30 Hz timer on the GUI thread only drains
its decisions and draws. A checkpoint that does not load shows a dialog and
the previous model stays; a source that ends or fails shows why, and the
window carries on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, QTimer, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from spikelens.app.elide import middle_elided
from spikelens.app.model_picker import ModelPicker
from spikelens.app.workers import Worker, WorkerPool
from spikelens.datasets.collections.dvs_gesture import labels_beside, read_labels
from spikelens.datasets.streams import parse_source
from spikelens.datasets.streams.sources import SYNTAX as SOURCE_SYNTAX
from spikelens.pipelines.extras import DEFAULT_CLASSIFIER as DEFAULT_MODEL

if TYPE_CHECKING:
    from spikelens.pipelines.classification import ClassifyResult
    from spikelens.pipelines.live_classify import ClassifySession

MAX_POINTS = 3000  # decisions kept on the timeline


def _not_a_classifier(model) -> str | None:
    ok = hasattr(model, "config") and hasattr(model.config, "classes")
    return None if ok else f"a {type(model).__name__}, not a classifier"


class ClassifyPanel(QWidget):
    #: decisions just drawn (a list of Decision), in stream order
    decided = pyqtSignal(list)

    def __init__(self, workers: WorkerPool, settings: QSettings) -> None:
        super().__init__()
        self.workers, self.settings = workers, settings
        self.session: ClassifySession | None = None
        self.score: ClassifyResult | None = None  # the last file scored
        self._score_worker: Worker | None = None
        self._times: list[float] = []
        self._classes: list[int] = []
        self._origin: int | None = None
        self._truth: list[tuple[int, int, int]] = []

        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.source = middle_elided(QComboBox(editable=True))
        self.source.setMinimumWidth(320)
        self.source.addItems(self._history())
        self.source.lineEdit().setPlaceholderText(SOURCE_SYNTAX)
        self.picker = ModelPicker(workers, settings, "classify", DEFAULT_MODEL, _not_a_classifier)
        self.picker.modelChanged.connect(self._loaded)
        self.start_button = QPushButton("Start")
        self.score_button = QPushButton("Score file")
        self.score_button.setToolTip("classify each labelled segment of the source file, as `spikelens classify`")
        row.addWidget(QLabel("Source"))
        row.addWidget(self.source)
        row.addWidget(self.picker)
        row.addWidget(self.start_button)
        row.addWidget(self.score_button)
        lay.addLayout(row)

        grid = QGridLayout()
        self.view = pg.GraphicsLayoutWidget()
        vb = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        vb.addItem(self.image)
        grid.addWidget(self.view, 0, 0)
        right = QVBoxLayout()
        self.label = QLabel("-")
        font = QFont()
        font.setPointSize(26)
        font.setBold(True)
        self.label.setFont(font)
        right.addWidget(self.label)
        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setXRange(0, 1)
        self.bars_plot.getViewBox().invertY(True)
        self.bars = pg.BarGraphItem(x0=0, y=[], height=0.7, width=[], brush=(64, 140, 220))
        self.bars_plot.addItem(self.bars)
        right.addWidget(self.bars_plot)
        grid.addLayout(right, 0, 1)
        self.timeline = pg.PlotWidget(title="decisions (dots) and labels (grey) against time, s")
        self.timeline.getViewBox().invertY(True)
        self.truth_curve = self.timeline.plot(pen=pg.mkPen((150, 150, 150), width=6), connect="pairs")
        self.dots = self.timeline.plot(pen=None, symbol="o", symbolSize=5, symbolBrush=(255, 170, 60))
        self.scored = self.timeline.plot(pen=None, symbol="s", symbolSize=12, symbolBrush=(80, 220, 120))
        grid.addWidget(self.timeline, 1, 0, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        lay.addLayout(grid)
        self.status = QLabel("pick a source and press Start")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.timer = QTimer(self, interval=33)
        self.timer.timeout.connect(self._poll)
        self.start_button.clicked.connect(self.toggle)
        self.score_button.clicked.connect(self.score_file)

    # -- model --------------------------------------------------------------------------------
    @property
    def model(self):
        return self.picker.model

    def _loaded(self, model, name: str) -> None:
        names = model.config.classes
        self.bars_plot.getAxis("left").setTicks([list(enumerate(names))])
        self.timeline.getAxis("left").setTicks([list(enumerate(names))])
        self.status.setText(f"model {name}: {len(names)} classes, window {model.config.window_us / 1e3:g} ms")

    # -- live ---------------------------------------------------------------------------------
    def _history(self) -> list[str]:
        value = self.settings.value("classify/sources", [])
        return [value] if isinstance(value, str) else list(value or [])

    def set_file(self, path: Path) -> None:
        """Offer the recording open in the viewer, replayed in real time."""
        text = f"file:{path}@1"
        if self.source.findText(text) < 0:
            self.source.insertItem(0, text)
        self.source.setCurrentText(text)

    def toggle(self) -> None:
        if self.session is not None and not self.session.done:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        text = self.source.currentText().strip()
        if self.model is None:
            self.status.setText("no model loaded yet")
            return
        try:
            spec = parse_source(text)
        except ValueError as exc:
            QMessageBox.warning(self, "Bad source", str(exc))
            return
        items = [text] + [h for h in self._history() if h != text]
        self.settings.setValue("classify/sources", items[:10])
        labels = labels_beside(spec.path) if spec.path is not None else None
        self._truth = read_labels(labels) if labels is not None else []
        self._times, self._classes, self._origin = [], [], None
        self.scored.setData([], [])
        from spikelens.pipelines.live_classify import ClassifySession  # torch: only once a model runs

        self.session = ClassifySession(text, self.model).start()
        self.start_button.setText("Stop")
        self.status.setText(f"classifying {text} ...")
        self.timer.start()

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()
        self._poll()

    def _poll(self) -> None:
        s = self.session
        if s is None:
            return
        decisions = s.take()
        if decisions:
            self._draw(decisions)
            self.decided.emit(list(decisions))
        if s.done:
            self.timer.stop()
            self.start_button.setText("Start")
            if s.error:
                self.status.setText(f"stream ended with an error: {s.error}")
            elif s.summary is not None:
                m = s.summary
                self.status.setText(
                    f"ended: {m.end_reason}; {m.decisions} decisions, {m.skipped} windows skipped, {m.events} events"
                )

    def _draw(self, decisions) -> None:
        cfg = self.model.config
        if self._origin is None:
            self._origin = decisions[0].t_us - cfg.window_us
            self._draw_truth()
        for d in decisions:
            self._times.append((d.t_us - self._origin) / 1e6)
            self._classes.append(d.cls)
        self._times, self._classes = self._times[-MAX_POINTS:], self._classes[-MAX_POINTS:]
        self.dots.setData(self._times, self._classes)
        d = decisions[-1]
        k = d.cls
        self.label.setText(f"{cfg.classes[k]}  {d.smoothed[k]:.2f}")
        self.bars.setOpts(y=np.arange(len(cfg.classes)), width=d.smoothed, x0=0)
        if d.frames is not None:
            on, off = d.frames[:, 0].sum(0), d.frames[:, 1].sum(0)
            rgb = np.zeros((*on.shape, 3), np.uint8)
            top = max(1.0, float(np.percentile(on + off, 99.5)))
            rgb[..., 0] = np.clip(on / top * 255, 0, 255)
            rgb[..., 2] = np.clip(off / top * 255, 0, 255)
            self.image.setImage(rgb, autoLevels=False)
        skipped = sum(x.skipped for x in decisions)
        text = f"latency {d.latency_ms:.1f} ms, network {d.net_ms:.1f} ms"
        if skipped:
            text += f", skipped {skipped} windows to keep up"
        if d.stats:
            spikes = ", ".join(f"{layer['name']} {layer['spikes']:.0f}" for layer in d.stats["layers"])
            e = d.stats["energy"]
            text += f" | spikes per window: {spikes} | energy {e['snn_uj']:.1f} uJ (ANN {e['ann_uj']:.1f} uJ)"
        self.status.setText(text)

    def _draw_truth(self) -> None:
        xs, ys = [], []
        for c, t0, t1 in self._truth:
            xs += [(t0 - self._origin) / 1e6, (t1 - self._origin) / 1e6]
            ys += [c, c]
        self.truth_curve.setData(xs, ys)

    # -- scoring a file ---------------------------------------------------------------------------
    def score_file(self) -> Worker | None:
        """``spikelens classify`` on the source's file, on a worker; the per-segment results join the timeline."""
        try:
            spec = parse_source(self.source.currentText().strip())
        except ValueError as exc:
            QMessageBox.warning(self, "Bad source", str(exc))
            return None
        if self._score_worker is not None:  # pressed again while scoring: Cancel
            self._score_worker.cancel()
            return None
        if spec.path is None or self.model is None:
            self.status.setText("scoring needs a recording file and a loaded model")
            return None
        from spikelens.pipelines.classification import classify_path  # torch: only once a model runs

        w = Worker.for_job(classify_path, spec.path, self.model)
        w.signals.result.connect(self._scored)
        w.signals.error.connect(lambda msg: QMessageBox.warning(self, "Cannot classify", msg))
        w.signals.progress.connect(lambda d, t, _m: self.status.setText(f"classifying {spec.path.name}: {d}/{t}"))
        w.signals.cancelled.connect(lambda: self.status.setText("scoring cancelled"))
        w.signals.finished.connect(self._score_finished)
        self.status.setText(f"classifying {spec.path.name} ...")
        self.score_button.setText("Cancel scoring")
        self._score_worker = self.workers.start(w)
        return self._score_worker

    def _score_finished(self) -> None:
        self._score_worker = None
        self.score_button.setText("Score file")

    def _scored(self, result: ClassifyResult) -> None:
        self.score = result
        if not result.labelled:
            self.label.setText(f"{result.label}  {result.probabilities[result.label]:.2f}")
            self.status.setText(f"whole recording: {result.label} ({result.net_ms:.0f} ms)")
            return
        report = result.score
        rows = report["segments"]
        if self._origin is None and rows:
            self._origin = rows[0]["t0"]
        self._truth = [(r["label"], r["t0"], r["t1"]) for r in rows]
        self._draw_truth()
        self.scored.setData(
            [((r["t0"] + r["t1"]) / 2 - self._origin) / 1e6 for r in rows], [r["predicted"] for r in rows]
        )
        self.status.setText(f"accuracy {report['accuracy']:.3f} on {report['n']} labelled segments (green squares)")
