"""Event rate over the recording (or the last seconds of a live stream), with the position; click or drag to seek.

The axis reads seconds since ``origin`` (the first event): DV cameras stamp
events in Unix-epoch microseconds, which would read "1.6 Gs" otherwise.
Signals and setters speak absolute microseconds.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal


class RatePlot(pg.PlotWidget):
    seekRequested = pyqtSignal(int)  # microseconds

    def __init__(self) -> None:
        super().__init__()
        self.setToolTip("Event rate over the whole recording. Click or drag the yellow line to seek.")
        self.setMaximumHeight(130)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getPlotItem().setMenuEnabled(False)
        self.setLabel("bottom", "time", units="s")
        self.setLabel("left", "rate", units="ev/s")
        self.curve = self.plot(pen=pg.mkPen("#6cb4ff", width=1), fillLevel=0, brush=(108, 180, 255, 60))
        self.cursor = pg.InfiniteLine(0, movable=True, pen=pg.mkPen("#ffd54f", width=2))
        self.cursor.sigDragged.connect(lambda line: self.seekRequested.emit(self._abs(line.value())))
        self.addItem(self.cursor)
        self.hover = pg.TextItem(anchor=(0, 1), color="#dddddd")
        self.addItem(self.hover, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._hovered)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._t = np.zeros(0)
        self._r = np.zeros(0)
        self.origin_us = 0

    def set_origin(self, t_us: int) -> None:
        self.origin_us = int(t_us)

    def _rel(self, t_us: float) -> float:
        return (t_us - self.origin_us) / 1e6

    def _abs(self, seconds: float) -> int:
        return self.origin_us + round(seconds * 1e6)

    def set_rate(self, t_start_us: int, bin_us: int, rate_hz: np.ndarray) -> None:
        self._t = self._rel(t_start_us + bin_us * (np.arange(rate_hz.size) + 0.5))
        self._r = rate_hz
        self.curve.setData(self._t, rate_hz)
        self.setXRange(self._rel(t_start_us), self._rel(t_start_us + bin_us * rate_hz.size), padding=0)

    def set_position(self, t_us: int) -> None:
        self.cursor.setValue(self._rel(t_us))

    def _hovered(self, pos) -> None:
        if not self._t.size or not self.sceneBoundingRect().contains(pos):
            return
        x = self.getPlotItem().vb.mapSceneToView(pos).x()
        i = int(np.clip(np.searchsorted(self._t, x), 0, self._t.size - 1))
        self.hover.setText(f"{x:.3f} s   {self._r[i] / 1e6:.2f} M ev/s")
        self.hover.setPos(x, float(self._r.max()) if self._r.size else 0)

    def _clicked(self, event) -> None:
        if self._t.size and event.button() == 1:
            x = self.getPlotItem().vb.mapSceneToView(event.scenePos()).x()
            self.seekRequested.emit(self._abs(x))
