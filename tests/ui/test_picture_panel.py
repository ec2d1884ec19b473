"""Image to image from the Generate page, on the real engine with the tiny SD1.x model: drop a
picture, paint a mask, generate; enlarge a result 2×; the curve editor shades skipped steps."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QImage

from craftstudio.library.png_params import read_request

TIMEOUT = 120_000  # the first run imports torch and loads the model on the worker thread


def _picture(path) -> str:
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor(230, 220, 200))
    for x in range(20, 44):
        for y in range(20, 44):
            image.setPixelColor(x, y, QColor(200, 30, 30))
    image.save(str(path))
    return str(path)


def _drop(widget, path: str) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(path)])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def _generate(qtbot, studio, click) -> None:
    with qtbot.waitSignal(studio.generate.is_busy_changed, timeout=TIMEOUT, check_params_cb=lambda busy: not busy):
        click()


@pytest.fixture
def studio(make_studio, tiny_sd1):
    studio = make_studio()
    studio.generate.model, studio.generate.prompt, studio.generate.steps = str(tiny_sd1), "a red square", 4
    studio.generate.random_seed = False
    return studio


def test_drop_paint_generate_and_enlarge(qtbot, studio, tmp_path):
    panel = studio.window.generate_panel
    canvas = panel.picture_canvas
    picture = _picture(tmp_path / "sketch.png")
    _drop(canvas, picture)
    assert studio.generate.pictures.init_image == picture
    assert panel.side_tabs.currentWidget() is canvas and canvas.painter.isVisible()
    assert "sketch.png · 64 × 64 px" in panel.picture_settings.init_label.text()
    # Paint a stroke over the picture's middle: the state gets the mask once the stroke ends.
    view = canvas.painter.canvas
    rect = view.image_rect()
    middle = QPoint(int(rect.center().x()), int(rect.center().y()))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=middle)
    qtbot.mouseMove(view, pos=middle + QPoint(20, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=middle + QPoint(20, 0))
    assert studio.generate.pictures.has_mask
    assert "mask painted" in panel.picture_settings.mask_label.text()
    panel.picture_settings.strength_spin.setValue(0.8)
    _generate(qtbot, studio, lambda: qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton))
    assert panel.error_label.text() == ""
    [path] = studio.generate.image_paths
    recorded = read_request(path)
    assert recorded.init_image == picture and recorded.strength == 0.8 and recorded.init_image_sha256
    assert recorded.mask and QImage(recorded.mask).size() == QImage(picture).size() and recorded.mask_sha256
    # Enlarge 2×: the same image made again, twice the size.
    width, height = recorded.width, recorded.height
    assert panel.enlarge_button.isEnabled()
    _generate(qtbot, studio, lambda: qtbot.mouseClick(panel.enlarge_button, Qt.MouseButton.LeftButton))
    [bigger] = studio.generate.image_paths
    assert QImage(str(bigger)).size().toTuple() == (2 * width, 2 * height)
    assert read_request(bigger).hires_factor == 2.0


def test_result_becomes_the_init_image_and_the_curve_editor_shades_skipped_steps(qtbot, studio):
    panel = studio.window.generate_panel
    assert not panel.use_as_init_button.isEnabled()
    _generate(qtbot, studio, studio.generate.generate)
    qtbot.mouseClick(panel.use_as_init_button, Qt.MouseButton.LeftButton)
    assert studio.generate.pictures.init_image == str(studio.generate.image_paths[0])
    editor = panel.craft_panel.editor
    studio.generate.steps, studio.generate.pictures.strength = 10, 0.5
    assert studio.generate.craft.curves.skipped_steps == 5
    assert editor.skipped_width() == pytest.approx(editor.plot_rect().width() * 4.5 / 9)
    qtbot.mouseClick(panel.picture_settings.clear_button, Qt.MouseButton.LeftButton)
    assert editor.skipped_width() == 0 and not canvas_visible(panel)


def canvas_visible(panel) -> bool:
    return panel.picture_canvas.painter.isVisible()


def test_a_picture_never_widens_the_settings_column(qtbot, studio, tmp_path):
    panel = studio.window.generate_panel
    scroll = panel.settings_scroll
    before = scroll.widget().minimumSizeHint().width()
    name = tmp_path / ("a-very-long-file-name-of-a-scanned-sketch-from-the-archive-" * 2 + ".png")
    studio.generate.use_init_image(_picture(name))
    studio.generate.pictures.set_painted_mask(QImage(64, 64, QImage.Format.Format_Grayscale8))
    assert scroll.widget().minimumSizeHint().width() <= before
    assert panel.picture_settings.init_label.toolTip() == str(name)
