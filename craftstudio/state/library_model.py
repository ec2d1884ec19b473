"""`LibraryModel`: the catalog's items as a Qt item model, one page at a time.

A library may hold 20,000 LoRAs; the model never loads them all. `set_query` reads the number of
matches and the first page; the view asks for more (`canFetchMore`/`fetchMore`) as the user
scrolls, and each page is one indexed catalog query (`ItemQuery`). The grid (a `QListView`
showing column 0 as cards) and the list (a `QTableView` with sortable columns) share this one
model, so selection, paging and sorting behave the same in both: the model is a table because the
list view needs columns; the grid simply shows the first.

Dragging an item carries its file as a URL (other applications, the Generate page's file fields)
and its catalog id under `MIME_ITEM` (pages that want the item, e.g. to read its trigger phrase).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
)

from craftstudio.domain.family import Family
from craftstudio.library.item_query import ItemQuery
from craftstudio.library.item_store import ItemStore
from craftstudio.library.records import Item

PAGE = 100  # rows per catalog query: more than a screenful of cards at any window size
MIME_ITEM = "application/x-craftstudio-library-item"  # UTF-8 ids, one per line

ItemRole = Qt.ItemDataRole.UserRole + 1  # the `Item`
IdRole = Qt.ItemDataRole.UserRole + 2

# (sort key of ItemQuery, header) per column of the list view.
COLUMNS = (("name", "Name"), ("family", "Family"), ("role", "Role"), ("size", "Size"),
           ("added", "Added"), ("used", "Last used"))
KIND_LABELS = {"lora": "LoRA", "model": "Base model", "backbone": "Backbone"}

Index = QModelIndex | QPersistentModelIndex


def family_label(family: str) -> str:
    """The short badge text: SD1, SD2, SDXL, ?"""
    return {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL"}.get(family, "?")


def size_label(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def date_label(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "never"


class LibraryModel(QAbstractTableModel):
    def __init__(self, items: ItemStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = items
        self._query = ItemQuery()
        self._rows: list[Item] = []
        self._total = 0

    # ---------- what is shown
    @property
    def query(self) -> ItemQuery:
        return self._query

    @property
    def total(self) -> int:
        """How many items match the query (rows loaded so far: `rowCount()`)."""
        return self._total

    def set_query(self, query: ItemQuery) -> None:
        """Show the items `query` describes: the count and the first page. The catalog is read
        before the reset, so a failed query leaves the model as it was."""
        total = self._store.count_matching(query)
        rows = self._store.page(query, limit=PAGE, matches=total)
        self.beginResetModel()
        self._query, self._total, self._rows = query, total, rows
        self.endResetModel()

    def reload(self) -> None:
        """Read the query again (after a scan or an edit), keeping as many rows as were loaded."""
        loaded = max(len(self._rows), PAGE)
        total = self._store.count_matching(self._query)
        rows = self._store.page(self._query, limit=loaded, matches=total)
        self.beginResetModel()
        self._total, self._rows = total, rows
        self.endResetModel()

    def item(self, row: int) -> Item | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, item_id: str) -> int:
        """The row of a loaded item, -1 if it is not loaded (or does not match)."""
        for row, item in enumerate(self._rows):
            if item.id == item_id:
                return row
        return -1

    def refresh_item(self, item: Item) -> None:
        """An item changed (edit, preview): update its row in place."""
        row = self.row_of(item.id)
        if row >= 0:
            self._rows[row] = item
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    # ---------- paging
    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: N802 (Qt override)
        return not parent.isValid() and len(self._rows) < self._total

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: N802 (Qt override)
        if parent.isValid():
            return
        page = self._store.page(self._query, offset=len(self._rows), limit=PAGE, matches=self._total)
        if not page:
            self._total = len(self._rows)  # the catalog shrank meanwhile
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(page) - 1)
        self._rows.extend(page)
        self.endInsertRows()

    # ---------- Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        item = self.item(index.row()) if index.isValid() else None
        if item is None:
            return None
        if role == ItemRole:
            return item
        if role == IdRole:
            return item.id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cell(item, COLUMNS[index.column()][0])
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.path
        return None

    @staticmethod
    def _cell(item: Item, column: str) -> str:
        if column == "name":
            return item.label
        if column == "family":
            return Family(item.family).label if item.family in Family._value2member_map_ else item.family
        if column == "role":
            return item.role if item.kind == "lora" else KIND_LABELS.get(item.kind, item.kind)
        if column == "size":
            return size_label(item.size)
        if column == "added":
            return date_label(item.created_at)
        return date_label(item.last_used_at)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1] if 0 <= section < len(COLUMNS) else None
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """The list view's header asks for an order: query the catalog in that order."""
        if 0 <= column < len(COLUMNS):
            self.set_query(self._query.with_(sort=COLUMNS[column][0],
                                             descending=order == Qt.SortOrder.DescendingOrder))

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt override)
        return ["text/uri-list", MIME_ITEM]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:  # noqa: N802 (Qt override)
        items = []
        for index in indexes:
            item = self.item(index.row())
            if item is not None and item not in items:
                items.append(item)
        return item_mime_data(items)

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802 (Qt override)
        return Qt.DropAction.CopyAction | Qt.DropAction.LinkAction


def item_mime_data(items: list[Item]) -> QMimeData:
    """Mime data for dragging `items`: their files as URLs and their ids under `MIME_ITEM`."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(Path(item.path))) for item in items])
    mime.setData(MIME_ITEM, "\n".join(item.id for item in items).encode("utf-8"))
    return mime


def item_ids(mime: QMimeData) -> list[str]:
    """The catalog ids a drag carries (what a drop target on another page reads)."""
    if not mime.hasFormat(MIME_ITEM):
        return []
    return [line for line in bytes(mime.data(MIME_ITEM).data()).decode("utf-8").splitlines() if line]
