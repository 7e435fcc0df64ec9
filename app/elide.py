"""A line edit that, when it is not being edited, shows a long path elided in the middle.

A QLineEdit scrolls a long text so that one end is cut off: for a path that hides either the folder or
the file name. Unfocused, this one paints the text with "…" in the middle (both ends readable, the whole
text in the tooltip); focused, it edits as usual. Its ``text()`` is always the full text.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPainter, QPaintEvent
from PyQt6.QtWidgets import QComboBox, QLineEdit, QStyle, QStyleOptionFrame


class MiddleElidedLineEdit(QLineEdit):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.textChanged.connect(self.setToolTip)

    def shown_text(self) -> str:
        """What the unfocused widget paints."""
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, self)
        margins = self.textMargins()
        width = rect.width() - margins.left() - margins.right() - 4
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, max(width, 0))

    def paintEvent(self, event: QPaintEvent) -> None:
        shown = self.shown_text()
        if self.hasFocus() or shown == self.text():
            super().paintEvent(event)
            return
        # the style's own line-edit panel, then the elided text where the scrolled one would be
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        painter = QPainter(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, opt, painter, self)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, self)
        painter.setPen(self.palette().text().color())
        painter.drawText(rect.adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, shown)
        painter.end()


def middle_elided(combo: QComboBox) -> QComboBox:
    """Give an editable combo box the eliding line edit, and elide its drop-down's items in the middle."""
    combo.setLineEdit(MiddleElidedLineEdit(combo))
    combo.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return combo
