"""The SAI view: refocus by depth with a slider, autofocus, and the unfocused / refocused / ground-truth images.

Dragging the slider shows the nearest slice of a focal stack computed in the
background (instant), then the exact refocus at that depth replaces it when
the slider rests. All computation is on workers; the newest request wins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from spikelens.app.model_picker import ModelPicker
from spikelens.app.workers import Worker, WorkerPool
from spikelens.datasets.sai_scene import ESAI_FX, ESAI_V, VIEW_DEPTHS, SAIScene
from spikelens.pipelines.extras import DEFAULT_RECONSTRUCTOR
from spikelens.pipelines.images import write_png
from spikelens.pipelines.sai_view import (
    ReconstructView,
    depth_grid,
    reconstructed,
    refocused,
    stack,
)
from spikelens.refocus import CheckedEvents, autofocus

SLIDER_STEPS = 1000
RECON, GT = 2, 3  # image panel columns
GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


class _Title(pg.LabelItem):
    """A column title that asks for its text's height only: a long title must not widen its image."""

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)
        for hint in (Qt.SizeHint.MinimumSize, Qt.SizeHint.PreferredSize):
            self._sizeHint[hint] = (0, self._sizeHint[hint][1])
        self.updateGeometry()


class ImagePanel(pg.GraphicsLayoutWidget):
    """Side-by-side grey images with titles, each framed on the sensor."""

    def __init__(self, titles: list[str]) -> None:
        super().__init__()
        self.items: list[pg.ImageItem] = []
        self.labels: list[pg.LabelItem] = []
        self.boxes: list[pg.ViewBox] = []
        for col, title in enumerate(titles):
            label = _Title(title)
            self.addItem(label, row=0, col=col)
            self.ci.layout.setColumnStretchFactor(col, 1)
            self.labels.append(label)
            vb = self.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem(axisOrder="row-major")
            item.setLookupTable(GREY)
            vb.addItem(item)
            self.boxes.append(vb)
            self.items.append(item)

    def set_size(self, height: int, width: int) -> None:
        for vb in self.boxes:
            vb.setRange(xRange=(0, width), yRange=(0, height), padding=0.02)

    def show_image(self, k: int, img: np.ndarray | None) -> None:
        if img is None:
            self.items[k].clear()
        else:
            self.items[k].setImage(img, autoLevels=False, levels=(0, 255))

    def set_title(self, k: int, text: str) -> None:
        self.labels[k].setText(text)


def _not_a_reconstructor(model) -> str | None:
    return f"a {type(model).__name__}, not a reconstruction network" if hasattr(model.config, "classes") else None


def figure(panels: list[tuple[np.ndarray, str]], pad: int = 8, band: int = 28) -> np.ndarray:
    """Grey images side by side on white, each under its title (RGB uint8)."""
    import cv2

    h = max(img.shape[0] for img, _ in panels)
    tiles = []
    for img, title in panels:
        tile = np.full((h + band, img.shape[1] + 2 * pad, 3), 255, np.uint8)
        grey = img if img.dtype == np.uint8 else np.clip(img, 0, 255).astype(np.uint8)
        tile[band : band + img.shape[0], pad : pad + img.shape[1]] = grey[..., None] if grey.ndim == 2 else grey
        cv2.putText(tile, title[:60], (pad, band - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


class SAIPanel(QWidget):
    depthShown = pyqtSignal(float)
    #: a reconstruction is on screen (its ReconstructView)
    reconstructed = pyqtSignal(object)

    def __init__(self, workers: WorkerPool, settings: QSettings) -> None:
        super().__init__()
        self.workers = workers
        #: reconstructions run at lower priority: the view and live classification come first
        self.background = WorkerPool(background=True)
        self.reconstruction: ReconstructView | None = None
        self._recon_worker: Worker | None = None
        self._autofocus_worker: Worker | None = None
        self._recon_key: tuple | None = None
        #: the geometry in use (the file's, or what the user applied); None until there is one
        self.scene: SAIScene | None = None
        self._file_scene: SAIScene | None = None
        self._events: CheckedEvents | None = None
        self._stack: tuple[np.ndarray, np.ndarray] | None = None
        self._stack_worker: Worker | None = None
        self.autofocus_result = None
        self.depth = 1.0

        lay = QVBoxLayout(self)
        form = QFormLayout()
        geo_row = QHBoxLayout()
        self.fx = self._spin(QDoubleSpinBox(), 1, 5000, ESAI_FX, " px", "Focal length fx in pixels")
        self.v = self._spin(QDoubleSpinBox(), 0.001, 100, ESAI_V, " m/s", "Camera speed along +x")
        self.v.setDecimals(4)
        self.t_ref = self._spin(
            QSpinBox(),
            -(10**9),
            10**9,
            0,
            " ms",
            "Reference time t_ref after the first event: refocused images align here",
        )
        self._t0 = self._t_ref_us = 0
        self.apply = QPushButton("Apply")
        self.apply.setToolTip("Use these camera parameters (for recordings without SAI metadata)")
        self.apply.clicked.connect(self._apply_geometry)
        for w in (QLabel("fx"), self.fx, QLabel("v"), self.v, QLabel("t_ref"), self.t_ref, self.apply):
            geo_row.addWidget(w)
        form.addRow(geo_row)
        depth_row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS - 1)
        self.slider.setToolTip("Focus depth (near on the left); drag to refocus live")
        self.slider.valueChanged.connect(self._slider_moved)
        self.depth_box = self._spin(QDoubleSpinBox(), 0.05, 100.0, 1.0, " m", "Focus depth in metres")
        self.depth_box.setDecimals(3)
        self.depth_box.setSingleStep(0.01)
        self.depth_box.valueChanged.connect(self._box_changed)
        self.autofocus_button = QPushButton("Autofocus")
        self.autofocus_button.setToolTip("Sweep depths and focus on the target, seen through any occluder")
        self.autofocus_button.clicked.connect(self.run_autofocus)
        for w in (self.slider, self.depth_box, self.autofocus_button):
            depth_row.addWidget(w)
        form.addRow("depth", depth_row)
        recon_row = QHBoxLayout()
        self.recon_box = QCheckBox("Reconstruct")
        self.recon_box.setToolTip("Run a hybrid SNN-CNN on the refocused events at every depth you settle on")
        self.recon_box.setChecked(settings.value("reconstruct/on", "false") == "true")
        self.recon_box.toggled.connect(
            lambda on: (settings.setValue("reconstruct/on", on), self._request_reconstruct())
        )
        self.picker = ModelPicker(workers, settings, "reconstruct", DEFAULT_RECONSTRUCTOR, _not_a_reconstructor)
        self.picker.modelChanged.connect(lambda *_: self._request_reconstruct())
        self.export_png = QPushButton("Export PNG")
        self.export_png.clicked.connect(lambda: self._export(self.export_reconstruction, "reconstruction.png"))
        self.export_fig = QPushButton("Export figure")
        self.export_fig.clicked.connect(lambda: self._export(self.export_figure, "sai_figure.png"))
        for w in (self.recon_box, self.picker, self.export_png, self.export_fig):
            recon_row.addWidget(w)
        recon_row.addStretch(1)
        form.addRow(recon_row)
        lay.addLayout(form)
        self.status = QLabel("Open a recording with SAI metadata, or enter fx and v and press Apply.")
        lay.addWidget(self.status)
        self.images = ImagePanel(["unfocused", "refocused", "reconstruction", "ground truth"])
        self.images.setToolTip(
            "All events summed; refocused at the chosen depth; the network's reconstruction; the ground truth"
        )
        lay.addWidget(self.images, 1)
        self.plot = pg.PlotWidget()
        self.plot.setToolTip(
            "Autofocus: how well the early and late halves of the events agree when refocused at each depth.\n"
            "Blue: all events (peaks at every plane); green: the events left once the occluder's are set aside.\n"
            "Yellow line: the target; red dashed line: the occluder it was found behind."
        )
        self.plot.setMaximumHeight(170)
        self.plot.setLabel("bottom", "depth", units="m")
        self.plot.setLabel("left", "agreement")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 5))
        self.curve = self.plot.plot(pen=pg.mkPen("#6cb4ff", width=2), symbol="o", symbolSize=3, name="planes")
        self.behind_curve = self.plot.plot(pen=pg.mkPen("#81c784", width=2), name="behind occluder")
        self.best = pg.InfiniteLine(1.0, pen=pg.mkPen("#ffd54f", width=2), label="target", labelOpts={"position": 0.85})
        self.occluder_line = pg.InfiniteLine(
            1.0,
            pen=pg.mkPen("#ef5350", width=2, style=Qt.PenStyle.DashLine),
            label="occluder",
            labelOpts={"position": 0.85},
        )
        self.occluder_line.setVisible(False)
        self.best.setVisible(False)  # a "target" line says where autofocus found it: none before it ran
        self.plot.addItem(self.best)
        self.plot.addItem(self.occluder_line)
        lay.addWidget(self.plot)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)
        self._debounce.timeout.connect(self._request_refocus)
        self.setEnabled(False)

    @staticmethod
    def _spin(box, lo, hi, value, suffix, tip):
        box.setRange(lo, hi)
        box.setValue(value)
        box.setSuffix(suffix)
        box.setToolTip(tip)
        box.setKeyboardTracking(False)
        return box

    # -- inputs -----------------------------------------------------------------------------------
    def set_recording(self, events: CheckedEvents, scene: SAIScene) -> None:
        """New recording (its events checked by the viewer session): fx, v and t_ref from its scene; times in
        the boxes count from its first event."""
        self._file_scene, self.scene, self._events = scene, None, events
        self.setEnabled(True)
        self.best.setVisible(False)  # the previous recording's autofocus says nothing about this one
        self.occluder_line.setVisible(False)
        self._t0 = int(events["t"][0]) if events.size else 0
        for box, value in ((self.fx, scene.fx), (self.v, scene.v)):
            if value is not None:
                box.setValue(value)
        self.t_ref.setValue((scene.t_ref_us - self._t0) // 1000)
        self._t_ref_us = scene.t_ref_us
        self.images.set_size(*scene.sensor)
        if scene.has_geometry:
            self._apply_geometry()
        else:
            self.status.setText("No SAI metadata in this file: enter fx, v and t_ref, then Apply.")

    def _apply_geometry(self) -> None:
        if self._events is None or self._file_scene is None:
            return
        # the box holds whole ms: keep the file's exact t_ref unless the user changed it
        t_ref = self._t_ref_us if (self._t_ref_us - self._t0) // 1000 == self.t_ref.value() else None
        t_ref = t_ref if t_ref is not None else self._t0 + self.t_ref.value() * 1000
        self.scene = scene = self._file_scene.with_geometry(self.fx.value(), self.v.value(), t_ref)
        self.images.show_image(GT, scene.ground_truth)
        self.images.set_title(GT, "ground truth" if scene.ground_truth is not None else "no ground truth")
        self.images.show_image(RECON, None)
        self.reconstruction, self._recon_key = None, None
        unfocused = self._worker(refocused, lambda r: self.images.show_image(0, r[1]), self._events, scene, 0.0)
        self.workers.start(unfocused)
        self._start_stack()
        self.set_depth(float(scene.depth) if scene.depth else 1.0)

    def _worker(self, fn, on_result, *args, job: bool = False) -> Worker:
        w = Worker.for_job(fn, *args) if job else Worker(fn, *args)
        w.signals.result.connect(on_result)
        w.signals.error.connect(lambda msg: self.status.setText(f"SAI error: {msg}"))
        return w

    def _start_stack(self) -> None:
        if self._stack_worker is not None:
            self._stack_worker.cancel()
        self._stack = None
        w = Worker.for_job(stack, self._events, self.scene, VIEW_DEPTHS)
        w.signals.result.connect(self._stack_ready)
        w.signals.error.connect(lambda msg: self.status.setText(f"SAI error: {msg}"))
        w.signals.progress.connect(lambda d, t, _m: self.status.setText(f"computing focal stack {d}/{t} ..."))
        self._stack_worker = self.workers.start(w)

    def _stack_ready(self, result) -> None:
        self._stack = result
        self.status.setText(f"focal stack ready: {result[0].size} depths; drag the slider")
        self._show_nearest()

    # -- depth ------------------------------------------------------------------------------------
    @property
    def stack_ready(self) -> bool:
        """The focal stack for smooth scrubbing is computed."""
        return self._stack is not None

    @property
    def reconstructing(self) -> bool:
        return self._recon_worker is not None

    def depth_grid(self) -> np.ndarray:
        return depth_grid(VIEW_DEPTHS, SLIDER_STEPS)

    def set_depth(self, depth: float) -> None:
        """Move slider and box to ``depth`` and refocus there."""
        grid = self.depth_grid()
        self.slider.blockSignals(True)
        self.slider.setValue(int(np.argmin(np.abs(1 / grid - 1 / depth))))
        self.slider.blockSignals(False)
        self._set_depth(depth)

    def _slider_moved(self, i: int) -> None:
        self._set_depth(float(self.depth_grid()[i]))

    def _box_changed(self, value: float) -> None:
        if abs(value - self.depth) > 5e-4:
            self.set_depth(value)

    def _set_depth(self, depth: float) -> None:
        self.depth = depth
        self.depth_box.blockSignals(True)
        self.depth_box.setValue(depth)
        self.depth_box.blockSignals(False)
        self._show_nearest()
        self._supersede_reconstruction()
        self._debounce.start()

    def _show_nearest(self) -> None:
        if self._stack is None:
            return
        depths, imgs = self._stack
        k = int(np.argmin(np.abs(1 / depths - 1 / self.depth)))
        self.images.show_image(1, imgs[k])
        self.images.set_title(1, f"refocused ~{depths[k]:.3f} m")

    def _request_refocus(self) -> None:
        if self.scene is None:
            return
        self.workers.start(self._worker(refocused, self._refocused, self._events, self.scene, self.depth))

    def _refocused(self, result) -> None:
        depth, img = result
        if abs(depth - self.depth) < 1e-9:  # the newest request wins
            self.images.show_image(1, img)
            self.images.set_title(1, f"refocused at {depth:.3f} m")
            self.depthShown.emit(depth)
            self._request_reconstruct()

    # -- reconstruction ---------------------------------------------------------------------------
    def _request_reconstruct(self, *_: object) -> None:
        """Reconstruct at the current depth; one run at a time, and when it ends the newest depth runs next."""
        model = self.picker.model
        key = (self.depth, id(model), id(self.scene))
        if not self.recon_box.isChecked() or model is None or self.scene is None or self.reconstructing:
            return
        if key == self._recon_key:  # already on screen (or on its way)
            return
        self._recon_key = key
        self.images.set_title(RECON, f"reconstructing at {self.depth:.3f} m ...")
        w = self._worker(reconstructed, self._reconstructed, self._events, self.scene, self.depth, model, job=True)
        w.signals.finished.connect(self._reconstruct_finished)
        self._recon_worker = self.background.start(w)

    def _supersede_reconstruction(self) -> None:
        """A newer depth: stop the reconstruction under way (before its network runs); the newest runs next."""
        w = self._recon_worker
        if w is not None and self._recon_key is not None and self._recon_key[0] != self.depth:
            w.cancel()

    def _reconstructed(self, r: ReconstructView) -> None:
        self.reconstruction = r
        self.images.show_image(RECON, r.image)
        score = f", PSNR {r.psnr:.2f} dB, SSIM {r.ssim:.3f}" if r.psnr is not None else ""
        self.images.set_title(RECON, f"reconstruction ({r.psnr:.2f} dB)" if r.psnr is not None else "reconstruction")
        self.status.setText(f"{self.picker.name} at {r.depth:.3f} m: network {r.net_ms:.0f} ms{score}")
        self.reconstructed.emit(r)

    def _reconstruct_finished(self) -> None:
        self._recon_worker = None
        if self.reconstruction is None or self._recon_key is None or self.reconstruction.depth != self._recon_key[0]:
            self._recon_key = None  # cancelled: nothing of it is on screen
        self._request_reconstruct()  # the depth moved on meanwhile: catch up

    def export_reconstruction(self, path: str | Path) -> None:
        if self.reconstruction is None:
            raise ValueError("nothing reconstructed yet: tick Reconstruct")
        write_png(self.reconstruction.image, path)

    def export_figure(self, path: str | Path) -> None:
        """The four images side by side with their titles, as one PNG."""
        panels = [item.image for item in self.images.items]
        titles = [label.text for label in self.images.labels]
        shown = [(img, t) for img, t in zip(panels, titles, strict=True) if img is not None]
        if not shown:
            raise ValueError("nothing to export yet")
        write_png(figure(shown), path)

    def _export(self, fn, default: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export", default, "PNG images (*.png)")
        if not path:
            return
        try:
            fn(path)
        except (ValueError, OSError) as exc:
            QMessageBox.warning(self, "Cannot export", str(exc))

    # -- autofocus --------------------------------------------------------------------------------
    def run_autofocus(self) -> None:
        """Start autofocus; pressed again while it sweeps, the button cancels it."""
        if self._autofocus_worker is not None:
            self._autofocus_worker.cancel()
            return
        if self.scene is None:
            return
        self.autofocus_button.setText("Cancel")
        self.status.setText("autofocus: sweeping depths ...")
        w = self._worker(autofocus, self.show_autofocus, self._events, self.scene, job=True)  # sweeps DEPTH_RANGE
        w.signals.cancelled.connect(lambda: self.status.setText("autofocus cancelled"))
        w.signals.finished.connect(self._autofocus_finished)
        self._autofocus_worker = self.workers.start(w)

    def _autofocus_finished(self) -> None:
        self._autofocus_worker = None
        self.autofocus_button.setText("Autofocus")

    @property
    def autofocusing(self) -> bool:
        return self._autofocus_worker is not None

    def show_autofocus(self, r) -> None:
        self.autofocus_result = r
        self.curve.setData(r.depths, r.scores)
        self.behind_curve.setData(r.behind_depths, r.behind_scores)
        self.best.setValue(r.depth)
        self.best.setVisible(True)
        self.occluder_line.setVisible(r.occluder_depth is not None)
        truth = f" (true {self.scene.depth:.3f} m)" if self.scene and self.scene.depth else ""
        if r.occluder_depth is not None:
            self.occluder_line.setValue(r.occluder_depth)
            self.status.setText(
                f"autofocus: target at {r.depth:.3f} m{truth}, behind an occluder at {r.occluder_depth:.3f} m"
            )
        else:
            self.status.setText(f"autofocus: one plane, at {r.depth:.3f} m{truth}")
        self.set_depth(r.depth)
