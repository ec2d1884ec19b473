"""`LibraryPage`: the Library area: find a LoRA or model among thousands and send it to Generate.

Search box and filters on top, the watched folders and the scan's progress under them, the cards
(or the sortable list, the trash, the duplicates, the files the scans could not use) in the
middle, the selected item's details on the right. Files and folders dropped on the page are
added (folders are watched). Everything is bound to `LibraryState`; the page adds the file
dialogs and opening a folder in the system's file manager.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.library_model import COLUMNS, MIME_ITEM, IdRole
from craftstudio.state.library_state import LibraryState
from craftstudio.ui.bindings import bind_check, bind_combo, bind_line_edit
from craftstudio.ui.library_card_delegate import LibraryCardDelegate
from craftstudio.ui.library_details import LibraryDetailsPanel

_PROGRESS_RANGE = 1000
KINDS = (("LoRAs", "lora"), ("Base models", "model"), ("Backbones", "backbone"), ("Everything", ""))
FAMILIES = (("Any family", ""), ("SD 1.x", "sd1"), ("SD 2.x", "sd2"), ("SDXL", "sdxl"), ("Unknown", "unknown"))
ROLES = (("Any role", ""), ("Content", "content"), ("Style", "style"), ("Other", "other"))
SORTS = (("Name", "name"), ("Family", "family"), ("Role", "role"), ("Size", "size"), ("Date added", "added"),
         ("Last used", "used"), ("Rating", "rating"))
SHOWS = (("Library", "items"), ("Trash", "trash"), ("Duplicates", "duplicates"), ("Problems", "problems"))
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


def _combo(entries: tuple[tuple[str, str], ...], tip: str) -> QComboBox:
    combo = QComboBox()
    for label, value in entries:
        combo.addItem(label, value)
    combo.setToolTip(tip)
    _narrow(combo)
    return combo


def _narrow(combo: QComboBox, letters: int = 6) -> None:
    """Let a filter combo shrink to a few letters, so the row fits a 1024-pixel window."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(letters)


class LibraryPage(QWidget):
    def __init__(self, state: LibraryState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setAcceptDrops(True)
        self.details = LibraryDetailsPanel(state)
        self.details.preview_from_file.connect(self._choose_preview)
        self.details.show_in_folder.connect(self._show_in_folder)

        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._build_search_row())
        column.addLayout(self._build_filter_row())
        column.addLayout(self._build_folder_row())
        self.views = QStackedWidget()
        self.views.addWidget(self._build_grid())
        self.views.addWidget(self._build_list())
        self.views.addWidget(self._build_problems())
        self.views.addWidget(self._build_duplicates())
        self.views.addWidget(self._build_empty())
        column.addWidget(self.views, 1)
        self.count_label = QLabel()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #e5484d;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        footer = QHBoxLayout()
        footer.addWidget(self.count_label)
        footer.addWidget(self.status_label, 1)
        column.addLayout(footer)
        column.addWidget(self.error_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(middle)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([640, 300])
        splitter.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._bind()

    # ---------- building
    def _build_search_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names, trigger phrases, tags, descriptions…")
        self.search.setClearButtonEnabled(True)
        self.show_combo = _combo(SHOWS, "What to show: the library, the trash, duplicate files, problems")
        self.show_combo.setMinimumContentsLength(13)  # "Problems (123)"
        self.view_toggle = QToolButton()
        self.view_toggle.setCheckable(True)
        self.view_toggle.setText("List")
        self.view_toggle.setToolTip("Show a sortable list instead of cards")
        self.sort_combo = _combo(SORTS, "Sort order")
        self.descending = QToolButton()
        self.descending.setCheckable(True)
        self.descending.setText("↓")
        self.descending.setToolTip("Reverse the order")
        row.addWidget(self.search, 1)
        row.addWidget(self.sort_combo)
        row.addWidget(self.descending)
        row.addWidget(self.show_combo)
        row.addWidget(self.view_toggle)
        return row

    def _build_filter_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.kind_combo = _combo(KINDS, "Kind of item")
        self.family_combo = _combo(FAMILIES, "Base model family")
        self.role_combo = _combo(ROLES, "Content or style LoRA")
        self.tag_combo = QComboBox()
        self.tag_combo.setToolTip("Tag")
        _narrow(self.tag_combo)
        self.fits = QCheckBox("Fits model")
        self.fits.setToolTip("Hide LoRAs and backbones made for another family than the Generate page's model")
        for widget in (self.kind_combo, self.family_combo, self.role_combo, self.tag_combo, self.fits):
            row.addWidget(widget)
        row.addStretch(1)
        return row

    def _build_folder_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.folders_button = QPushButton()
        self.folders_button.setToolTip("Watched folders: scanned on start and whenever their files change")
        self.folders_menu = QMenu(self)
        self.folders_button.setMenu(self.folders_menu)
        self.add_folder_button = QPushButton("Add folder…")
        self.rescan_button = QPushButton("Rescan")
        self.copy_action = self.folders_menu.addAction("Copy dropped files into the library")
        self.copy_action.setCheckable(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, _PROGRESS_RANGE)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.cancel_button = QPushButton("Cancel")
        row.addWidget(self.folders_button)
        row.addWidget(self.add_folder_button)
        row.addWidget(self.rescan_button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        self.folder_spacer = QWidget()
        row.addWidget(self.folder_spacer, 1)
        return row

    def _build_grid(self) -> QListView:
        grid = QListView()
        grid.setViewMode(QListView.ViewMode.IconMode)
        grid.setResizeMode(QListView.ResizeMode.Adjust)
        grid.setMovement(QListView.Movement.Static)
        grid.setUniformItemSizes(True)  # no per-row size query: 20,000 cards lay out at once
        grid.setSpacing(4)
        grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        grid.setDragEnabled(True)
        grid.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        grid.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        grid.verticalScrollBar().setSingleStep(24)
        grid.setMouseTracking(True)
        grid.setModel(self.state.model)
        self.delegate = LibraryCardDelegate(grid, self.state.thumbnails)
        grid.setItemDelegate(self.delegate)
        self.grid = grid
        return grid

    def _build_list(self) -> QTableView:
        table = QTableView()
        table.setModel(self.state.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = table.horizontalHeader()
        header.setSortIndicatorShown(True)  # the state sorts (a catalog query), not the view
        header.setSectionsClickable(True)
        table.setDragEnabled(True)
        table.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(24)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table = table
        return table

    def _build_problems(self) -> QTableWidget:
        self.problems_table = QTableWidget(0, 2)
        self.problems_table.setHorizontalHeaderLabels(["File", "Why it cannot be used"])
        self.problems_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.problems_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems_table.verticalHeader().hide()
        self.problems_table.setWordWrap(True)
        return self.problems_table

    def _build_duplicates(self) -> QTableWidget:
        self.duplicates_table = QTableWidget(0, 2)
        self.duplicates_table.setHorizontalHeaderLabels(["Item", "Copies of the same file"])
        self.duplicates_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.duplicates_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.duplicates_table.verticalHeader().hide()
        self.duplicates_table.itemSelectionChanged.connect(self._duplicate_selected)
        return self.duplicates_table

    def _build_empty(self) -> QWidget:
        self.empty_label = QLabel()
        self.empty_label.setObjectName("placeholderHint")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        return self.empty_label

    # ---------- binding
    def _bind(self) -> None:
        s = self.state
        bind_line_edit(s, "search_text", self.search)
        bind_combo(s, "show", self.show_combo)
        bind_combo(s, "kind", self.kind_combo)
        bind_combo(s, "family", self.family_combo)
        bind_combo(s, "role", self.role_combo)
        bind_combo(s, "sort", self.sort_combo)
        bind_check(s, "fits_model", self.fits)
        bind_check(s, "descending", self.descending)
        self.copy_action.setChecked(s.copy_on_import)
        self.copy_action.toggled.connect(lambda on: setattr(s, "copy_on_import", bool(on)))
        s.copy_on_import_changed.connect(self.copy_action.setChecked)
        self.view_toggle.setChecked(s.view_mode == "list")
        self.view_toggle.toggled.connect(lambda on: setattr(s, "view_mode", "list" if on else "grid"))
        s.view_mode_changed.connect(lambda mode: self.view_toggle.setChecked(mode == "list"))
        self._fill_tags(s.tags)
        s.tags_changed.connect(self._fill_tags)
        self.tag_combo.activated.connect(lambda _i: setattr(s, "tag", self.tag_combo.currentData() or ""))
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.rescan_button.clicked.connect(lambda: s.rescan())
        self.cancel_button.clicked.connect(s.cancel_scan)
        self.grid.selectionModel().currentChanged.connect(self._current_changed)
        self.table.selectionModel().currentChanged.connect(self._current_changed)
        self._show_sort()
        s.sort_changed.connect(self._show_sort)
        s.descending_changed.connect(self._show_sort)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._header_sort)
        self.grid.doubleClicked.connect(self._use_default)
        self.table.doubleClicked.connect(self._use_default)
        for signal in (s.show_changed, s.view_mode_changed, s.total_changed, s.folders_changed):
            signal.connect(self._update_view)
        s.folders_changed.connect(self._fill_folders)
        s.scanning_changed.connect(self._scanning)
        s.scan_progress_changed.connect(lambda f: self.progress.setValue(round(f * _PROGRESS_RANGE)))
        s.status_changed.connect(self.status_label.setText)
        s.error_changed.connect(self._show_error)
        s.total_changed.connect(self._update_count)
        s.model_family_changed.connect(self._update_count)
        s.fits_model_changed.connect(self._update_count)
        s.problems_changed.connect(self._fill_problems)
        s.duplicates_changed.connect(self._fill_duplicates)
        s.selected_changed.connect(self._follow_selection)
        self._fill_folders(s.folders)
        self._scanning(s.scanning)
        self._fill_problems(s.problems)
        self._show_error(s.error)
        self._update_count()
        self._update_view()

    def _show_sort(self, *_: object) -> None:
        keys = [key for key, _ in COLUMNS]
        header = self.table.horizontalHeader()
        header.blockSignals(True)
        if self.state.sort in keys:
            order = Qt.SortOrder.DescendingOrder if self.state.descending else Qt.SortOrder.AscendingOrder
            header.setSortIndicator(keys.index(self.state.sort), order)
        else:
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        header.blockSignals(False)

    def _header_sort(self, column: int, order: Qt.SortOrder) -> None:
        if 0 <= column < len(COLUMNS):
            self.state.descending = order == Qt.SortOrder.DescendingOrder
            self.state.sort = COLUMNS[column][0]

    def _fill_tags(self, tags: list[str]) -> None:
        current = self.state.tag
        self.tag_combo.clear()
        self.tag_combo.addItem("Any tag", "")
        for tag in tags:
            self.tag_combo.addItem(tag, tag)
        self.tag_combo.setCurrentIndex(max(0, self.tag_combo.findData(current)))

    def _fill_folders(self, folders: list[str]) -> None:
        count = len(folders)
        self.folders_button.setText(f"{count} watched folder{'s' if count != 1 else ''}")
        for action in self.folders_menu.actions():
            if action is not self.copy_action:
                self.folders_menu.removeAction(action)
        first = self.copy_action
        for folder in folders:
            sub = QMenu(folder, self.folders_menu)
            sub.addAction("Rescan", lambda f=folder: self.state.rescan([f]))
            sub.addAction("Open", lambda f=folder: QDesktopServices.openUrl(QUrl.fromLocalFile(f)))
            sub.addAction("Stop watching", lambda f=folder: self.state.remove_folder(f))
            self.folders_menu.insertMenu(first, sub)
        add = self.folders_menu.addAction("Add folder…", self._choose_folder)
        self.folders_menu.insertAction(first, add)
        self.folders_menu.insertSeparator(first)

    def _update_view(self, *_: object) -> None:
        s = self.state
        if s.show == "problems":
            self.views.setCurrentWidget(self.problems_table)
        elif s.show == "duplicates":
            self.views.setCurrentWidget(self.duplicates_table)
        elif s.total == 0:
            self.empty_label.setText(self._empty_text())
            self.views.setCurrentWidget(self.empty_label)
        else:
            self.views.setCurrentWidget(self.table if s.view_mode == "list" else self.grid)

    def _empty_text(self) -> str:
        s = self.state
        if s.show == "trash":
            return "The trash is empty."
        if not s.folders and not s.catalog.items.count(None):
            return ("Your library is empty.\n\nAdd a folder of LoRAs or models (Add folder…),\n"
                    "or drop .safetensors files and folders here.")
        if s.scanning:
            return "Scanning your folders…"
        return "Nothing matches.\n\nClear the search or a filter" + \
            (", or untick \"Fits current model\"." if s.fits_model and s.model_family else ".")

    def _update_count(self, *_: object) -> None:
        s = self.state
        text = f"{s.total:,} item{'s' if s.total != 1 else ''}"
        if s.fits_model and s.model_family:
            text += f" · fit {s.model_family.upper()}"
        self.count_label.setText(text)
        self.count_label.setToolTip(s.fits_note)

    def _scanning(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.folder_spacer.setVisible(not busy)
        self.rescan_button.setEnabled(not busy)
        if not busy:
            self.progress.setValue(0)
        self._update_view()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _fill_problems(self, problems: list) -> None:
        table = self.problems_table
        table.setRowCount(len(problems))
        for row, entry in enumerate(problems):
            path = QTableWidgetItem(entry.name)
            path.setToolTip(entry.path)
            table.setItem(row, 0, path)
            table.setItem(row, 1, QTableWidgetItem(entry.reason or entry.status))
        table.resizeColumnToContents(0)
        label = f"Problems ({len(problems)})" if problems else "Problems"
        self.show_combo.setItemText(self.show_combo.findData("problems"), label)

    def _fill_duplicates(self, duplicates: list) -> None:
        table = self.duplicates_table
        table.setRowCount(len(duplicates))
        for row, (item, paths) in enumerate(duplicates):
            name = QTableWidgetItem(item.label)
            name.setData(IdRole, item.id)
            table.setItem(row, 0, name)
            table.setItem(row, 1, QTableWidgetItem("\n".join(paths)))
        table.resizeColumnToContents(0)
        table.resizeRowsToContents()
        if not duplicates:
            table.setRowCount(1)
            table.setItem(0, 0, QTableWidgetItem("No duplicates: every file in the library is unique."))

    # ---------- forwarding
    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.state.select(current.data(IdRole) if current.isValid() else None)

    def _follow_selection(self, item) -> None:
        """Keep grid and list on the same item (they share the model, not the selection)."""
        if item is None:
            return
        row = self.state.model.row_of(item.id)
        for view in (self.grid, self.table):
            if row >= 0 and view.currentIndex().row() != row:
                view.setCurrentIndex(self.state.model.index(row, 0))

    def _duplicate_selected(self) -> None:
        items = self.duplicates_table.selectedItems()
        item_id = items[0].data(IdRole) if items else None
        if item_id:
            self.state.select(item_id)

    def _use_default(self, index: QModelIndex) -> None:
        item = self.state.selected
        if item is None:
            return
        use = {"model": "model", "backbone": "backbone"}.get(item.kind, "style" if item.role == "style" else "content")
        self.state.use_as(use)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Watch a folder of models or LoRAs")
        if folder:
            self.state.add_folder(folder)

    def _choose_preview(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a preview image", "",
                                              "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.state.previews.set_from_image(path)

    def _show_in_folder(self) -> None:
        folder = self.state.folder_of_selected()
        if folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    # ---------- drops: files and folders from the file manager
    @staticmethod
    def _droppable(event: QDragEnterEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if mime.hasFormat(MIME_ITEM):  # a card dragged within the page
            return []
        paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
        return [p for p in paths if Path(p).is_dir() or p.lower().endswith(MODEL_SUFFIXES)]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if self._droppable(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = self._droppable(event)
        if paths:
            event.acceptProposedAction()
            self.state.import_paths(paths)
