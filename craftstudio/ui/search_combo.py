"""`SearchCombo`: pick a file from a list by typing any part of its name; a path field at heart.

Its entries are `Choice`s (label, path, details, thumbnail) from the library and the built-in
demo. Typing filters them (substring, case-insensitive, over label, details and file name) in a
completion pop-up: Enter takes the highlighted (or first) match, Esc gives up the search, and so
does leaving the field. A full path typed or pasted and confirmed with Enter is taken as it is,
so files outside the library still work (and "Browse…" beside the field is the other way).
Clearing the field (its clear button) chooses nothing.

The field shows the chosen entry's label; a path that is no entry shows elided in the middle
(`…/models/sd15/v1-5.safetensors` keeps the file name visible); the full path is the tooltip.
`path_chosen(str)` fires only when the user commits a choice; `set_path` never emits it.
(The shape follows krita-ai-diffusion's searchable combo box.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QPainter,
    QPalette,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from craftstudio.state.library_choices import Choice

PATH_ROLE = Qt.ItemDataRole.UserRole
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 1
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 2
ICON_SIZE = 16
MAX_THUMBNAILS = 300  # entries that get their picture: decoding thousands would stall the list


class ChoiceDelegate(QStyledItemDelegate):
    """A list row: the label, then its details (family, role, triggers) greyed after it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        super().paint(painter, option, index)
        detail = index.data(DETAIL_ROLE)
        if not detail:
            return
        label_width = option.fontMetrics.horizontalAdvance(index.data() or "")
        icon = option.decorationSize.width() + 8 if index.data(Qt.ItemDataRole.DecorationRole) is not None else 0
        rect = option.rect.adjusted(label_width + icon + 24, 0, -6, 0)
        if rect.width() < 40:
            return
        painter.save()
        color = option.palette.color(QPalette.ColorRole.PlaceholderText)
        if option.state & QStyle.StateFlag.State_Selected:
            color = option.palette.color(QPalette.ColorRole.HighlightedText)
        painter.setPen(color)
        text = option.fontMetrics.elidedText(detail, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


def elide_path(path: str, metrics: QFontMetrics, width: int) -> str:
    """`path` shortened in the middle to fit `width` pixels, the file name kept whole if it fits."""
    return metrics.elidedText(path, Qt.TextElideMode.ElideMiddle, max(width, 40))


class SearchCombo(QComboBox):
    path_chosen = Signal(str)

    def __init__(self, choices: Callable[[], list[Choice]], placeholder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._choices = choices
        self._icons: dict[str, QIcon] = {}  # by thumbnail file, decoded once
        self._path = ""
        self._tip = ""  # what the field is for, under the path in its tooltip
        self._searching = False
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(14)  # paths never widen the settings column
        self.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.setCompleter(None)
        self._model = QStandardItemModel(self)
        self.setModel(self._model)
        editor = self.lineEdit()
        editor.setPlaceholderText(placeholder)
        editor.setClearButtonEnabled(True)
        self._completer = QCompleter(self._model, self)
        self._completer.setCompletionRole(SEARCH_ROLE)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self._completer.setMaxVisibleItems(12)
        self._delegate = ChoiceDelegate(self)
        self.view().setItemDelegate(self._delegate)
        self._completer.popup().setItemDelegate(self._delegate)
        for view in (self.view(), self._completer.popup()):
            view.setMinimumWidth(360)  # room for the details beside the names
        editor.setCompleter(self._completer)
        self._completer.activated[QModelIndex].connect(self._commit_completion)
        editor.textEdited.connect(self._edited)
        # Keys reach the editor directly or through the combo (which forwards them unfiltered).
        self.installEventFilter(self)
        editor.installEventFilter(self)
        self._completer.popup().installEventFilter(self)
        self.activated.connect(self._commit_row)
        self.refresh()

    # --- value -----------------------------------------------------------------------------

    def path(self) -> str:
        return self._path

    def set_tip(self, text: str) -> None:
        """What the field is for: shown in the tooltip under the chosen path."""
        self._tip = text
        self._show_current()

    # The field reads like a path field: `text()` is the chosen path, `setText()` chooses one.
    def text(self) -> str:
        return self._path

    def setText(self, path: str) -> None:  # noqa: N802 (a line edit's name)
        self._choose(path.strip())

    def placeholderText(self) -> str:  # noqa: N802 (a line edit's name)
        return self.lineEdit().placeholderText()

    def set_path(self, path: str) -> None:
        """Show `path` (from state); emits nothing."""
        self._path = path.strip()
        self._searching = False
        self._show_current()

    def refresh(self) -> None:
        """Ask for the entries again (the library may have changed)."""
        self._model.clear()
        for row, choice in enumerate(self._choices()):
            item = QStandardItem(choice.label)
            item.setData(choice.path, PATH_ROLE)
            item.setData(choice.search_text, SEARCH_ROLE)
            item.setData(choice.detail, DETAIL_ROLE)
            item.setToolTip(f"{choice.label}\n{choice.detail}\n{choice.path}".replace("\n\n", "\n"))
            if choice.thumbnail and row < MAX_THUMBNAILS:
                item.setIcon(self._icon(choice.thumbnail))
            self._model.appendRow(item)
        self._show_current()

    def _icon(self, path: str) -> QIcon:
        if path not in self._icons:
            pixmap = QPixmap(path)
            self._icons[path] = QIcon() if pixmap.isNull() else QIcon(pixmap.scaled(
                ICON_SIZE * 2, ICON_SIZE * 2, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        return self._icons[path]

    def entries(self) -> list[tuple[str, str]]:
        """(label, path) of every entry, for tests and tooltips."""
        return [(self._model.item(r).text(), self._model.item(r).data(PATH_ROLE))
                for r in range(self._model.rowCount())]

    def matches(self, text: str) -> list[str]:
        """Labels of the entries a search for `text` finds (the pop-up's rows)."""
        needle = text.strip().lower()
        return [self._model.item(r).text() for r in range(self._model.rowCount())
                if needle in self._model.item(r).data(SEARCH_ROLE)]

    # --- showing ---------------------------------------------------------------------------

    def _row_of(self, path: str) -> int:
        if not path:
            return -1
        for row in range(self._model.rowCount()):
            if _same(self._model.item(row).data(PATH_ROLE), path):
                return row
        return -1

    def _show_current(self) -> None:
        row = self._row_of(self._path)
        self.blockSignals(True)
        self.setCurrentIndex(row)
        self.blockSignals(False)
        if row >= 0:
            text = self._model.item(row).text()
        else:
            editor = self.lineEdit()
            room = editor.width() - 30 if editor.width() > 60 else 260
            text = elide_path(self._path, editor.fontMetrics(), room) if self._path else ""
        self.lineEdit().setText(text)
        self.lineEdit().setCursorPosition(0)
        tip = "\n\n".join(t for t in (self._path, self._tip or self.lineEdit().placeholderText()) if t)
        self.setToolTip(tip)
        self.lineEdit().setToolTip(tip)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if not self._searching:
            self._show_current()  # the elided text depends on the width

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self._searching = False
        self.refresh()
        super().showPopup()

    # --- committing ------------------------------------------------------------------------

    def _edited(self, text: str) -> None:
        if not self._searching:
            self._searching = True
            self.refresh_quietly()
        if not text:
            # The clear button (or deleting everything): no file chosen.
            self._searching = False
            self._choose("")

    def refresh_quietly(self) -> None:
        """New entries for a search without touching the text being typed."""
        text = self.lineEdit().text()
        self.refresh()
        self.lineEdit().setText(text)

    def _commit_row(self, row: int) -> None:
        path = self._model.item(row).data(PATH_ROLE) if 0 <= row < self._model.rowCount() else None
        if path is not None and not self._searching:
            self._choose(path)

    def _commit_completion(self, index) -> None:
        path = index.data(PATH_ROLE)
        if path is None:
            return
        self._searching = False
        # QCompleter writes its completion text after this slot: show the label afterwards.
        QTimer.singleShot(0, self._show_current)
        self._choose(path)

    def _commit_typed(self) -> None:
        """Enter while searching: a typed path, else the highlighted match, else the first."""
        popup = self._completer.popup()
        index = popup.currentIndex() if popup.isVisible() else None
        if index is None or not index.isValid():
            model = self._completer.completionModel()
            index = model.index(0, 0) if model.rowCount() else None
        text = self.lineEdit().text().strip()
        popup.hide()
        if _looks_like_path(text):
            self._searching = False
            self._choose(text)
        elif index is not None and index.isValid():
            self._commit_completion(index)
        else:
            self.cancel_search()

    def _leave(self) -> None:
        """Focus went elsewhere mid-search: a typed path is kept (as in a path field), a search
        is given up."""
        if not self._searching:
            return
        text = self.lineEdit().text().strip()
        if _looks_like_path(text):
            self._searching = False
            self._choose(text)
        else:
            self.cancel_search()

    def cancel_search(self) -> None:
        self._completer.popup().hide()
        self._searching = False
        self._show_current()

    def _choose(self, path: str) -> None:
        self._path = path
        self._show_current()
        self.path_chosen.emit(path)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and self._searching:
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_search()
                return True
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._commit_typed()
                return True
        elif (event.type() == QEvent.Type.FocusOut and watched is self.lineEdit() and self._searching
              and not self._completer.popup().isVisible()):
            QTimer.singleShot(0, self._leave)
        return super().eventFilter(watched, event)


def _looks_like_path(text: str) -> bool:
    return bool(text) and ("/" in text or "\\" in text or Path(text).expanduser().exists())


def _same(a: str, b: str) -> bool:
    return a == b or Path(a).expanduser().absolute() == Path(b).expanduser().absolute()
