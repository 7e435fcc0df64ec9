"""Model and device choice for the model tabs: bundled names or a checkpoint file, loaded off the GUI thread.

A checkpoint that does not load, or holds the wrong kind of network, shows a
dialog and the previous model stays. CUDA is listed, greyed out, when absent.
The last model and device are remembered under ``key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QWidget

from spikelens.app.workers import Worker, WorkerPool
from spikelens.pipelines.extras import INSTALL, TORCH_PIN, available, require

if TYPE_CHECKING:
    from torch import nn

BROWSE = "Checkpoint file..."


def _load(name: str, device: str) -> nn.Module:
    """On a worker: torch is imported here, so the GUI starts without it (the tab then says what to install)."""
    require("torch", "running a model")
    from spikelens.hybrid_net.registry import load_model

    return load_model(name, device)


def devices() -> list[tuple[str, bool]]:
    """(name, usable) for the device list; CUDA is listed greyed out when absent."""
    cuda = available("torch") and require("torch", "the device list").cuda.is_available()
    return [("auto", True), ("cpu", True), ("cuda" if cuda else "cuda (not available)", cuda)]


class ModelPicker(QWidget):
    #: the model (on its device) and the name or path it came from
    modelChanged = pyqtSignal(object, str)
    #: why a model did not load (the previous one stays)
    loadFailed = pyqtSignal(str)

    def __init__(
        self,
        workers: WorkerPool,
        settings: QSettings,
        key: str,
        default: str,
        accepts: Callable[[nn.Module], str | None],
    ) -> None:
        """``accepts(model)`` returns why a loaded model does not fit this tab, or None."""
        super().__init__()
        self.workers, self.settings, self.key, self.accepts = workers, settings, key, accepts
        self.model: nn.Module | None = None
        self.name = ""
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.model_box = QComboBox()
        self.model_box.addItems([default, BROWSE])
        self.device_box = QComboBox()
        for name, usable in devices():
            self.device_box.addItem(name)
            self.device_box.model().item(self.device_box.count() - 1).setEnabled(usable)
        for text, w in (("Model", self.model_box), ("Device", self.device_box)):
            lay.addWidget(QLabel(text))
            lay.addWidget(w)
        self.model_box.activated.connect(self._chosen)
        self.device_box.activated.connect(lambda _: self.load(self.name))
        saved = str(settings.value(f"{key}/device", "auto"))
        if saved in [self.device_box.itemText(i) for i in range(self.device_box.count())]:
            self.device_box.setCurrentText(saved)
        self.last_error: str | None = None
        if not available("torch"):  # the GUI runs without torch: say what the tab needs instead of failing
            self.setEnabled(False)
            self.setToolTip(f"models need PyTorch: {INSTALL['torch']}")
            lay.addWidget(QLabel(f"needs PyTorch ({TORCH_PIN})"))
            return
        self.load(str(settings.value(f"{key}/model", default)))

    @property
    def device(self) -> str:
        return self.device_box.currentText().split()[0]

    def _chosen(self, index: int) -> None:
        if self.model_box.itemText(index) != BROWSE:
            self.load(self.model_box.itemText(index))
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Model checkpoint", "", "Checkpoints and NIR graphs (*.pt *.pth *.nir)"
        )
        if path:
            self.load(path)
        else:
            self.model_box.setCurrentText(self.name)

    def load(self, name: str) -> Worker:
        """Load a bundled name or a checkpoint on a worker."""
        w = Worker(_load, name, self.device)
        w.signals.result.connect(lambda model, n=name: self._loaded(n, model))
        w.signals.error.connect(lambda msg, n=name: self._failed(msg))
        return self.workers.start(w)

    def _loaded(self, name: str, model: nn.Module) -> None:
        why = self.accepts(model)
        if why is not None:
            self._failed(f"{name}: {why}")
            return
        self.model, self.name = model, name
        if self.model_box.findText(name) < 0:
            self.model_box.insertItem(self.model_box.count() - 1, name)
        self.model_box.setCurrentText(name)
        self.settings.setValue(f"{self.key}/model", name)
        self.settings.setValue(f"{self.key}/device", self.device_box.currentText())
        self.modelChanged.emit(model, name)

    def _failed(self, message: str) -> None:
        """The previous model stays; a window-modal box says why (it never blocks the event loop)."""
        self.model_box.setCurrentText(self.name)
        self.last_error = message
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Cannot load the model", message, QMessageBox.StandardButton.Ok, self
        )
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.loadFailed.emit(message)
