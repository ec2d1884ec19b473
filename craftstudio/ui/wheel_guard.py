"""`WheelGuard`: spin boxes and combo boxes take the mouse wheel only while focused.

Scrolling the settings column with the wheel must scroll it, not silently change the mode combo
or a spin box that happens to pass under the pointer. Guarded widgets get `Qt.StrongFocus` (a
wheel no longer focuses them); an unfocused one ignores the wheel event, which Qt then hands to
its parent, so the scroll area scrolls on.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget


class WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # not consumed: the parent (the scroll area) gets it
            return True
        return False


def guard_wheel(root: QWidget) -> WheelGuard:
    """Guard every spin box and combo box inside `root` (call after building it)."""
    guard = WheelGuard(root)
    for widget in root.findChildren(QAbstractSpinBox) + root.findChildren(QComboBox):
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(guard)
    return guard
