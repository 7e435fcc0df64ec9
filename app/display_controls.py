"""How frames are built: slicing, accumulation mode, colours, filters and ROI."""

from __future__ import annotations

from dataclasses import replace

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QPushButton, QSpinBox, QWidget

from spikelens.pipelines.display_frames import MODES, SCHEMES, FrameSettings

MODE_NAMES = {
    "polarity": "polarity (ON - OFF)",
    "count": "event count",
    "time_surface": "time surface",
    "on": "ON only",
    "off": "OFF only",
}
SCHEME_NAMES = {"red_blue": "red / blue on dark", "grey": "white / black on grey", "colormap": "colour map"}


class DisplayControls(QWidget):
    settingsChanged = pyqtSignal(object)  # FrameSettings
    roiToggled = pyqtSignal(bool)

    def __init__(self, settings: FrameSettings) -> None:
        super().__init__()
        self.settings = settings
        form = QFormLayout(self)

        def combo(items: dict, current: str, tip: str) -> QComboBox:
            c = QComboBox()
            for key, label in items.items():
                c.addItem(label, key)
            c.setCurrentIndex(c.findData(current))
            c.setToolTip(tip)
            c.currentIndexChanged.connect(self._changed)
            return c

        def spin(lo: int, hi: int, value: int, suffix: str, tip: str) -> QSpinBox:
            s = QSpinBox()
            s.setRange(lo, hi)
            s.setValue(value)
            s.setSuffix(suffix)
            s.setToolTip(tip)
            s.setKeyboardTracking(False)
            s.valueChanged.connect(self._changed)
            return s

        self.slicing = combo({"time": "time window", "count": "event count"}, settings.slicing, "How a frame is cut")
        self.window = spin(1, 10_000, settings.window_us // 1000, " ms", "Frame length in time (time window)")
        self.events = spin(100, 10_000_000, settings.events, " ev", "Events per frame (event count)")
        self.mode = combo({m: MODE_NAMES[m] for m in MODES}, settings.mode, "How events accumulate into a frame")
        self.tau = spin(1, 10_000, int(settings.tau_us / 1000), " ms", "Decay time of the time surface")
        self.saturation = spin(1, 255, settings.saturation, " ev", "Events per pixel at full colour")
        self.scheme = combo({s: SCHEME_NAMES[s] for s in SCHEMES}, settings.scheme, "Colour scheme")
        self.denoise = QCheckBox("background-activity filter")
        self.denoise.setToolTip("Drop events with no neighbour active in the last few milliseconds")
        self.denoise.setChecked(settings.denoise)
        self.denoise.toggled.connect(self._changed)
        self.hot = QCheckBox("hide hot pixels")
        self.hot.setToolTip("Hide pixels that fire far more than the rest of the sensor")
        self.hot.setChecked(settings.hot_pixels)
        self.hot.toggled.connect(self._changed)
        self.roi = QPushButton("Select ROI")
        self.roi.setCheckable(True)
        self.roi.setToolTip("Show only the events inside a draggable rectangle")
        self.roi.toggled.connect(self.roiToggled)
        for label, w in (
            ("frame by", self.slicing),
            ("window", self.window),
            ("events", self.events),
            ("mode", self.mode),
            ("decay", self.tau),
            ("saturate at", self.saturation),
            ("colours", self.scheme),
        ):
            form.addRow(label, w)
        form.addRow(self.denoise)
        form.addRow(self.hot)
        form.addRow(self.roi)

    def _changed(self) -> None:
        self.settings = replace(
            self.settings,
            slicing=self.slicing.currentData(),
            window_us=self.window.value() * 1000,
            events=self.events.value(),
            mode=self.mode.currentData(),
            tau_us=self.tau.value() * 1000.0,
            saturation=self.saturation.value(),
            scheme=self.scheme.currentData(),
            denoise=self.denoise.isChecked(),
            hot_pixels=self.hot.isChecked(),
        )
        self.settingsChanged.emit(self.settings)

    def set_value(self, **kw) -> None:
        """Set controls programmatically (keyboard shortcuts, saved settings, tests)."""
        widgets = {"mode": self.mode, "scheme": self.scheme, "slicing": self.slicing}
        for key, value in kw.items():
            widgets[key].setCurrentIndex(widgets[key].findData(value))
