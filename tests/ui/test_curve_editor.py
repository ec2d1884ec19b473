"""The curve editor driven with the mouse and keys: drag (clamped), add, remove, undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from craftstudio.domain.curves import load_preset
from craftstudio.state.curves_state import CurvesState
from craftstudio.ui.curve_editor import CurveEditor

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
PIXEL = 0.01  # a pixel is under 0.003 of x and of a gate's range at this size


@pytest.fixture
def editor(qtbot) -> CurveEditor:
    widget = CurveEditor(CurvesState())
    qtbot.addWidget(widget)
    widget.resize(420, 240)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def at(editor: CurveEditor, x: float, y: float, role: str | None = None) -> QPoint:
    return editor.to_widget(x, y, role).toPoint()


def drag(qtbot, editor, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(editor, LEFT, pos=start)
    qtbot.mouseMove(editor, pos=(start + end) / 2)
    qtbot.mouseMove(editor, pos=end)
    qtbot.mouseRelease(editor, LEFT, pos=end)


def test_dragging_a_point_moves_it_and_is_one_undo_step(qtbot, editor):
    state = editor.state
    drag(qtbot, editor, at(editor, 0.7, 0.0), at(editor, 0.5, 0.4))
    x, y = state.curve("content").points[1]
    assert x == pytest.approx(0.5, abs=PIXEL) and y == pytest.approx(0.4, abs=PIXEL)
    assert state.edited and state.active == "content" and state.selected == 1
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert state.curve_set == load_preset("paper") and not state.edited


def test_drag_clamps_x_between_neighbours_and_y_to_the_range(qtbot, editor):
    state = editor.state
    state.add_point(0.4, 0.5, "content")  # content: (0, 1) (0.4, 0.5) (0.7, 0)
    rect = editor.plot_rect()
    far_right_and_above = QPoint(int(rect.right()) + 30, int(rect.top()) - 30)
    drag(qtbot, editor, at(editor, 0.4, 0.5), far_right_and_above)
    x, y = state.curve("content").points[1]
    assert x < 0.7 and x == pytest.approx(0.7, abs=PIXEL)
    assert y == 1.0
    drag(qtbot, editor, at(editor, x, y), QPoint(int(rect.left()) - 30, int(rect.bottom()) + 30))
    x, y = state.curve("content").points[1]
    assert 0.0 < x == pytest.approx(0.0, abs=PIXEL) and y == 0.0


def test_clicking_another_curves_point_makes_it_active(qtbot, editor):
    state = editor.state
    drag(qtbot, editor, at(editor, 0.28, 1.0, "style"), at(editor, 0.4, 1.0, "style"))
    assert state.active == "style"
    assert state.curve("style").points[1][0] == pytest.approx(0.4, abs=PIXEL)


def test_double_click_adds_and_delete_removes(qtbot, editor):
    state = editor.state
    state.select("style")
    qtbot.mouseDClick(editor, LEFT, pos=at(editor, 0.6, 0.25))
    points = state.curve("style").points
    assert len(points) == 3 and points[2] == pytest.approx((0.6, 0.25), abs=PIXEL)
    assert state.selected == 2
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    assert state.curve("style").points == ((0.0, 0.0), (0.28, 1.0))


def test_right_click_removes_and_arrow_keys_nudge(qtbot, editor):
    state = editor.state
    qtbot.mouseClick(editor, RIGHT, pos=at(editor, 0.7, 0.0, "content"))
    assert state.curve("content").points == ((0.0, 1.0),)
    state.select("style", 1)
    qtbot.keyClick(editor, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert state.curve("style").points[1] == (pytest.approx(0.38), 1.0)


def test_removing_the_only_point_is_refused_with_a_message(qtbot, editor):
    state = editor.state
    before = state.curve_set
    qtbot.mouseClick(editor, RIGHT, pos=at(editor, 0.0, 1.0, "guidance"))
    assert state.curve_set is before
    assert state.error == "The guidance curve has no points: give at least one."


def test_disabled_editor_ignores_the_mouse(qtbot, editor):
    editor.setEnabled(False)
    qtbot.mouseDClick(editor, LEFT, pos=at(editor, 0.5, 0.5))
    assert not editor.state.edited
    editor.grab()  # paints the "gates off" overlay without error
