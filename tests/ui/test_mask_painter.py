"""MaskPainter driven with the mouse and keys: exact pixels painted, erased, undone, saved, loaded."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import QSpinBox, QToolButton, QVBoxLayout, QWidget

from craftstudio.ui.mask_canvas import UNDO_DEPTH
from craftstudio.ui.mask_painter import MaskPainter

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
GRAY8 = QImage.Format.Format_Grayscale8


def picture(width: int, height: int, color: str = "#808080") -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    return image


def white(mask: QImage) -> set[tuple[int, int]]:
    """The (x, y) of every white mask pixel; asserts the mask is binary Grayscale8."""
    assert mask.format() == GRAY8
    data, stride = bytes(mask.constBits()), mask.bytesPerLine()
    rows = [data[y * stride: y * stride + mask.width()] for y in range(mask.height())]
    assert {value for row in rows for value in row} <= {0, 255}
    return {(x, y) for y, row in enumerate(rows) for x, value in enumerate(row) if value == 255}


def show(qtbot, painter: MaskPainter, width: int, height: int) -> MaskPainter:
    qtbot.addWidget(painter)
    painter.resize(width, height)
    painter.show()
    qtbot.waitExposed(painter)
    return painter


@pytest.fixture
def painter(qtbot) -> MaskPainter:
    """A 64×64 image in a 520×520 canvas: zoom 8, image drawn at (4, 4)."""
    widget = show(qtbot, MaskPainter(show_toolbar=False), 520, 520)
    widget.set_image(picture(64, 64))
    assert widget.canvas.zoom() == 8 and widget.canvas.image_rect() == QRectF(4, 4, 512, 512)
    return widget


def at(x: int, y: int) -> QPoint:
    """The widget position over the middle of image pixel (x, y) at zoom 8."""
    return QPoint(4 + 8 * x + 4, 4 + 8 * y + 4)


def drag(qtbot, painter: MaskPainter, points: list[QPoint], button=LEFT) -> None:
    canvas = painter.canvas
    qtbot.mousePress(canvas, button, pos=points[0])
    for point in points[1:]:
        qtbot.mouseMove(canvas, pos=point)
    qtbot.mouseRelease(canvas, button, pos=points[-1])


def test_a_drag_turns_exactly_the_brush_footprint_white(qtbot, painter):
    painter.set_brush_size(3)
    drag(qtbot, painter, [at(10, 20), at(15, 20), at(22, 20), at(30, 20)])
    # A 3-pixel round brush along row 20: rows 19–21, from one pixel before to one after.
    assert white(painter.mask()) == {(x, y) for x in range(9, 32) for y in range(19, 22)}
    painter.clear_mask()
    painter.set_brush_size(1)
    drag(qtbot, painter, [at(5, 5), at(9, 9), at(15, 15)])
    assert white(painter.mask()) == {(i, i) for i in range(5, 16)}
    assert (50, 50) not in white(painter.mask())


def test_a_fast_drag_leaves_no_gaps(qtbot, painter):
    painter.set_brush_size(1)
    drag(qtbot, painter, [at(2, 40), at(60, 40)])  # one mouse move across most of the image
    assert white(painter.mask()) == {(x, 40) for x in range(2, 61)}
    painter.clear_mask()
    drag(qtbot, painter, [at(0, 0), at(63, 21)])  # shallow diagonal: every column gets a pixel
    columns = {x for x, _ in white(painter.mask())}
    assert columns == set(range(64))


def test_the_eraser_and_a_right_drag_clear_the_mask(qtbot, painter):
    painter.fill_mask()
    painter.set_brush_size(1)
    painter.set_tool("eraser")
    drag(qtbot, painter, [at(3, 3), at(10, 3)])
    assert not white(painter.mask()) & {(x, 3) for x in range(3, 11)}
    painter.set_tool("brush")
    drag(qtbot, painter, [at(3, 9), at(10, 9)], button=RIGHT)  # right drag erases whatever the tool
    mask = white(painter.mask())
    assert not mask & {(x, 9) for x in range(3, 11)}
    assert len(mask) == 64 * 64 - 16 and painter.eraser_button.isChecked() is False


def test_invert_clear_and_fill(qtbot, painter):
    assert not painter.has_mask()
    painter.set_brush_size(1)
    drag(qtbot, painter, [at(7, 7)])
    assert white(painter.mask()) == {(7, 7)} and painter.has_mask()
    painter.invert_mask()
    inverted = white(painter.mask())
    assert len(inverted) == 64 * 64 - 1 and (7, 7) not in inverted
    painter.clear_mask()
    assert white(painter.mask()) == set() and not painter.has_mask()
    painter.fill_mask()
    assert len(white(painter.mask())) == 64 * 64


def test_undo_restores_the_mask_before_each_edit(qtbot, painter):
    painter.set_brush_size(1)
    drag(qtbot, painter, [at(1, 1), at(5, 1)])
    first = painter.mask()
    drag(qtbot, painter, [at(1, 30), at(5, 30)])
    painter.invert_mask()
    painter.canvas.setFocus()
    qtbot.keyClick(painter.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(white(painter.mask())) == 10
    qtbot.keyClick(painter.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert painter.mask() == first
    painter.undo()
    assert not painter.has_mask()
    with qtbot.assertNotEmitted(painter.mask_changed):
        painter.undo()  # nothing left to undo


def test_undo_keeps_the_last_twenty_edits(painter):
    for _ in range(UNDO_DEPTH + 5):
        painter.invert_mask()
    undone = 0
    while painter.canvas.can_undo():
        painter.undo()
        undone += 1
    assert undone == UNDO_DEPTH == 20
    assert painter.has_mask()  # 25 inverts, 20 undone: the 5th one's result (white)


def test_the_mask_is_the_image_size_and_the_mapping_holds_at_a_fractional_zoom(qtbot):
    painter = show(qtbot, MaskPainter(show_toolbar=False), 225, 225)
    painter.set_image(Image.new("RGB", (300, 200), "teal"))  # PIL, through image_view.to_qimage
    assert painter.mask().size().toTuple() == (300, 200)
    canvas = painter.canvas
    assert canvas.size().toTuple() == (225, 225)
    assert canvas.zoom() == 0.75 and canvas.image_rect() == QRectF(0, 37.5, 225, 150)
    assert canvas.to_image(QPointF(75, 82.5)).toTuple() == (100, 60)
    assert canvas.to_widget(QPointF(300, 200)).toTuple() == (225, 187.5)
    painter.set_brush_size(1)
    drag(qtbot, painter, [QPoint(75, 83)])  # its centre (75.5, 83.5) is image (100.67, 61.33)
    assert white(painter.mask()) == {(100, 61)}
    with qtbot.waitSignal(painter.mask_changed, timeout=1000):
        painter.set_image(picture(300, 200, "navy"))  # a new picture: a blank mask
    assert painter.mask().size().toTuple() == (300, 200) and not painter.has_mask()
    drag(qtbot, painter, [QPoint(75, 83)])
    painter.set_image(picture(300, 200, "olive"), keep_mask=True)  # another pass: mask kept
    assert white(painter.mask()) == {(100, 61)}
    painter.set_image(picture(64, 64), keep_mask=True)  # another size cannot keep it
    assert painter.mask().size().toTuple() == (64, 64) and not painter.has_mask()
    painter.clear_image()
    assert painter.mask().isNull() and not painter.has_mask()


def test_set_mask_of_another_size_is_resized_with_nearest_and_thresholded(painter):
    small = QImage(32, 16, QImage.Format.Format_RGB32)
    small.fill(QColor(100, 100, 100))  # below 128: keep
    for x in range(16):
        for y in range(16):
            small.setPixelColor(x, y, QColor(200, 200, 200))  # left half above 128: redo
    painter.set_mask(small)
    assert white(painter.mask()) == {(x, y) for x in range(32) for y in range(64)}
    painter.undo()
    assert not painter.has_mask()
    with pytest.raises(ValueError, match="Set an image"):
        MaskPainter().set_mask(small)


def test_save_and_load_round_trip_and_a_corrupt_file_names_itself(qtbot, painter, tmp_path):
    painter.set_brush_size(5)
    drag(qtbot, painter, [at(10, 10), at(40, 50)])
    path = tmp_path / "mask.png"
    painter.save_mask(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]  # no temporary file left behind
    with pytest.raises(OSError, match="no-such-folder"):
        painter.save_mask(str(tmp_path / "no-such-folder" / "mask.png"))
    other = show(qtbot, MaskPainter(show_toolbar=False), 300, 300)
    other.set_image(picture(64, 64))
    with qtbot.waitSignal(other.mask_changed, timeout=1000):
        other.load_mask(str(path))
    assert other.mask() == painter.mask() and other.has_mask()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    with pytest.raises(ValueError, match="broken.png"):
        other.load_mask(str(bad))
    with pytest.raises(ValueError, match="missing.png"):
        other.load_mask(str(tmp_path / "missing.png"))
    assert other.mask() == painter.mask()  # a failed load changes nothing


def test_mask_changed_is_emitted_once_per_stroke_not_per_move(qtbot, painter):
    emitted = []
    painter.mask_changed.connect(lambda: emitted.append(1))
    canvas = painter.canvas
    qtbot.mousePress(canvas, LEFT, pos=at(5, 5))
    for x in range(6, 20):
        qtbot.mouseMove(canvas, pos=at(x, 5))
    assert emitted == []
    qtbot.mouseRelease(canvas, LEFT, pos=at(20, 5))
    assert emitted == [1]
    with qtbot.waitSignal(painter.mask_changed, timeout=1000):
        painter.invert_mask()
    with qtbot.waitSignal(painter.mask_changed, timeout=1000):
        painter.undo()
    painter.clear_mask()
    assert len(emitted) == 4
    with qtbot.assertNotEmitted(painter.mask_changed):
        drag(qtbot, painter, [at(30, 30), at(40, 30)], button=RIGHT)  # erasing black changes nothing
    assert len(emitted) == 4


def test_the_overlay_tints_masked_pixels_only_while_shown(qtbot, painter):
    painter.set_brush_size(1)
    drag(qtbot, painter, [at(10, 10)])
    shown = painter.canvas.grab().toImage()
    masked, kept = shown.pixelColor(at(10, 10)), shown.pixelColor(at(11, 10))
    assert kept.name() == "#808080" and masked.red() > 160 and masked.green() < 110
    assert shown.pixelColor(4 + 80, 4 + 80) == masked  # nearest zoom: the whole 8×8 square
    painter.set_mask_visible(False)
    assert painter.show_mask_button.isChecked() is False
    assert painter.canvas.grab().toImage().pixelColor(at(10, 10)).name() == "#808080"
    drag(qtbot, painter, [at(20, 20)])  # painting brings the mask back into view
    assert painter.mask_visible() and painter.show_mask_button.isChecked()


def test_feather_is_a_setting_that_leaves_the_mask_alone(qtbot, painter):
    assert painter.feather() == 4
    painter.fill_mask()
    before = painter.mask()
    with qtbot.waitSignal(painter.feather_changed, timeout=1000) as signal:
        painter.set_feather(12)
    assert signal.args == [12] and painter.feather_spin.value() == 12
    painter.set_feather(500)
    assert painter.feather() == 64 and painter.mask() == before


def test_bracket_keys_resize_the_brush_and_ctrl_z_beats_a_window_shortcut(qtbot):
    window = QWidget()
    painter = MaskPainter()
    QVBoxLayout(window).addWidget(painter)
    window_undo = []
    QShortcut(QKeySequence.StandardKey.Undo, window, activated=lambda: window_undo.append(1))
    qtbot.addWidget(window)
    window.resize(600, 500)
    with qtbot.waitActive(window):  # window shortcuts only fire in the active window
        window.show()
        window.activateWindow()
    painter.set_image(picture(64, 64))
    painter.set_brush_size(10)
    painter.canvas.setFocus()
    assert painter.canvas.hasFocus()
    qtbot.keyClick(painter.canvas, Qt.Key.Key_BracketRight)
    assert painter.brush_size() == 12 and painter.size_spin.value() == 12
    qtbot.keyClick(painter.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(painter.canvas, Qt.Key.Key_BracketLeft)
    assert painter.brush_size() == 8
    painter.fill_mask()
    qtbot.keyClick(painter.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not painter.has_mask() and window_undo == []


def test_every_toolbar_control_has_a_tooltip_and_an_accessible_name(qtbot):
    painter = show(qtbot, MaskPainter(), 700, 560)
    controls = painter.toolbar.findChildren(QToolButton) + painter.toolbar.findChildren(QSpinBox)
    named = [c for c in controls if c.accessibleName()]
    assert {c.accessibleName() for c in named} >= {
        "Brush tool", "Eraser tool", "Brush size", "Feather", "Invert mask", "Clear mask",
        "Fill mask", "Undo mask edit", "Show mask"}
    assert all(c.toolTip() for c in named)
    assert not painter.undo_button.isEnabled() and not painter.clear_button.isEnabled()
    painter.set_image(picture(64, 64))
    painter.fill_mask()
    assert painter.undo_button.isEnabled() and painter.clear_button.isEnabled()
    painter.eraser_button.click()
    assert painter.tool() == "eraser" and not painter.brush_button.isChecked()
