"""The SpikeLens desktop app (PyQt6). Only this package imports Qt; it talks to pipelines/ for all work."""

from __future__ import annotations

import sys
from pathlib import Path


def run(path: str | Path | None = None, argv: list[str] | None = None) -> int:
    """Open the main window (on ``path`` if given) and run the event loop until it closes."""
    import pyqtgraph as pg
    from PyQt6.QtWidgets import QApplication

    from spikelens.app.main_window import MainWindow
    from spikelens.app.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setOrganizationName("SpikeLens")
    app.setApplicationName("SpikeLens")
    pg.setConfigOptions(imageAxisOrder="row-major")
    apply_dark_theme(app)
    window = MainWindow()
    window.show()
    if path is not None:
        window.open_path(path)
    return app.exec()
