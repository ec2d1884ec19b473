"""`LibraryState`: the view-model of the Library page.

Owns what the page shows and does; the widgets only show it and forward clicks:

- the items (`model`, a paged `LibraryModel`) for the search text and filters, re-queried
  `SEARCH_DEBOUNCE_MS` after the last keystroke; "fits the current model" (on by default) hides
  LoRAs and backbones of another family than the Generate page's base model, as A1111 does;
- watched folders (persisted in the settings file), scanned on start, when one changes on disk
  (`FolderWatch`) and on request, as `ScanJob`s on the shared job runner, with progress, Cancel
  and the files the scan could not use (`problems`); dropped files become an `ImportJob`;
- the selected item and its edits (title, role, triggers, tags, notes, rating), written to the
  catalog at once;
- "Use as ..." through `GenerateState.use_lora/use_model/use_backbone`, preview images
  (`LibraryPreviews`), trash and restore, the duplicates.

Errors a user can cause land in `error` as one sentence; nothing raises out of here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.family import Family
from craftstudio.domain.progress import ProgressEvent
from craftstudio.library.catalog import Catalog
from craftstudio.library.item_query import ItemQuery
from craftstudio.library.records import Item
from craftstudio.library.scanner import ScanReport
from craftstudio.state.folder_watch import FolderWatch
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.library_model import KIND_LABELS, LibraryModel
from craftstudio.state.library_previews import LibraryPreviews, model_family
from craftstudio.state.properties import ObservableObject, Property, persisted, restore, same_object
from craftstudio.state.settings_file import SettingsFile
from craftstudio.workers.generate_job import GenerateFn
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.scan_job import ImportJob, ImportOutcome, ScanJob
from craftstudio.workers.thumbnail_loader import ThumbnailLoader

log = logging.getLogger(__name__)

SETTINGS_SECTION = "library"
SEARCH_DEBOUNCE_MS = 150
SHOWS = ("items", "trash", "duplicates", "problems")
# "Use as ...": the kind of item each use takes, and the use in words.
_USES = {"content": ("lora", "the content LoRA"), "style": ("lora", "the style LoRA"),
         "model": ("model", "the base model"), "backbone": ("backbone", "the CRAFT backbone")}
# While a scan runs, the first screenful fills as cards are found (a reload every so many files);
# after that the view is left alone until the scan ends, so scrolling is never reset under the user.
_FILL_FIRST_PAGE_EVERY = 25
_FIRST_SCREENFUL = 60


class LibraryState(ObservableObject):
    # Remembered between sessions.
    folders = Property([], persist=True)  # watched folders
    folders_changed = Signal(object)
    sort = Property("name", persist=True)
    sort_changed = Signal(str)
    descending = Property(False, persist=True)
    descending_changed = Signal(bool)
    fits_model = Property(True, persist=True)
    fits_model_changed = Signal(bool)
    view_mode = Property("grid", persist=True)  # grid | list
    view_mode_changed = Signal(str)
    copy_on_import = Property(False, persist=True)  # dropped files: copy into the library
    copy_on_import_changed = Signal(bool)

    # What is shown.
    search_text = Property("")
    search_text_changed = Signal(str)
    kind = Property("lora")  # "" = every kind
    kind_changed = Signal(str)
    family = Property("")
    family_changed = Signal(str)
    role = Property("")
    role_changed = Signal(str)
    tag = Property("")
    tag_changed = Signal(str)
    show = Property("items")  # one of SHOWS
    show_changed = Signal(str)
    total = Property(0)  # items matching
    total_changed = Signal(int)
    model_family = Property("")  # family of the Generate page's model, "" if unknown
    model_family_changed = Signal(str)
    selected = Property(None)  # the selected Item
    selected_changed = Signal(object)
    tags = Property([], equal=same_object)  # tag names in use, most used first
    tags_changed = Signal(object)
    problems = Property([], equal=same_object)  # FileEntry of files the scans could not use
    problems_changed = Signal(object)
    duplicates = Property([], equal=same_object)  # (Item, [paths]) with more than one copy
    duplicates_changed = Signal(object)

    # What is happening.
    scanning = Property(False)
    scanning_changed = Signal(bool)
    scan_progress = Property(0.0)
    scan_progress_changed = Signal(float)
    status = Property("")
    status_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)

    def __init__(self, catalog: Catalog, runner: JobRunner, generate: GenerateState, *,
                 settings: SettingsFile | None = None, thumbnail_cache: Path | None = None,
                 engine: GenerateFn | None = None, watch: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.engine = engine  # for "Make a preview"; None: the real engine
        self.generate = generate
        self.runner = runner
        self._settings = settings
        self.model = LibraryModel(catalog.items, self)
        self.thumbnails = ThumbnailLoader(thumbnail_cache, parent=self)
        self.previews = LibraryPreviews(self)
        self.watch = FolderWatch(self) if watch else None
        self._scan_job: int | None = None
        self._import_job: int | None = None
        self._queued_scan: list[str] = []
        self._scan_seen = 0
        if settings is not None:
            restore(self, settings.section(SETTINGS_SECTION))
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search_text_changed.connect(lambda _text: self._search_timer.start())
        for signal in (self.kind_changed, self.family_changed, self.role_changed, self.tag_changed,
                       self.fits_model_changed, self.show_changed, self.sort_changed, self.descending_changed):
            signal.connect(self._filters_changed)
        self.model.modelReset.connect(lambda: setattr(self, "total", self.model.total))
        generate.model_changed.connect(self._generate_model_changed)
        if self.watch is not None:
            self.watch.changed.connect(self.rescan)
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    # ---------- start-up
    def start(self, *, scan: bool = True) -> None:
        """Show the catalog, then rescan the watched folders (incremental) and watch them."""
        self.model_family = model_family(self.catalog, self.generate.model)
        self.refresh()
        self.tags = [t for t, _ in self.catalog.items.tag_counts()]
        self._refresh_problems()
        if self.watch is not None:
            self.watch.watch(self.folders)
        if scan and self.folders:
            self.rescan(self.folders)

    def save_settings(self) -> None:
        if self._settings is not None:
            self._settings.save_section(SETTINGS_SECTION, persisted(self))

    def shutdown(self) -> None:
        self.save_settings()
        if self.watch is not None:
            self.watch.stop()
        self._search_timer.stop()
        self.thumbnails.shutdown()

    # ---------- what is shown
    def query(self) -> ItemQuery:
        return ItemQuery(kind=self.kind or None, family=self.family or None, role=self.role or None,
                         text=self.search_text, tag=self.tag or None,
                         fits_family=self.model_family if self.fits_model and self.model_family else None,
                         trashed=self.show == "trash", sort=self.sort, descending=self.descending)

    @Slot()
    def refresh(self) -> None:
        """Query the catalog now (the search box calls this after its debounce)."""
        self._search_timer.stop()
        try:
            self.model.set_query(self.query())
        except UserError as exc:
            self.error = str(exc)
        self.total = self.model.total
        if self.show == "duplicates":
            self.duplicates = self.catalog.items.duplicates()

    def _reload(self) -> None:
        try:
            self.model.reload()
        except UserError as exc:  # e.g. the library is busy in another process
            self.error = str(exc)

    def flush_search(self) -> None:
        """Apply a pending search at once (instead of after the debounce)."""
        if self._search_timer.isActive():
            self.refresh()

    def _filters_changed(self, *_: Any) -> None:
        self.save_settings()
        self.refresh()

    def _generate_model_changed(self, path: str) -> None:
        family = model_family(self.catalog, path)
        if family != self.model_family:
            self.model_family = family
            if self.fits_model:
                self.refresh()

    @property
    def fits_note(self) -> str:
        """What the "fits the current model" filter does now, in words."""
        if not self.fits_model:
            return ""
        if not self.model_family:
            return "The current model's family is unknown: every LoRA is shown."
        return f"Showing what fits {Family(self.model_family).label} (and LoRAs of unknown family)."

    # ---------- selection and edits
    def select(self, item_id: str | None) -> None:
        self.selected = self.catalog.items.get(item_id) if item_id else None

    def _edited(self, item: Item) -> None:
        self.selected = item
        self.model.refresh_item(item)

    def _edit(self, **fields: Any) -> None:
        item = self._require_selected()
        if item is None:
            return
        try:
            self._edited(self.catalog.items.edit(item.id, **fields))
        except UserError as exc:
            self.error = str(exc)

    def set_title(self, title: str) -> None:
        self._edit(title=title.strip() or None)

    def set_role(self, role: str) -> None:
        self._edit(role=role)

    def set_triggers(self, text: str) -> None:
        self._edit(triggers=[t.strip() for t in text.split(",")])

    def set_notes(self, notes: str) -> None:
        self._edit(notes=notes)

    def set_rating(self, rating: int) -> None:
        self._edit(rating=int(rating))

    def set_tags(self, text: str) -> None:
        """The selected item's tags, comma-separated (added and removed to match)."""
        item = self._require_selected()
        if item is None:
            return
        wanted = [" ".join(t.lower().split()) for t in text.split(",") if t.strip()]
        updated = self.catalog.items.change_tags(item.id, add=wanted,
                                                 remove=[t for t in item.tags if t not in wanted])
        self._edited(updated)
        self.tags = [t for t, _ in self.catalog.items.tag_counts()]

    def _require_selected(self) -> Item | None:
        if self.selected is None:
            self.error = "Select an item in the library first."
        return self.selected

    # ---------- use it
    def use_as(self, use: str) -> bool:
        """Send the selected item to Generate: `content`, `style` (LoRAs), `model`, `backbone`."""
        item = self._require_selected()
        if item is None:
            return False
        expected, what = _USES[use]
        if item.kind != expected:
            self.error = f"{item.label} is a {KIND_LABELS.get(item.kind, item.kind)}: it cannot be used as {what}."
            return False
        if item.missing or not Path(item.path).exists():
            self.error = f"{item.path} is missing: reconnect its drive or rescan its folder."
            return False
        self.error = ""
        if expected == "lora":
            self.generate.use_lora(item.path, use, item.triggers[0] if item.triggers else "")
        elif use == "model":
            self.generate.use_model(item.path)
        else:
            self.generate.use_backbone(item.path)
        self.catalog.items.mark_used(item.id)
        self.status = f"{item.label} is in Generate."
        return True

    def folder_of_selected(self) -> str | None:
        """The folder holding the selected item's file ("Show in folder")."""
        item = self._require_selected()
        return str(Path(item.path).parent) if item else None

    def trash(self) -> None:
        item = self._require_selected()
        if item is None:
            return
        try:
            self.catalog.remove(item.id)
        except UserError as exc:
            self.error = str(exc)
            return
        self.status = f"{item.label} is in the trash (Show: Trash to restore it)."
        self.selected = None
        self._reload()
        self.total = self.model.total

    def restore(self) -> None:
        item = self._require_selected()
        if item is None:
            return
        try:
            self.catalog.restore(item.id)
        except UserError as exc:
            self.error = str(exc)
            return
        self.status = f"{item.label} is back in the library."
        self.selected = None
        self._reload()
        self.total = self.model.total

    # ---------- folders and scans
    def add_folder(self, folder: str | Path) -> None:
        path = str(Path(folder).expanduser().absolute())
        if not Path(path).is_dir():
            self.error = f"{path} is not a folder: choose a folder of models or LoRAs."
            return
        if path not in self.folders:
            self.folders = [*self.folders, path]
            self.save_settings()
            if self.watch is not None:
                self.watch.watch(self.folders)
        self.rescan([path])

    def remove_folder(self, folder: str) -> None:
        """Stop watching a folder (its items stay in the catalog)."""
        self.folders = [f for f in self.folders if f != folder]
        self.save_settings()
        if self.watch is not None:
            self.watch.watch(self.folders)

    def rescan(self, folders: list[str] | None = None) -> None:
        """Scan `folders` (default: every watched folder) as a job; queued behind a running scan."""
        folders = list(folders if folders is not None else self.folders)
        if not folders:
            self.status = "Add a folder to scan first."
            return
        if self.runner.is_shut_down:  # closing: a late watcher event has nothing to start
            return
        if self._scan_job is not None:
            self._queued_scan.extend(f for f in folders if f not in self._queued_scan)
            return
        self.error = ""
        self._scan_seen = 0
        self._scan_job = self.runner.submit(ScanJob(self.catalog, folders))
        self.scanning, self.scan_progress = True, 0.0
        self.status = "Scanning…"

    def cancel_scan(self) -> None:
        self._queued_scan.clear()
        for job in (self._scan_job, self._import_job):
            if job is not None:
                self.runner.cancel(job)
        self.status = "Cancelling…"

    def import_paths(self, paths: list[str]) -> None:
        """Files and folders dropped on the page: folders are watched, files added."""
        files = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir() and not (path / "model_index.json").is_file():
                self.add_folder(path)
            else:
                files.append(str(path))
        if not files:
            return
        self._import_job = self.runner.submit(ImportJob(self.catalog, files, copy=self.copy_on_import))
        self.scanning, self.scan_progress = True, 0.0
        self.status = f"Adding {len(files)} file{'s' if len(files) != 1 else ''}…"

    def _refresh_problems(self) -> None:
        self.problems = sorted(self.catalog.files("unreadable") + self.catalog.files("other"),
                               key=lambda f: f.path)

    # ---------- job signals
    def _mine(self, job_id: int) -> bool:
        return job_id in (self._scan_job, self._import_job)

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: object) -> None:
        if not self._mine(job_id) or not isinstance(event, ProgressEvent):
            return
        self.scan_progress = event.fraction
        verb = "Scanning" if job_id == self._scan_job else "Adding"
        self.status = f"{verb} {event.step:,} of {event.total:,}: {Path(event.message).name}"
        self._scan_seen += 1
        if self._scan_seen % _FILL_FIRST_PAGE_EVERY == 0 and self.model.rowCount() < _FIRST_SCREENFUL:
            self._reload()  # the first cards appear while the scan goes on
            self.total = self.model.total

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        if job_id == self._scan_job:
            assert isinstance(result, ScanReport)
            problems = len(result.unreadable) + len(result.other)
            self.status = (f"Scanned {result.total:,} files in {result.seconds:.1f} s: {result.added:,} added, "
                           f"{result.updated:,} updated, {result.unchanged:,} unchanged"
                           + (f", {problems:,} could not be used (see Problems)." if problems else "."))
            self._scan_done()
        elif job_id == self._import_job:
            assert isinstance(result, ImportOutcome)
            self._import_job = None
            added = len(result.item_ids)
            self.status = f"Added {added} item{'s' if added != 1 else ''}."
            if result.problems:
                self.error = result.problems[0][1] + (f" ({len(result.problems) - 1} more in the log)"
                                                      if len(result.problems) > 1 else "")
                for path, reason in result.problems:
                    log.info("not added: %s: %s", path, reason)
            self._jobs_done()

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if self._mine(job_id):
            self.error = message
            self._scan_done() if job_id == self._scan_job else self._import_done()

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if self._mine(job_id):
            self.status = "Cancelled; what was scanned is kept."
            self._scan_done() if job_id == self._scan_job else self._import_done()

    def _import_done(self) -> None:
        self._import_job = None
        self._jobs_done()

    def _scan_done(self) -> None:
        self._scan_job = None
        queued, self._queued_scan = self._queued_scan, []
        self._jobs_done()
        if queued:
            self.rescan(queued)

    def _jobs_done(self) -> None:
        busy = self._scan_job is not None or self._import_job is not None
        self.scanning = busy
        self.scan_progress = 0.0 if not busy else self.scan_progress
        self._reload()
        self.total = self.model.total
        self.tags = [t for t, _ in self.catalog.items.tag_counts()]
        self._refresh_problems()
        if self.show == "duplicates":
            self.duplicates = self.catalog.items.duplicates()
