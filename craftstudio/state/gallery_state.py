"""`GalleryState`: every generated image, newest first, grouped by day, with filters and actions.

`GalleryModel` is a `QAbstractListModel` over the history store, paged with `fetchMore` (a
screenful at a time: opening a gallery of 10,000 images reads one page), with a day header row
before the first image of each day. One row per image (a batch's images are one generation with
several files). The state owns the filter (prompt text, model, LoRA, mode, curve preset, date),
the image shown in the viewer, and the actions: reuse all settings or the seed in Generate,
use as a LoRA's preview, delete to the trash, export, restore any PNG. Pixels are the ui's job
(thumbnails decoded off the GUI thread there); this layer hands out paths and records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
    Slot,
)

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.library.catalog import Catalog
from craftstudio.library.history_store import GalleryFilter, GenerationRecord
from craftstudio.library.image_params import read_image_params
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.properties import ObservableObject, Property, same_object

log = logging.getLogger(__name__)

PAGE_SIZE = 120  # a few screenfuls of tiles: the first page is read before the first paint
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
RECORD_ROLE = Qt.ItemDataRole.UserRole + 2
HEADER_ROLE = Qt.ItemDataRole.UserRole + 3  # True on a day header row
SEED_ROLE = Qt.ItemDataRole.UserRole + 4
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class GalleryEntry:
    """A row: a day header (`record` None, `day` its title) or one image of a generation."""

    day: str
    record: GenerationRecord | None = None
    path: str = ""
    seed: int = 0

    @property
    def is_header(self) -> bool:
        return self.record is None

    @property
    def request(self) -> GenerateRequest:
        """The request that makes exactly this image (its own seed, one image)."""
        assert self.record is not None
        return dataclasses.replace(self.record.request, seed=self.seed, batch_count=1)


def day_title(timestamp: float, today: dt.date | None = None) -> str:
    day = dt.datetime.fromtimestamp(timestamp).date()
    today = today or dt.date.today()
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    return day.strftime("%A %d %B %Y")


class GalleryModel(QAbstractListModel):
    def __init__(self, catalog: Catalog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history = catalog.history
        self._filter = GalleryFilter()
        self._entries: list[GalleryEntry] = []
        self._loaded = 0  # generations read so far
        self._total = 0  # generations matching the filter
        self._last_day = ""
        self.reload()

    @property
    def total(self) -> int:
        """Generations matching the filter (not rows: headers and batches differ)."""
        return self._total

    def set_filter(self, where: GalleryFilter) -> None:
        self._filter = where
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._entries, self._loaded, self._last_day = [], 0, ""
        self._total = self._history.count(self._filter)
        self.endResetModel()
        if self.canFetchMore(QModelIndex()):
            self.fetchMore(QModelIndex())

    def entry(self, row: int) -> GalleryEntry:
        return self._entries[row]

    def image_rows(self) -> list[int]:
        return [i for i, e in enumerate(self._entries) if not e.is_header]

    def row_of_path(self, path: str) -> int:
        return next((i for i, e in enumerate(self._entries) if e.path == path), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        return 0 if parent.isValid() else len(self._entries)

    def canFetchMore(self, parent: _Index) -> bool:  # noqa: N802 (Qt API)
        return not parent.isValid() and self._loaded < self._total

    def fetchMore(self, parent: _Index) -> None:  # noqa: N802 (Qt API)
        if parent.isValid():
            return
        records = self._history.page(self._filter, offset=self._loaded, limit=PAGE_SIZE)
        if not records:
            self._total = self._loaded
            return
        new: list[GalleryEntry] = []
        for record in records:
            day = day_title(record.created_at)
            if day != self._last_day:
                new.append(GalleryEntry(day))
                self._last_day = day
            for index, path in enumerate(record.outputs):
                new.append(GalleryEntry(day, record, path, record.seed + index))
        self.beginInsertRows(QModelIndex(), len(self._entries), len(self._entries) + len(new) - 1)
        self._entries.extend(new)
        self._loaded += len(records)
        self.endInsertRows()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.day if entry.is_header else Path(entry.path).name
        if role == Qt.ItemDataRole.ToolTipRole and entry.record is not None:
            request = entry.record.request
            return f"{request.prompt}\nseed {entry.seed} · {request.mode.value} · {request.steps} steps"
        if role == PATH_ROLE:
            return entry.path
        if role == RECORD_ROLE:
            return entry.record
        if role == HEADER_ROLE:
            return entry.is_header
        if role == SEED_ROLE:
            return entry.seed
        return None

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt API)
        return ["text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:  # noqa: N802 (Qt API)
        """Dragged images are their PNG files (file URLs): the desktop and other apps get the
        file itself, with the settings in its text chunks."""
        data = QMimeData()
        paths = [self._entries[i.row()].path for i in indexes if i.isValid() and not self._entries[i.row()].is_header]
        data.setUrls([QUrl.fromLocalFile(p) for p in dict.fromkeys(paths)])
        return data

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self._entries[index.row()].is_header:
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled


class GalleryState(ObservableObject):
    # The filter (not persisted: the gallery opens on everything).
    search = Property("")
    search_changed = Signal(str)
    model_filter = Property("")
    model_filter_changed = Signal(str)
    lora_filter = Property("")
    lora_filter_changed = Signal(str)
    mode_filter = Property("")
    mode_filter_changed = Signal(str)
    curves_filter = Property("")
    curves_filter_changed = Signal(str)
    days_filter = Property(0)  # only the last N days; 0 = any date
    days_filter_changed = Signal(int)

    current = Property(None, equal=same_object)  # the GalleryEntry in the viewer, None = grid
    current_changed = Signal(object)
    count = Property(0)  # generations matching the filter
    count_changed = Signal(int)
    message = Property("")  # the last action's outcome, one sentence
    message_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)
    # Something elsewhere (a compare cell) was opened here: bring the Gallery forward.
    show_requested = Signal()

    def __init__(self, catalog: Catalog, generate: GenerateState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.generate = generate
        self.model = GalleryModel(catalog, self)
        self.count = self.model.total
        for signal in (self.search_changed, self.model_filter_changed, self.lora_filter_changed,
                       self.mode_filter_changed, self.curves_filter_changed, self.days_filter_changed):
            signal.connect(self._apply_filter)
        generate.generation_recorded.connect(self._on_recorded)

    # --- filter and contents -------------------------------------------------------------------
    def filter(self) -> GalleryFilter:
        since = None
        if self.days_filter > 0:
            start = dt.datetime.combine(dt.date.today() - dt.timedelta(days=self.days_filter - 1), dt.time())
            since = start.timestamp()
        return GalleryFilter(text=self.search, model=self.model_filter, lora=self.lora_filter,
                             mode=self.mode_filter, curves=self.curves_filter, since=since)

    def models(self) -> list[str]:
        return self.catalog.history.models()

    def loras(self) -> list[str]:
        return self.catalog.history.loras()

    def refresh(self) -> None:
        self.model.set_filter(self.filter())
        self.count = self.model.total

    @Slot()
    def _apply_filter(self, *_args: object) -> None:
        self.refresh()

    @Slot(int)
    def _on_recorded(self, _record_id: int) -> None:
        self.refresh()

    # --- viewer --------------------------------------------------------------------------------
    def open_row(self, row: int) -> None:
        entry = self.model.entry(row)
        self.current = None if entry.is_header else entry

    def open_path(self, path: str) -> bool:
        """Show an image of the history in the viewer (e.g. a compare cell); False if unknown."""
        record = self.catalog.history.generation_for_output(str(path))
        if record is None:
            self.error = f"{Path(path).name} is not in the gallery's history."
            return False
        index = record.outputs.index(str(path))
        self.current = GalleryEntry(day_title(record.created_at), record, str(path), record.seed + index)
        self.show_requested.emit()
        return True

    def close_viewer(self) -> None:
        self.current = None

    def step(self, delta: int) -> bool:
        """Previous (-1) or next (+1) image in the grid's order; loads the next page if needed."""
        if self.current is None:
            return False
        rows = self.model.image_rows()
        row = self.model.row_of_path(self.current.path)
        position = rows.index(row) + delta if row in rows else 0
        while position >= len(rows) and self.model.canFetchMore(QModelIndex()):
            self.model.fetchMore(QModelIndex())
            rows = self.model.image_rows()
        if not 0 <= position < len(rows):
            return False
        self.current = self.model.entry(rows[position])
        return True

    # --- actions -------------------------------------------------------------------------------
    def reuse_all(self, entry: GalleryEntry | None = None) -> list[str]:
        """Every setting of the image into Generate (its own seed); returns what is missing here."""
        entry = entry or self.current
        if entry is None or entry.record is None:
            return []
        missing = self.generate.apply_request(entry.request)
        self.generate.status = f"Settings of {Path(entry.path).name} restored." + (
            f" Not found here: {', '.join(missing)}." if missing else "")
        self.generate.show_requested.emit()
        return missing

    def reuse_seed(self, entry: GalleryEntry | None = None) -> None:
        entry = entry or self.current
        if entry is None:
            return
        self.generate.seed, self.generate.random_seed = entry.seed, False
        self.message = f"Seed {entry.seed} set in Generate."

    def use_as_init_image(self, entry: GalleryEntry | None = None) -> None:
        """Start Generate's next runs from this image (restyle it, redo a region, enlarge it)."""
        entry = entry or self.current
        if entry is not None:
            self.generate.use_init_image(entry.path)

    def use_as_lora_preview(self, role: str, entry: GalleryEntry | None = None) -> bool:
        """Make the image the preview picture of its content or style LoRA in the library."""
        entry = entry or self.current
        if entry is None or entry.record is None:
            return False
        ref = getattr(entry.record.request, f"{role}_lora", None)
        item = None
        if ref is not None:
            item = (self.catalog.items.get(ref.sha256) if ref.sha256 else None) or self.catalog.items.by_path(ref.path)
        if item is None:
            self.error = f"This image's {role} LoRA is not in the library: scan or import it first."
            return False
        target = self.catalog.paths.previews / f"{item.id}{Path(entry.path).suffix}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.path, target)
        except OSError as exc:
            self.error = f"Could not copy {entry.path} to {target.parent}: {exc.strerror or exc}."
            return False
        self.catalog.items.update_fields(item.id, preview=str(target))
        self.message = f"{Path(entry.path).name} is now the preview of {item.title or item.name}."
        return True

    def delete(self, paths: list[str]) -> int:
        """Move images to the library's trash folder; returns how many were moved."""
        moved = 0
        for path in paths:
            try:
                self.catalog.history.delete_output(path, self.catalog.paths.trash)
                moved += 1
            except (OSError, UserError) as exc:
                self.error = f"Could not move {path} to the trash: {exc}."
        if self.current is not None and self.current.path in paths:
            self.current = None
        self.refresh()
        self.message = f"{moved} image{'s' if moved != 1 else ''} moved to {self.catalog.paths.trash}."
        return moved

    def export(self, paths: list[str], folder: str | Path) -> list[Path]:
        """Copy images (with their metadata) into `folder`; never overwrites a file there."""
        folder = Path(folder)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path in paths:
                target = folder / Path(path).name
                counter = 2
                while target.exists():
                    target = folder / f"{Path(path).stem}-{counter}{Path(path).suffix}"
                    counter += 1
                shutil.copy2(path, target)
                written.append(target)
        except OSError as exc:
            self.error = f"Could not export to {folder}: {exc.strerror or exc}; choose another folder."
        self.message = f"{len(written)} image{'s' if len(written) != 1 else ''} exported to {folder}."
        return written

    def restore_png(self, path: str | Path) -> list[str]:
        """Restore any PNG's settings (ours or A1111's) into Generate; LoRAs are matched in the
        library by hash, then by name. Returns what could not be restored (also in `message`)."""
        try:
            params = read_image_params(path, self.catalog.items)
        except UserError as exc:
            self.generate.error = str(exc)
            return [str(exc)]
        if params.request is None:
            self.generate.error = params.notes[0] if params.notes else f"{path} holds no generation parameters."
            return list(params.notes)
        request = params.request
        missing = self.generate.apply_request(request)
        problems = [*params.notes, *(f"{name} not found" for name in missing)]
        if params.ignored_settings:
            problems.append(f"settings CraftStudio has no equivalent for: {', '.join(params.ignored_settings)}")
        self.generate.error = ""
        self.generate.status = f"Settings restored from {Path(path).name}." + (
            " Not restored: " + "; ".join(problems) if problems else "")
        self.generate.show_requested.emit()
        return problems
