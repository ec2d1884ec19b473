"""Scan folders for LoRAs, base models and backbones: recursive, incremental, resumable.

- Incremental: a file whose size, mtime and sidecars are unchanged since the last scan is not
  read again (no hashing), so a re-scan of thousands of files takes a moment.
- Resumable: files are committed in batches of at most `BATCH_SECONDS` of work (a cancel
  commits the batch first), so a scan killed at any point leaves a consistent catalog and loses
  at most that batch; the `scans` table remembers unfinished scans and
  `resume()` (CLI: `library scan` with no folder) finishes one, skipping what was done.
- Robust: unreadable, corrupt, truncated, empty, non-safetensors and vanished files are
  recorded or reported with a reason and never stop the scan. Files under a scanned folder that
  are gone are forgotten only after a complete scan; their items stay in the catalog (tags kept)
  marked missing, or move to another copy of the same content.
- `.safetensors` files are read; pickle files (`.ckpt`, `.pt`, `.bin`...) are listed as unreadable
  and never opened; a folder with `model_index.json` is a diffusers model and is not descended.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import ProgressEvent
from craftstudio.library.header import CHUNK, PICKLE_SUFFIXES
from craftstudio.library.sidecars import find_sidecars

if TYPE_CHECKING:
    from craftstudio.library.catalog import Catalog

MODEL_INDEX = "model_index.json"
SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


# Longest run of files written in one transaction (the GUI's queries wait for it at most this long).
BATCH_SECONDS = 0.05


@dataclass
class ScanReport:
    roots: list[str]
    total: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    forgotten: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    path: str
    is_dir: bool
    siblings: set[str] | None
    size: int = 0
    mtime_ns: int = 0


SKIP_IN_FOLDERS = (".bin", ".ckpt", ".pt", ".pth", ".pkl")  # pickles inside diffusers folders: never read
# What training keeps beside its output (`out.safetensors.checkpoints/`, `.samples/`): a resumable
# checkpoint is not a LoRA to list, and sample pictures are not models.
SKIP_TRAINING_FOLDERS = (".checkpoints", ".samples")


def folder_signature(folder: Path) -> tuple[int, int, list[Path]]:
    """(total size, newest mtime_ns, files) of a diffusers folder; pickles and hidden files skipped."""
    files: list[Path] = []
    size = mtime = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.lower().endswith(SKIP_IN_FOLDERS):
                continue
            p = Path(root, name)
            st = p.stat()
            files.append(p)
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
    return size, mtime, files


def hash_folder(folder: Path, files: list[Path]) -> str:
    """sha256 over (relative path, size, bytes) of every file, in sorted order, streamed."""
    digest = hashlib.sha256()
    for p in sorted(files, key=lambda f: f.relative_to(folder).as_posix()):
        rel = p.relative_to(folder).as_posix().encode()
        digest.update(rel + b"\0" + str(p.stat().st_size).encode() + b"\0")
        with open(p, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _stat_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links: skipped"
    return f"cannot be read: {exc.strerror or exc}"


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Scanner:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db
        self._skip_dirs = {str(catalog.paths.trash), str(catalog.paths.previews)}

    def resume(self, *, progress: Callable[[ProgressEvent], None] | None = None,
               cancel: CancelToken | None = None) -> ScanReport | None:
        row = self.db.one("SELECT roots FROM scans WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1")
        return self.scan(json.loads(row["roots"]), progress=progress, cancel=cancel) if row else None

    def scan(self, folders: list[str | Path], *, progress: Callable[[ProgressEvent], None] | None = None,
             cancel: CancelToken | None = None) -> ScanReport:
        """Scan `folders`; raises `Cancelled` (after keeping all work done) if `cancel` fires."""
        roots = []
        for folder in folders:
            root = Path(folder).expanduser().absolute()
            if not root.exists():
                raise UserError(f"{root} does not exist: check the folder name.")
            roots.append(str(root))
        self.db.check_integrity()  # a damaged database must not be half-written
        started = time.perf_counter()
        report = ScanReport(roots)
        with self.db.transaction() as conn:
            scan_id = conn.execute("INSERT INTO scans (roots, started_at) VALUES (?, ?)",
                                   (json.dumps(roots, ensure_ascii=False), time.time())).lastrowid
        known = {r["path"]: r for r in self.db.execute(
            "SELECT path, size, mtime_ns, status, reason, sidecars FROM files")}
        candidates: list[Candidate] = []
        unlisted: list[str] = []  # folders we could not list: keep what we knew under them
        for root in roots:
            candidates.extend(self._walk(root, report, unlisted))
        report.total = len(candidates)
        seen: set[str] = set()
        try:
            done = 0
            while done < len(candidates):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                # Files are committed in short batches: one commit per file cost as much as the
                # rest of a new file's work. A batch is all or nothing, and at most BATCH_SECONDS long.
                with self.db.transaction():
                    ends = time.perf_counter() + BATCH_SECONDS
                    while done < len(candidates) and not (cancel is not None and cancel.cancelled):
                        cand = candidates[done]
                        seen.add(cand.path)
                        self._one(cand, known.get(cand.path), report)
                        done += 1
                        if progress is not None:
                            progress(ProgressEvent("scan", done, report.total, message=cand.path))
                        if time.perf_counter() >= ends:
                            break
        except Cancelled:
            report.cancelled = True
            report.seconds = time.perf_counter() - started
            raise
        report.forgotten = self._forget_missing(roots, seen, known, unlisted)
        with self.db.transaction() as conn:
            conn.execute("UPDATE scans SET finished_at = ? WHERE id = ?", (time.time(), scan_id))
            for row in conn.execute("SELECT id, roots FROM scans WHERE finished_at IS NULL").fetchall():
                if all(any(_is_under(r, mine) for mine in roots) for r in json.loads(row["roots"])):
                    conn.execute("UPDATE scans SET finished_at = ? WHERE id = ?", (time.time(), row["id"]))
        report.seconds = time.perf_counter() - started
        return report

    def _one(self, cand: Candidate, old: Any, report: ScanReport) -> None:
        path = Path(cand.path)
        if old is not None and old["size"] == cand.size and old["mtime_ns"] == cand.mtime_ns:
            sig = "" if cand.is_dir else find_sidecars(path, cand.siblings, read=False).signature()
            if old["status"] != "ok" or sig == old["sidecars"] or cand.is_dir:
                report.unchanged += 1
                if old["status"] == "unreadable":
                    report.unreadable.append((cand.path, old["reason"]))
                elif old["status"] == "other":
                    report.other.append((cand.path, old["reason"]))
                return
        result = self.catalog.register(path, in_place=not _is_under(cand.path, str(self.catalog.paths.root)),
                                       siblings=cand.siblings)
        if result.status == "ok":
            if result.created:
                report.added += 1
            else:
                report.updated += 1
        elif result.status == "unreadable":
            report.unreadable.append((cand.path, result.reason or "unreadable"))
        elif result.status == "other":
            report.other.append((cand.path, result.reason or ""))
        else:
            report.vanished.append(cand.path)

    def _walk(self, root: str, report: ScanReport, unlisted: list[str]) -> Iterator[Candidate]:
        """Candidates under `root`, depth first, sorted; never follows a symlinked folder twice."""
        visited: set[tuple[int, int]] = set()
        if os.path.isfile(root):
            if root.lower().endswith(SUFFIXES):
                yield from self._file_candidate(root, None, report)
            return
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in visited:
                    if os.path.islink(folder):
                        report.other.append((folder, "a symbolic link to a folder already scanned (a loop)"))
                    continue
                visited.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                report.unreadable.append((folder, f"folder cannot be listed: {exc.strerror or exc}"))
                unlisted.append(folder)
                continue
            names = {e.name for e in entries}
            if MODEL_INDEX in names:
                yield from self._folder_candidate(folder, report)
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError as exc:
                    report.unreadable.append((entry.path, _stat_problem(exc)))
                    continue
                if is_dir:
                    if entry.path not in self._skip_dirs and not entry.name.endswith(SKIP_TRAINING_FOLDERS):
                        subfolders.append(entry.path)
                elif entry.name.lower().endswith(SUFFIXES):
                    yield from self._file_candidate(entry.path, names, report)
            stack.extend(reversed(subfolders))

    def _file_candidate(self, path: str, siblings: set[str] | None, report: ScanReport) -> Iterator[Candidate]:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            report.unreadable.append((path.encode("utf-8", "replace").decode(), "the file name is not valid "
                                      "UTF-8: rename the file"))
            return
        try:
            st = os.stat(path)
        except FileNotFoundError:
            report.vanished.append(path)
            return
        except OSError as exc:
            report.unreadable.append((path, _stat_problem(exc)))
            return
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read for ever
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"
            report.unreadable.append((path, f"{kind}, not a regular file: skipped"))
            return
        yield Candidate(path, False, siblings, st.st_size, st.st_mtime_ns)

    def _folder_candidate(self, folder: str, report: ScanReport) -> Iterator[Candidate]:
        try:
            size, mtime, _ = folder_signature(Path(folder))
        except OSError as exc:
            report.unreadable.append((folder, f"model folder cannot be read: {exc.strerror or exc}"))
            return
        yield Candidate(folder, True, None, size, mtime)

    def _forget_missing(self, roots: list[str], seen: set[str], known: dict[str, Any], unlisted: list[str]) -> int:
        gone = [p for p in known if p not in seen and any(_is_under(p, r) for r in roots)
                and not any(_is_under(p, u) for u in unlisted) and not os.path.exists(p)]
        for path in gone:
            with self.db.transaction() as conn:
                row = conn.execute("SELECT item_id FROM files WHERE path = ?", (path,)).fetchone()
                conn.execute("DELETE FROM files WHERE path = ?", (path,))
                if row and row["item_id"]:
                    self.catalog.mark_missing_if_orphaned(row["item_id"])
        return len(gone)
