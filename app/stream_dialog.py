"""Ask for a source string, offering the ones used before."""

from __future__ import annotations

from PyQt6.QtWidgets import QInputDialog, QWidget

from spikelens.datasets.streams import SYNTAX


def ask_source(parent: QWidget, history: list[str]) -> str | None:
    """The source the user typed or picked (None when cancelled)."""
    items = history or ["dv-net:127.0.0.1:7777", "camera", "sim:gesture"]
    text, ok = QInputDialog.getItem(parent, "Open stream", f"Source ({SYNTAX}):", items, 0, True)
    text = text.strip()
    return text if ok and text else None
