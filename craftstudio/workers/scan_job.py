"""`ScanJob` and `ImportJob`: scan folders (watched ones, File › Add folder…, File › Scan library
folders), or add dropped files, on the job runner.

Scans are long (hashing every new file), so they run on the shared `JobRunner` like generations:
progress goes to the page's bar, Cancel stops between two files, and everything done before a
cancel stays in the catalog (files are committed in short batches, a cancel commits the last). After a scan that changed the
catalog the planner statistics are refreshed, so the page's first screenful stays a quick query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.library.catalog import Catalog
from craftstudio.library.scanner import ScanReport

REFRESH_STATISTICS_AFTER = 200  # items added or updated by one scan


class ScanJob:
    """Scan `folders` (recursively, incrementally) into the library; returns the `ScanReport`.

    `catalog`: the app's shared catalog, or the home folder of one to open for this scan only
    (opened inside `run`: an SQLite connection belongs to the thread that made it)."""

    def __init__(self, catalog: Catalog | Path, folders: list[str | Path]) -> None:
        self.catalog = catalog
        self.folders = [str(f) for f in folders]

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> ScanReport:
        existing = [f for f in self.folders if Path(f).exists()]
        if not existing:
            raise UserError(f"The watched folder {self.folders[0]} does not exist any more: reconnect "
                            "its drive or remove it from the watched folders.")
        if isinstance(self.catalog, Catalog):
            return _scan(self.catalog, existing, progress, cancel)
        with Catalog.open(self.catalog) as catalog:
            return _scan(catalog, existing, progress, cancel)


def _scan(catalog: Catalog, folders: list[str], progress: ProgressCallback, cancel: CancelToken) -> ScanReport:
    report = catalog.scan(folders, progress=progress, cancel=cancel)
    if report.added + report.updated >= REFRESH_STATISTICS_AFTER:
        catalog.items.analyse()
    return report


def describe_report(report: ScanReport) -> str:
    """One line for the status bar."""
    parts = [f"{report.added} added", f"{report.updated} updated", f"{report.unchanged} unchanged"]
    if report.unreadable:
        parts.append(f"{len(report.unreadable)} unreadable")
    folders = ", ".join(Path(root).name or root for root in report.roots)
    return f"Scanned {folders}: {report.total} files, {', '.join(parts)}."


@dataclass
class ImportOutcome:
    """What an `ImportJob` did: the ids added and, per file that could not be added, the reason."""

    item_ids: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class ImportJob:
    """Add files dropped on the page: registered where they are, or copied into the library."""

    def __init__(self, catalog: Catalog, paths: list[str | Path], *, copy: bool = False) -> None:
        self.catalog = catalog
        self.paths = [str(p) for p in paths]
        self.copy = copy

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> ImportOutcome:
        outcome = ImportOutcome()
        for index, path in enumerate(self.paths):
            cancel.raise_if_cancelled()
            try:
                result = self.catalog.import_file(path, in_place=not self.copy)
            except UserError as exc:
                outcome.problems.append((path, str(exc)))
            else:
                if result.item is not None:
                    outcome.item_ids.append(result.item.id)
            progress(ProgressEvent("import", index + 1, len(self.paths), message=path))
        return outcome
