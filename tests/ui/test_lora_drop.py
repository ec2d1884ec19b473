"""A LoRA file (or a Library card, which carries its file) dropped on a LoRA field loads it."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from craftstudio.domain.resources import demo_dir
from tests.workers.fake_engine import FakeEngine


def _drop(widget, paths: list[str]) -> tuple[bool, bool]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    where = QPointF(widget.rect().center())
    enter = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    enter.ignore()  # as Qt delivers a drag: a widget must accept it
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    drop.ignore()
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_a_dropped_style_lora_is_loaded_with_its_trigger_under_s(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    state, panel = studio.generate, studio.window.generate_panel
    state.prompt = "a ginger cat <c>"
    lora = str(demo_dir() / "style-lora.safetensors")  # its ModelSpec trigger phrase is "ohwx"
    assert _drop(panel.craft_panel.style_edit.lineEdit(), [lora]) == (True, True)
    assert state.craft.style_lora == lora
    assert state.prompt == "a ginger cat <c>, ohwx <s>"


def test_a_file_that_is_not_a_lora_loads_nothing(qtbot, make_studio, tmp_path):
    studio = make_studio(FakeEngine())
    state = studio.generate
    before = (state.craft.content_lora, state.prompt)
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"")
    _drop(studio.window.generate_panel.craft_panel.content_edit.lineEdit(), [str(picture)])
    assert (state.craft.content_lora, state.prompt) == before
