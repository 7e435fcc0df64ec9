"""The controls under a live view: freeze the display, record to HDF5, stop the stream, and what it is doing."""

from __future__ import annotations

from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget


class LiveBar(QWidget):
    def __init__(self) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        self.freeze = QPushButton("Freeze")
        self.freeze.setCheckable(True)
        self.freeze.setToolTip("Hold the picture while the stream (and any recording) goes on")
        self.record = QPushButton("● Record")
        self.record.setCheckable(True)
        self.record.setToolTip("Write the stream to SpikeLens HDF5 from now on (every event, nothing dropped)")
        self.stop = QPushButton("Stop stream")
        self.stop.setToolTip("Disconnect from the source")
        self.status = QLabel("")
        self.status.setToolTip("Events received since the stream opened")
        for w in (self.freeze, self.record, self.stop):
            lay.addWidget(w)
        lay.addWidget(self.status, 1)

    @property
    def frozen(self) -> bool:
        return self.freeze.isChecked()

    def reset(self, source: str) -> None:
        self.source = source
        for b in (self.freeze, self.record, self.stop):
            b.setEnabled(True)
        self.freeze.setChecked(False)
        self.set_recording(False)
        self.status.setText(f"connected to {source}")

    def set_recording(self, on: bool) -> None:
        self.record.blockSignals(True)
        self.record.setChecked(on)
        self.record.blockSignals(False)
        self.record.setText("■ Stop recording" if on else "● Record")

    def show_status(self, events: int, recording: bool) -> None:
        if self.stop.isEnabled():
            rec = "  recording" if recording else ""
            self.status.setText(f"{self.source}: {events:,} events{rec}")

    def ended(self, reason: str) -> None:
        for b in (self.record, self.stop):
            b.setEnabled(False)
        self.set_recording(False)
        self.status.setText(f"{self.source}: ended - {reason}")
