"""`GalleryPage`: every generated image in a thumbnail grid, grouped by day, and the viewer.

The grid is a `QListView` over `GalleryModel` (paged with fetchMore as it scrolls); tiles are
painted by a delegate from the `ThumbnailCache` (decoded off the GUI thread), day headers span
the whole row. Above it: search and filters. Double-click or Enter opens the viewer; dragging
tiles out gives their PNG files. Bound to `GalleryState`; only dialogs, the clipboard and the
file manager are done here.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QKeySequence, QPainter, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.curves import list_presets
from craftstudio.domain.generation import FusionMode
from craftstudio.state.gallery_state import HEADER_ROLE, PATH_ROLE, GalleryState
from craftstudio.ui.bindings import bind_line_edit
from craftstudio.ui.gallery_viewer import GalleryViewer
from craftstudio.ui.thumbnail_cache import ThumbnailCache

TILE = 132
HEADER_HEIGHT = 30
DAY_CHOICES = (("Any date", 0), ("Today", 1), ("Last 7 days", 7), ("Last 30 days", 30))
_Index = QModelIndex | QPersistentModelIndex


def paint_pixmap(painter: QPainter, pixmap, rect: QRect) -> None:
    """Draw `pixmap` centred in `rect`, aspect kept; enlarged without blurring (a 64×64 demo
    image stays crisp), reduced smoothly."""
    if pixmap is None or pixmap.isNull():
        return
    size = pixmap.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
    target = QRect(0, 0, size.width(), size.height())
    target.moveCenter(rect.center())
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, size.width() < pixmap.width())
    painter.drawPixmap(target, pixmap)


class GalleryDelegate(QStyledItemDelegate):
    def __init__(self, view: QListView, cache: ThumbnailCache) -> None:
        super().__init__(view)
        self.view = view
        self.cache = cache

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802 (Qt API)
        if index.data(HEADER_ROLE):
            # As wide as the row, so the grid breaks before each day.
            return QSize(max(TILE, self.view.viewport().width() - 2 * self.view.spacing() - 2), HEADER_HEIGHT)
        return QSize(TILE, TILE)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        palette = option.palette
        rect = option.rect
        painter.save()
        if index.data(HEADER_ROLE):
            font = painter.font()
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.1)
            painter.setFont(font)
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            painter.drawText(rect.adjusted(4, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, index.data())
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawLine(rect.bottomLeft(), rect.bottomRight())
            painter.restore()
            return
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(rect, palette.color(QPalette.ColorRole.Base))
        pixmap = self.cache.get(index.data(PATH_ROLE))
        if pixmap is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "…")
        elif pixmap.isNull():
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "file missing")
        else:
            paint_pixmap(painter, pixmap, rect.adjusted(3, 3, -3, -3))
        if selected:
            pen = painter.pen()
            pen.setColor(palette.color(QPalette.ColorRole.Highlight))
            pen.setWidth(3)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        painter.restore()


class GalleryGrid(QListView):
    """The wrapping tile grid; re-lays out on resize so day headers keep the full width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSpacing(4)
        self.setUniformItemSizes(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)


class GalleryPage(QWidget):
    def __init__(self, state: GalleryState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = ThumbnailCache(side=TILE * 2, parent=self)
        self.grid = GalleryGrid()
        self.grid.setModel(state.model)
        self.grid.setItemDelegate(GalleryDelegate(self.grid, self.cache))
        self.cache.ready.connect(lambda _path: self.grid.viewport().update())
        self.grid.doubleClicked.connect(lambda index: self.open_row(index.row()))
        self.grid.activated.connect(lambda index: self.open_row(index.row()))
        self.grid.selectionModel().selectionChanged.connect(self._update_buttons)
        self.viewer = GalleryViewer(state)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._grid_page())
        self.stack.addWidget(self.viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.stack)
        state.current_changed.connect(self._show_current)
        state.count_changed.connect(self._show_count)
        state.message_changed.connect(self.message_label.setText)
        state.error_changed.connect(self._show_error)
        QShortcut(QKeySequence.StandardKey.Delete, self.grid, self.delete_selected)
        self._show_count(state.count)
        self._update_buttons()

    def _grid_page(self) -> QWidget:
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search prompts…")
        self.search_edit.setClearButtonEnabled(True)
        bind_line_edit(self.state, "search", self.search_edit)
        self.model_combo = self._combo("Any model", "model_filter", self.state.models, Path)
        self.lora_combo = self._combo("Any LoRA", "lora_filter", self.state.loras, Path)
        self.mode_combo = self._combo("Any mode", "mode_filter", lambda: [m.value for m in FusionMode], None)
        self.curves_combo = self._combo("Any curves", "curves_filter", list_presets, None)
        self.date_combo = QComboBox()
        for text, days in DAY_CHOICES:
            self.date_combo.addItem(text, days)
        self.date_combo.activated.connect(
            lambda i: setattr(self.state, "days_filter", self.date_combo.itemData(i)))
        filters = QHBoxLayout()
        filters.addWidget(self.search_edit, 2)
        for combo in (self.model_combo, self.lora_combo, self.mode_combo, self.curves_combo, self.date_combo):
            filters.addWidget(combo, 1)

        self.count_label = QLabel()
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self._open_selected)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Copy the selected images, with their settings, to a folder")
        self.export_button.clicked.connect(self.export_selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the selected images to the library's trash folder")
        self.delete_button.clicked.connect(self.delete_selected)
        actions = QHBoxLayout()
        actions.addWidget(self.count_label)
        actions.addWidget(self.message_label, 1)
        for button in (self.open_button, self.export_button, self.delete_button):
            actions.addWidget(button)

        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.grid, 1)
        layout.addLayout(actions)
        return page

    def _combo(self, any_text: str, name: str, values, shorten) -> QComboBox:
        """A filter drop-down refilled from the history each time it opens."""
        combo = _RefreshingCombo(any_text, values, shorten)
        combo.activated.connect(lambda i: setattr(self.state, name, combo.itemData(i)))
        return combo

    # --- actions -------------------------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        rows = sorted(i.row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.state.model.entry(r).path for r in rows if not self.state.model.entry(r).is_header]

    def open_row(self, row: int) -> None:
        self.state.open_row(row)

    def _open_selected(self) -> None:
        rows = sorted(i.row() for i in self.grid.selectionModel().selectedIndexes())
        if rows:
            self.open_row(rows[0])

    def delete_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            self.state.delete(paths)

    def export_selected(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the selected images to", str(Path.home()))
        if folder:
            self.state.export(paths, folder)

    def _show_current(self, entry) -> None:
        self.stack.setCurrentIndex(0 if entry is None else 1)
        if entry is None:
            row = self.state.model.row_of_path(self.viewer.last_path) if self.viewer.last_path else -1
            if row >= 0:
                self.grid.setCurrentIndex(self.state.model.index(row))
            self.grid.setFocus()
        else:
            self.viewer.setFocus()

    def _show_count(self, count: int) -> None:
        self.count_label.setText(f"{count} generation{'s' if count != 1 else ''}")

    def _show_error(self, message: str) -> None:
        if message:
            self.message_label.setText(message)

    def _update_buttons(self, *_args: object) -> None:
        has = bool(self.grid.selectionModel().selectedIndexes())
        for button in (self.open_button, self.export_button, self.delete_button):
            button.setEnabled(has)


class _RefreshingCombo(QComboBox):
    """Filled when opened, not when the page is built: listing the models and LoRAs of a large
    history reads the whole table, and the page must open at once."""

    def __init__(self, any_text: str, values, shorten) -> None:
        super().__init__()
        self._any, self._values, self._shorten = any_text, values, shorten
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(8)
        self.addItem(any_text, "")

    def _fill(self) -> None:
        current = self.currentData()
        self.clear()
        self.addItem(self._any, "")
        for value in self._values():
            text = self._shorten(value).stem if self._shorten else value
            self.addItem(text or value, value)
            self.setItemData(self.count() - 1, value, Qt.ItemDataRole.ToolTipRole)
        index = self.findData(current)
        self.setCurrentIndex(max(index, 0))

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self._fill()
        super().showPopup()
