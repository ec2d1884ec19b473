"""`PromptEditor`: the prompt field, with its CRAFT markers made visible.

* `<c>`/`<s>` markers are drawn bold in the content and style colours of the curve editor, and
  the phrase each one tags is tinted in the same colour (the text since the previous tag for a
  point marker, the enclosed text for a span), so the user sees what each LoRA is tied to.
* A malformed marker is underlined with a red wave; hovering it shows the `MarkerError` message
  (the state parses the prompt on every edit and gives the 1-based position).
* Completion of the loaded LoRAs' trigger phrases (`GenerateState.trigger_phrases`): typing the
  start of one (two letters) offers it; Tab or Enter takes it, Ctrl+Space asks at any point.

The highlighter only mirrors the marker grammar of `domain/markers.py` for colouring; the domain
parser stays the judge of what is valid.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QStringListModel, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QToolTip, QWidget

from craftstudio.ui.curve_editor import COLORS

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]*)(?::[^<>]*)?>")
_ROLES = {"c": "content", "s": "style"}
_PHRASE_TRIM = " \t\r\n,;"
ERROR_COLOR = QColor("#e74c3c")
MIN_PREFIX = 2  # letters typed before trigger phrases are offered


def marker_regions(prompt: str) -> list[tuple[int, int, str, str]]:
    """(start, end, role, what) for every `<c>`/`<s>` tag ("tag") and the phrase it tags
    ("phrase"), 0-based, end exclusive. Tags of other names are left to the error underline."""
    tags = [(m, _ROLES.get(m.group(2).lower())) for m in _TAG.finditer(prompt)]
    regions: list[tuple[int, int, str, str]] = []
    cursor = 0
    open_span: tuple[int, str] | None = None  # (text start, role)
    for index, (match, role) in enumerate(tags):
        start, end = match.start(), match.end()
        if role is None:
            cursor = end
            continue
        regions.append((start, end, role, "tag"))
        closing = bool(match.group(1))
        if open_span is not None and closing and open_span[1] == role:
            regions.append((open_span[0], start, role, "phrase"))
            open_span = None
        elif not closing:
            later = [m for m, r in tags[index + 1:] if r == role]
            if later and later[0].group(1):
                open_span = (end, role)
            else:
                phrase_start, phrase_end = cursor, start
                text = prompt[phrase_start:phrase_end]
                phrase_start += len(text) - len(text.lstrip(_PHRASE_TRIM))
                phrase_end -= len(text) - len(text.rstrip(_PHRASE_TRIM))
                if phrase_end > phrase_start:
                    regions.append((phrase_start, phrase_end, role, "phrase"))
        cursor = end
    return regions


def error_range(prompt: str, position: int) -> tuple[int, int] | None:
    """The 0-based range to underline for a marker error at 1-based `position`: the tag
    starting there, else the character there."""
    if position < 1 or position > len(prompt):
        return None
    match = _TAG.match(prompt, position - 1)
    return (position - 1, match.end()) if match else (position - 1, position)


class MarkerHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self._regions: list[tuple[int, int, str, str]] = []
        self._text: str | None = None
        self._error: tuple[int, int] | None = None
        self.error_message = ""

    def set_error(self, message: str, position: int) -> None:
        prompt = self.document().toPlainText()
        error = error_range(prompt, position) if message else None
        if (error, message) != (self._error, self.error_message):
            self._error, self.error_message = error, message
            self.rehighlight()

    def error_span(self) -> tuple[int, int] | None:
        return self._error

    def formats(self) -> list[tuple[int, int, str, str]]:
        """The regions last coloured (for tests)."""
        return list(self._regions)

    def refresh(self) -> None:
        # Re-colouring changes formats, and QPlainTextEdit reports that as a text change too:
        # only a real edit of the text is worth another pass.
        text = self.document().toPlainText()
        if text == self._text:
            return
        self._text = text
        self._regions = marker_regions(text)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        block_start = self.currentBlock().position()
        block_end = block_start + len(text)
        # Phrases first, tags over them.
        for start, end, role, what in sorted(self._regions, key=lambda r: r[3] == "tag"):
            lo, hi = max(start, block_start), min(end, block_end)
            if hi > lo:
                self.setFormat(lo - block_start, hi - lo, _format(role, what))
        if self._error is not None:
            lo, hi = max(self._error[0], block_start), min(self._error[1], block_end)
            if hi > lo:
                for offset in range(lo - block_start, hi - block_start):
                    fmt = self.format(offset)
                    fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                    fmt.setUnderlineColor(ERROR_COLOR)
                    self.setFormat(offset, 1, fmt)


def _format(role: str, what: str) -> QTextCharFormat:
    fmt = QTextCharFormat()
    color = QColor(COLORS[role])
    if what == "tag":
        fmt.setForeground(color)
        fmt.setFontWeight(QFont.Weight.Bold)
    else:
        tint = QColor(color)
        tint.setAlpha(55)
        fmt.setBackground(tint)
    return fmt


class PromptEditor(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.highlighter = MarkerHighlighter(self.document())
        self.textChanged.connect(self.highlighter.refresh)
        self._phrases = QStringListModel(self)
        self.completer = QCompleter(self._phrases, self)
        self.completer.setWidget(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.activated[str].connect(self.insert_completion)
        self.setTabChangesFocus(True)

    # --- markers ---------------------------------------------------------------------------

    def set_marker_error(self, message: str, position: int) -> None:
        self.highlighter.set_error(message, position)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            span = self.highlighter.error_span()
            position = self.cursorForPosition(event.pos()).position()
            if span is not None and span[0] <= position <= span[1]:
                QToolTip.showText(event.globalPos(), self.highlighter.error_message, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    # --- completion ------------------------------------------------------------------------

    def set_trigger_phrases(self, phrases: list[str]) -> None:
        self._phrases.setStringList(list(phrases))

    def trigger_phrases(self) -> list[str]:
        return self._phrases.stringList()

    def word_before_cursor(self) -> str:
        cursor = self.textCursor()
        text = self.toPlainText()[:cursor.position()]
        match = re.search(r"[\w-]*$", text)
        return match.group(0) if match else ""

    def insert_completion(self, phrase: str) -> None:
        """Replace the word being typed by `phrase`."""
        cursor = self.textCursor()
        prefix = self.word_before_cursor()
        cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor, len(prefix))
        cursor.insertText(phrase)
        self.setTextCursor(cursor)
        self.completer.popup().hide()

    def offer_completion(self, force: bool = False) -> bool:
        """Show the trigger phrases matching the word before the cursor; True if any."""
        prefix = self.word_before_cursor()
        if not self._phrases.rowCount() or (len(prefix) < MIN_PREFIX and not force):
            self.completer.popup().hide()
            return False
        self.completer.setCompletionPrefix(prefix)
        model = self.completer.completionModel()
        if model.rowCount() == 0 or (model.rowCount() == 1 and model.index(0, 0).data() == prefix):
            self.completer.popup().hide()
            return False
        self.completer.popup().setCurrentIndex(model.index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(self.completer.popup().sizeHintForColumn(0)
                      + self.completer.popup().verticalScrollBar().sizeHint().width() + 8)
        self.completer.complete(rect)
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        popup = self.completer.popup()
        if popup.isVisible() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab):
            index = popup.currentIndex()
            if index.isValid():
                self.insert_completion(index.data())
                return
        if popup.isVisible() and event.key() == Qt.Key.Key_Escape:
            popup.hide()
            return
        force = event.key() == Qt.Key.Key_Space and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if force:
            self.offer_completion(force=True)
            return
        super().keyPressEvent(event)
        if event.text() and (event.text()[-1].isalnum() or event.text()[-1] in "_-"):
            self.offer_completion()
        elif popup.isVisible():
            popup.hide()
