"""`WheelGuard`: spin boxes and combo boxes take the mouse wheel only while focused.

Scrolling the settings column with the wheel must scroll it, not silently change the mode combo
or a spin box that happens to pass under the pointer. Guarded widgets get `Qt.StrongFocus` (a
wheel no longer focuses them); an unfocused one hands the wheel event to the scroll area around
it, so the column scrolls on as if the field were not there.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget


class WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        area = _scroll_area_around(watched)
        if area is not None:
            # Explicitly, not by Qt's propagation: that does not happen for every wheel event.
            QApplication.sendEvent(area.viewport(), event.clone())
        return True


def guard_wheel(root: QWidget) -> WheelGuard:
    """Guard every spin box and combo box inside `root` (call after building it)."""
    guard = WheelGuard(root)
    for widget in root.findChildren(QAbstractSpinBox) + root.findChildren(QComboBox):
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(guard)
    return guard


def _scroll_area_around(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent
