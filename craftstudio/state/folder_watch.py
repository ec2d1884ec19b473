"""`FolderWatch`: notice files appearing in watched folders, and say so once things settle.

`QFileSystemWatcher` watches single directories, not trees, so every sub-folder of a watched
folder is watched too (up to `MAX_DIRECTORIES`; a larger tree is still rescanned on start and
by the Rescan button). A copy of 200 LoRAs fires hundreds of change events; they are gathered
for `DEBOUNCE_MS` after the last one and reported as one `changed(roots)`, so the library runs
one incremental scan, not hundreds.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal, Slot

DEBOUNCE_MS = 1500
MAX_DIRECTORIES = 2000


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class FolderWatch(QObject):
    changed = Signal(object)  # list[str]: the watched roots with changes under them

    def __init__(self, parent: QObject | None = None, *, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._on_directory_changed)
        self._roots: list[str] = []
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._report)

    @property
    def roots(self) -> list[str]:
        return list(self._roots)

    def watch(self, roots: list[str]) -> None:
        """Watch exactly these folders (and their sub-folders)."""
        self._roots = [str(Path(r)) for r in roots]
        old = self._watcher.directories()
        if old:
            self._watcher.removePaths(old)
        self._add_trees(self._roots)

    def _add_trees(self, roots: list[str]) -> None:
        known = set(self._watcher.directories())
        budget = MAX_DIRECTORIES - len(known)
        found: list[str] = []
        stack = [r for r in roots if os.path.isdir(r)]
        visited = 0
        while stack and budget > len(found) and visited < 2 * MAX_DIRECTORIES:
            folder = stack.pop()
            visited += 1
            if folder not in known:  # known folders are walked too: a new one may be inside
                found.append(folder)
            try:
                with os.scandir(folder) as entries:
                    stack.extend(e.path for e in entries if not e.name.startswith(".") and e.is_dir())
            except OSError:
                continue
        if found:
            self._watcher.addPaths(found)

    @Slot(str)
    def _on_directory_changed(self, path: str) -> None:
        for root in self._roots:
            if _under(path, root):
                self._dirty.add(root)
        if self._dirty:
            self._timer.start()  # restarts: report once the burst is over

    def stop(self) -> None:
        """Watch nothing and drop pending changes (shutdown)."""
        self._timer.stop()
        self._dirty.clear()
        self.watch([])

    def flush(self) -> None:
        """Report pending changes now (tests, shutdown)."""
        if self._dirty:
            self._timer.stop()
            self._report()

    @Slot()
    def _report(self) -> None:
        roots = sorted(self._dirty)
        self._dirty.clear()
        self._add_trees(roots)  # new sub-folders are watched from now on
        self.changed.emit(roots)
