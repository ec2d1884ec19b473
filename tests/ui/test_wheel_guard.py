"""Scrolling the settings column with the wheel changes no combo box or spin box under the pointer."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication


def wheel(widget, steps: int = -1) -> None:
    """One notch of the mouse wheel over the middle of `widget` (negative: down)."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_wheel_over_unfocused_fields_changes_nothing_and_scrolls_the_column(qtbot, make_studio):
    studio = make_studio()
    panel = studio.window.generate_panel
    studio.window.resize(1024, 640)
    craft = panel.craft_panel
    panel.setFocus()
    scroll = panel.settings_scroll.verticalScrollBar()
    assert scroll.maximum() > 0  # the column is taller than the window: it scrolls
    before = (craft.mode_combo.currentData(), panel.steps_spin.value(), craft.content_weight.value(),
              panel.scheduler_combo.currentIndex())
    for widget in (craft.mode_combo, panel.steps_spin, craft.content_weight, panel.scheduler_combo):
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus
        wheel(widget)
    after = (craft.mode_combo.currentData(), panel.steps_spin.value(), craft.content_weight.value(),
             panel.scheduler_combo.currentIndex())
    assert after == before
    assert all(craft.switch_checks[name].isChecked() for name in craft.switch_checks)
    assert scroll.value() > 0  # the ignored wheel scrolled the column instead


def test_a_focused_spin_box_still_takes_the_wheel(qtbot, make_studio):
    studio = make_studio()
    panel = studio.window.generate_panel
    panel.steps_spin.setFocus()
    qtbot.waitUntil(panel.steps_spin.hasFocus)
    value = panel.steps_spin.value()
    wheel(panel.steps_spin, steps=1)
    assert panel.steps_spin.value() == value + 1
