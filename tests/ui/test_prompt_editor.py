"""The prompt editor: marker colours, the malformed-marker underline and trigger completion."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCharFormat

from craftstudio.domain.markers import MarkerError, parse_prompt
from craftstudio.ui.curve_editor import COLORS
from craftstudio.ui.prompt_editor import PromptEditor, error_range, marker_regions


def _regions(prompt):
    return [(prompt[a:b], role, what) for a, b, role, what in marker_regions(prompt)]


def test_point_markers_tag_the_phrase_since_the_previous_tag():
    assert _regions("a sks <c> in ohwx style <s:0.25>") == [
        ("<c>", "content", "tag"), ("a sks", "content", "phrase"),
        ("<s:0.25>", "style", "tag"), ("in ohwx style", "style", "phrase")]


def test_spans_tag_the_enclosed_text():
    assert _regions("<c>a ginger cat</c>, in <S>ink</S>") == [
        ("<c>", "content", "tag"), ("</c>", "content", "tag"), ("a ginger cat", "content", "phrase"),
        ("<S>", "style", "tag"), ("</S>", "style", "tag"), ("ink", "style", "phrase")]


def test_separators_are_not_part_of_a_phrase_and_plain_text_has_no_regions():
    assert _regions("a cat, <c>") == [("<c>", "content", "tag"), ("a cat", "content", "phrase")]
    assert _regions("x < y > z, a<b") == []


@pytest.mark.parametrize("prompt", ["a cat <x>", "a cat <c> <c>", "a <s:9> dog", "</c> cat"])
def test_the_underline_covers_the_tag_the_domain_error_points_at(prompt):
    with pytest.raises(MarkerError) as caught:
        parse_prompt(prompt)
    start, end = error_range(prompt, caught.value.position)
    assert prompt[start] == "<" and prompt[end - 1] == ">"


def _format_at(editor, position) -> QTextCharFormat:
    block = editor.document().findBlock(position)
    for fmt_range in block.layout().formats():
        if fmt_range.start <= position - block.position() < fmt_range.start + fmt_range.length:
            return QTextCharFormat(fmt_range.format)  # a copy: the range goes with the list
    return QTextCharFormat()


def test_markers_are_coloured_and_an_error_is_underlined(qtbot):
    editor = PromptEditor()
    qtbot.addWidget(editor)
    editor.setPlainText("a cat <c> in ink <s>")
    assert _format_at(editor, 6).foreground().color() == COLORS["content"]
    assert _format_at(editor, 17).foreground().color() == COLORS["style"]
    assert _format_at(editor, 2).background().color().rgb() == COLORS["content"].rgb()  # tinted phrase
    editor.setPlainText("a cat <x>")
    editor.set_marker_error("Unknown marker <x> at column 7", 7)
    underline = _format_at(editor, 7)
    assert underline.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline
    assert editor.highlighter.error_span() == (6, 9)
    assert editor.highlighter.error_message.startswith("Unknown marker")
    editor.set_marker_error("", 0)
    assert _format_at(editor, 7).underlineStyle() != QTextCharFormat.UnderlineStyle.WaveUnderline


def test_trigger_phrases_complete_the_word_being_typed(qtbot):
    editor = PromptEditor()
    qtbot.addWidget(editor)
    editor.show()
    editor.set_trigger_phrases(["ohwx style", "sks"])
    editor.setFocus()
    qtbot.keyClicks(editor, "a heart in oh")
    assert editor.completer.popup().isVisible()
    assert editor.completer.completionModel().index(0, 0).data() == "ohwx style"
    qtbot.keyClick(editor.completer.popup(), Qt.Key.Key_Tab)
    assert editor.toPlainText() == "a heart in ohwx style"
    qtbot.keyClicks(editor, " zz")  # nothing matches: no pop-up
    assert not editor.completer.popup().isVisible()


def test_hovering_the_underlined_marker_shows_the_message(qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    editor = PromptEditor()
    qtbot.addWidget(editor)
    editor.resize(400, 80)
    editor.show()
    qtbot.waitExposed(editor)
    editor.setPlainText("a cat <x>")
    editor.set_marker_error("Unknown marker <x> at column 7", 7)
    cursor = editor.textCursor()
    cursor.setPosition(7)
    point = editor.cursorRect(cursor).center()
    QApplication.sendEvent(editor.viewport(), QHelpEvent(QEvent.Type.ToolTip, point,
                                                         editor.viewport().mapToGlobal(point)))
    assert QToolTip.text() == "Unknown marker <x> at column 7"
    QToolTip.hideText()
