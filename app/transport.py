"""Play/pause, stepping, loop and speed: a toolbar that only emits what the user asked for."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

from spikelens.pipelines.clock import SPEEDS

FASTEST = "as fast as possible"


class TransportBar(QWidget):
    playToggled = pyqtSignal(bool)
    stepRequested = pyqtSignal(int)  # frames, negative = back
    jumpRequested = pyqtSignal(str)  # "start" | "end"
    speedChanged = pyqtSignal(object)  # float or None (as fast as possible)
    loopChanged = pyqtSignal(bool)

    def __init__(self) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)

        icon = self.style().standardIcon
        px = QStyle.StandardPixmap
        self._icons = {True: icon(px.SP_MediaPause), False: icon(px.SP_MediaPlay)}

        def button(kind: QStyle.StandardPixmap, tip: str, slot) -> QToolButton:
            b = QToolButton()
            b.setIcon(icon(kind))
            b.setToolTip(tip)
            b.clicked.connect(slot)
            lay.addWidget(b)
            return b

        button(px.SP_MediaSkipBackward, "Jump to the start (Home)", lambda: self.jumpRequested.emit("start"))
        button(px.SP_MediaSeekBackward, "Step one frame back (Left)", lambda: self.stepRequested.emit(-1))
        self.play = button(
            px.SP_MediaPlay, "Play / pause (Space)", lambda: self.playToggled.emit(self.play.isChecked())
        )
        self.play.setCheckable(True)
        button(px.SP_MediaSeekForward, "Step one frame forward (Right)", lambda: self.stepRequested.emit(1))
        button(px.SP_MediaSkipForward, "Jump to the end (End)", lambda: self.jumpRequested.emit("end"))
        self.loop = QCheckBox("loop")
        self.loop.setToolTip("Start again from the beginning at the end of the recording")
        self.loop.toggled.connect(self.loopChanged)
        lay.addWidget(self.loop)
        lay.addWidget(QLabel("speed"))
        self.speed = QComboBox()
        self.speed.setToolTip("Playback speed relative to real time")
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}x", s)
        self.speed.addItem(FASTEST, None)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(lambda i: self.speedChanged.emit(self.speed.itemData(i)))
        lay.addWidget(self.speed)
        lay.addStretch(1)

    def set_playing(self, playing: bool) -> None:
        self.play.setChecked(playing)
        self.play.setIcon(self._icons[playing])

    def set_speed(self, speed: float | None) -> None:
        i = self.speed.findData(speed)
        if i >= 0:
            self.speed.setCurrentIndex(i)
