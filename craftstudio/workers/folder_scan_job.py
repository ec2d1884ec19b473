"""`FolderScanJob`: scan folders into the library catalog on the worker thread.

Used by File › Add folder… and File › Scan library folders. The catalog is opened inside `run`
(SQLite connections belong to the thread that made them) and closed when the scan ends.
A scan is incremental and resumable (library/scanner.py), so cancelling one loses nothing.
"""

from __future__ import annotations

from pathlib import Path

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.progress import ProgressCallback
from craftstudio.library.catalog import Catalog
from craftstudio.library.scanner import ScanReport


class FolderScanJob:
    def __init__(self, folders: list[Path], home: Path) -> None:
        self.folders = [Path(f) for f in folders]
        self.home = Path(home)

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> ScanReport:
        with Catalog.open(self.home) as catalog:
            return catalog.scan(self.folders, progress=progress, cancel=cancel)


def describe_report(report: ScanReport) -> str:
    """One line for the status bar."""
    parts = [f"{report.added} added", f"{report.updated} updated", f"{report.unchanged} unchanged"]
    if report.unreadable:
        parts.append(f"{len(report.unreadable)} unreadable")
    folders = ", ".join(Path(root).name or root for root in report.roots)
    return f"Scanned {folders}: {report.total} files, {', '.join(parts)}."
