"""The library: one catalog database plus the folders it owns (`loras/`, `models/`, `trash/`...).

`Catalog.open(home)` is the entry point for the CLI, the workers and the GUI. It registers files
(identify + hash + sidecars), imports them (copy into the library, or register in place), and
moves items to the trash and back. Files registered in place belong to the user: removing one
only hides it from the catalog; the file is never moved or deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from craftstudio.domain.atomic_file import TEMP_SUFFIX, stale_temp_files, temp_file
from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import LoraError, UserError
from craftstudio.domain.progress import ProgressEvent
from craftstudio.library.database import Database
from craftstudio.library.header import FileDigest, UnreadableFile, inspect_file
from craftstudio.library.history_store import HistoryStore
from craftstudio.library.identify import Identity, NotRecognised, identify, identify_folder
from craftstudio.library.item_store import ItemStore
from craftstudio.library.paths import AppPaths
from craftstudio.library.records import FileEntry, Item
from craftstudio.library.scanner import SKIP_IN_FOLDERS, Scanner, ScanReport, folder_signature, hash_folder
from craftstudio.library.sidecars import apply_sidecars, decode_thumbnail, find_sidecars, model_stem

MODEL_INDEX = "model_index.json"


@dataclass
class Registered:
    """What registering one path gave: status `ok` (item), `unreadable`, `other` or `vanished`."""

    path: str
    status: str
    item: Item | None = None
    created: bool = False
    reason: str | None = None


def _source_stat(src: Path) -> os.stat_result:
    """The stat of a file to import; every way the path itself is bad is one `UserError`."""
    try:
        str(src).encode("utf-8")
    except UnicodeEncodeError:
        shown = str(src).encode("utf-8", "replace").decode("utf-8")
        raise UserError(f"{shown} has a name that is not valid UTF-8: rename the file, then import it.") from None
    try:
        st = src.stat()
    except FileNotFoundError:
        raise UserError(f"{src} does not exist: check the path.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{src} is a loop of symbolic links: point it at a real file.") from None
        raise UserError(f"{src} cannot be read ({exc.strerror or exc}): check its permissions.") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"
        raise UserError(f"{src} is {kind}, not a LoRA, model or backbone file: import a regular file.")
    return st


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _move(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError:
        shutil.move(str(src), str(dest))


class Catalog:
    def __init__(self, paths: AppPaths, db: Database) -> None:
        self.paths = paths
        self.db = db
        self.items = ItemStore(db)
        self.history = HistoryStore(db)

    @classmethod
    def open(cls, home: str | Path | None = None) -> Catalog:
        """The library in `home` (default: CRAFTSTUDIO_HOME or the platform's user data folder)."""
        paths = AppPaths(Path(home).expanduser().absolute()) if home else AppPaths.default()
        try:
            paths.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"Cannot create the library folder {paths.root} ({exc.strerror or exc}): "
                            "choose another folder with --home or CRAFTSTUDIO_HOME.") from exc
        catalog = cls(paths, Database(paths.database))
        if not catalog.db.read_only:
            catalog.remove_stale_temp_files()
        return catalog

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary copies a killed import or write left in the library's folders."""
        removed = []
        for folder in (self.paths.loras, self.paths.models, self.paths.backbones, self.paths.previews):
            for tmp in stale_temp_files(folder):
                _remove(tmp)
                removed.append(tmp)
        return removed

    @classmethod
    def in_memory(cls, home: str | Path) -> Catalog:
        """A catalog whose database lives in memory (tests); files still go under `home`."""
        return cls(AppPaths(Path(home).absolute()), Database())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------- registering one path
    def register(self, path: str | Path, *, in_place: bool = True, siblings: set[str] | None = None,
                 digest: FileDigest | None = None) -> Registered:
        """Identify, hash and record one file or diffusers folder. Never raises for a bad file:
        the result says `unreadable` (with the reason), `other` or `vanished`."""
        path = Path(path).absolute()
        key = str(path)
        try:
            st = path.stat()
            if path.is_dir():
                return self._register_folder(path, in_place=in_place)
            digest = digest if digest and digest.size == st.st_size else inspect_file(path)
        except FileNotFoundError:
            self.db.execute("DELETE FROM files WHERE path = ?", (key,))
            return Registered(key, "vanished", reason="the file disappeared before it could be read")
        except PermissionError:
            return self._record_problem(path, "unreadable", "permission denied: make the file readable")
        except UnreadableFile as exc:
            return self._record_problem(path, "unreadable", exc.reason)
        except OSError as exc:
            return self._record_problem(path, "unreadable", f"read error: {exc.strerror or exc}")
        try:
            identity = identify(digest.header, path)
        except NotRecognised as exc:
            return self._record_problem(path, "other", exc.reason, st, digest.sha256)
        sidecars = find_sidecars(path, siblings)
        apply_sidecars(identity, sidecars)
        preview = str(sidecars.preview) if sidecars.preview else self._thumbnail(digest.sha256, identity)
        return self._record(path, identity, digest.sha256, st, addnet_hash=digest.addnet_hash,
                            preview=preview, in_place=in_place, sidecar_sig=sidecars.signature())

    def _register_folder(self, folder: Path, *, in_place: bool) -> Registered:
        if not (folder / MODEL_INDEX).is_file():
            return Registered(str(folder), "other", reason="a folder without model_index.json")
        try:
            identity = identify_folder(folder)
        except NotRecognised as exc:
            return self._record_problem(folder, "other", exc.reason)
        size, mtime, files = folder_signature(folder)
        sha = hash_folder(folder, files)
        sidecars = find_sidecars(folder)
        apply_sidecars(identity, sidecars)
        return self._record(folder, identity, sha, os.stat_result((0, 0, 0, 0, 0, 0, size, 0, 0, 0)),
                            addnet_hash=None, preview=str(sidecars.preview) if sidecars.preview else None,
                            in_place=in_place, sidecar_sig=sidecars.signature(), mtime_ns=mtime)

    def _thumbnail(self, sha: str, identity: Identity) -> str | None:
        if not identity.thumbnail:
            return None
        try:
            written = decode_thumbnail(identity.thumbnail, self.paths.previews / sha)
        except OSError:
            return None
        return str(written) if written else None

    def _record(self, path: Path, identity: Identity, sha: str, st: os.stat_result, *, addnet_hash: str | None,
                preview: str | None, in_place: bool, sidecar_sig: str, mtime_ns: int | None = None) -> Registered:
        key = str(path)
        with self.db.transaction() as conn:
            before = conn.execute("SELECT item_id FROM files WHERE path = ?", (key,)).fetchone()
            item, created = self.items.upsert(sha, identity, path=path, name=model_stem(path), size=st.st_size,
                                              addnet_hash=addnet_hash, preview=preview, in_place=in_place)
            conn.execute(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, item_id, status, reason, sidecars, "
                "scanned_at) VALUES (?, ?, ?, ?, ?, 'ok', NULL, ?, ?)",
                (key, st.st_size, st.st_mtime_ns if mtime_ns is None else mtime_ns, sha, sha, sidecar_sig,
                 time.time()))
            if before and before["item_id"] and before["item_id"] != sha:
                self._retire_if_orphaned(before["item_id"], successor=sha)
        return Registered(key, "ok", item=self.items.get(sha), created=created)

    def _retire_if_orphaned(self, old_id: str, successor: str | None) -> None:
        """An item whose last file now holds other content: hand tags and edits to the successor."""
        old = self.items.get(old_id)
        if old is None or old.trashed:
            return
        if self.db.scalar("SELECT 1 FROM files WHERE item_id = ? AND status = 'ok'", (old_id,)):
            return
        if successor:
            self.items.inherit_user_data(successor, old)
        self.db.execute("DELETE FROM items WHERE id = ?", (old_id,))

    def _record_problem(self, path: Path, status: str, reason: str, st: os.stat_result | None = None,
                        sha: str | None = None) -> Registered:
        key = str(path)
        try:
            st = st or path.stat()
        except OSError:
            return Registered(key, "vanished", reason="the file disappeared before it could be read")
        with self.db.transaction() as conn:
            before = conn.execute("SELECT item_id FROM files WHERE path = ?", (key,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, item_id, status, reason, sidecars, "
                "scanned_at) VALUES (?, ?, ?, ?, NULL, ?, ?, '', ?)",
                (key, st.st_size, st.st_mtime_ns, sha, status, reason, time.time()))
            if before and before["item_id"]:
                self.mark_missing_if_orphaned(before["item_id"])
        return Registered(key, status, reason=reason)

    def mark_missing_if_orphaned(self, item_id: str) -> None:
        other = self.db.one("SELECT path FROM files WHERE item_id = ? AND status = 'ok' LIMIT 1", (item_id,))
        if other:
            self.items.update_fields(item_id, path=other["path"], missing=False)
        elif (item := self.items.get(item_id)) and not item.trashed:
            self.items.update_fields(item_id, missing=True)

    def files(self, status: str | None = None) -> list[FileEntry]:
        sql = "SELECT * FROM files" + (" WHERE status = ?" if status else "") + " ORDER BY path"
        return [FileEntry.from_row(r) for r in self.db.execute(sql, (status,) if status else ())]

    # ---------- import
    def import_file(self, path: str | Path, *, in_place: bool = False) -> Registered:
        """Add a file or diffusers folder: copied into the library (default) or registered where it is.

        The copy is made under a temporary name; the content hash is checked again and the copy
        renamed into place inside one write transaction, so concurrent imports of one file (other
        processes included) leave one copy. Any failure leaves no copy behind."""
        src = Path(path).expanduser().absolute()
        st = _source_stat(src)
        if stat.S_ISDIR(st.st_mode) and not (src / MODEL_INDEX).is_file():
            raise UserError(f"{src} is a folder without {MODEL_INDEX}: import a diffusers model folder or "
                            "a .safetensors file, or use `library scan` for folders of LoRAs.")
        if self._inside_library(src):  # already in a library folder: the library owns it
            return self._checked(self.register(src, in_place=False), src)
        if in_place:
            return self._checked(self.register(src, in_place=True), src)
        if src.is_dir():
            identity, sha, digest = identify_folder(src), None, None
        else:
            try:
                digest = inspect_file(src)
                identity = identify(digest.header, src)
            except UnreadableFile as exc:
                raise LoraError(f"{src} cannot be imported: {exc.reason}.") from exc
            except NotRecognised as exc:
                raise LoraError(f"{src} cannot be imported: {exc.reason}.") from exc
            except OSError as exc:
                raise LoraError(f"{src} cannot be read ({exc.strerror or exc}): check its permissions.") from exc
            sha = digest.sha256
        known = self._known_copy(sha)
        if known is not None:
            return known
        folder = {"lora": self.paths.loras, "model": self.paths.models}.get(identity.kind, self.paths.backbones)
        staged = self._stage(src, folder)
        try:
            with self.db.transaction():  # BEGIN IMMEDIATE: a concurrent import of the same file waits here
                known = self._known_copy(sha)
                if known is not None:
                    return known
                dest = self._place(src, staged, folder)
                try:
                    return self._checked(self.register(dest, in_place=False, digest=digest), dest)
                except BaseException:
                    _remove(dest)
                    raise
        finally:
            _remove(staged)

    def _known_copy(self, sha: str | None) -> Registered | None:
        existing = self.items.get(sha) if sha else None
        if existing and existing.trashed:
            return Registered(existing.path, "ok", item=self.restore(existing.id))
        if existing and Path(existing.path).exists() and not existing.missing:
            return Registered(existing.path, "ok", item=existing)
        return None

    def _checked(self, result: Registered, path: Path) -> Registered:
        if result.status != "ok":
            raise LoraError(f"{path} cannot be added to the library: {result.reason}.")
        return result

    def _inside_library(self, path: Path) -> bool:
        return path.is_relative_to(self.paths.root)

    def _stage(self, src: Path, folder: Path) -> Path:
        """A copy of `src` under a temporary name in `folder` (a file or a model folder)."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=f".{src.name}.", suffix=TEMP_SUFFIX, dir=folder))
                shutil.rmtree(tmp)
                shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*("*" + s for s in SKIP_IN_FOLDERS)))
                return tmp
            tmp = temp_file(folder / src.name)
            try:
                shutil.copyfile(src, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return tmp
        except OSError as exc:
            raise UserError(f"Cannot copy {src} into the library folder {folder} ({exc.strerror or exc}): "
                            "make the folder writable, free some space, or add the file with --in-place.") from exc

    def _place(self, src: Path, staged: Path, folder: Path) -> Path:
        """Rename a staged copy to a free name (`name`, `name-2`...) with copies of its sidecars."""
        stem, suffix = model_stem(src), src.suffix if src.is_file() else ""
        dest = folder / (stem + suffix)
        n = 2
        while dest.exists():
            dest = folder / f"{stem}-{n}{suffix}"
            n += 1
        try:
            os.replace(staged, dest)
            for sidecar in find_sidecars(src, read=False).files:
                shutil.copyfile(sidecar, folder / (model_stem(dest) + sidecar.name[len(stem):]))
        except OSError as exc:
            _remove(dest)
            raise UserError(f"Cannot copy {src} into the library folder {folder} ({exc.strerror or exc}): "
                            "make the folder writable, free some space, or add the file with --in-place.") from exc
        return dest

    # ---------- trash
    def remove(self, ref: str) -> Item:
        """Move an item to the trash. A file the library copied in goes to `trash/<id>/`; a file
        registered in place is only hidden (never moved, never deleted)."""
        item = self.items.find(ref)
        if item.trashed:
            raise UserError(f"{item.label} is already in the trash: `library restore {item.short_id}` "
                            "brings it back.")
        trash_path = None
        src = Path(item.path)
        if not item.in_place and src.exists() and self._inside_library(src):
            dest = self.paths.trash / item.id / src.name
            try:
                for sidecar in find_sidecars(src, read=False).files:
                    _move(sidecar, dest.parent / sidecar.name)
                _move(src, dest)
            except OSError as exc:
                raise UserError(f"Cannot move {src} to the trash ({exc.strerror or exc}): check that "
                                f"{self.paths.root} is writable.") from exc
            trash_path = str(dest)
            self.db.execute("DELETE FROM files WHERE path = ?", (str(src),))
        return self.items.update_fields(item.id, trashed_at=time.time(), trash_path=trash_path)

    def restore(self, ref: str) -> Item:
        item = self.items.find(ref)
        if not item.trashed:
            raise UserError(f"{item.label} is not in the trash.")
        if item.trash_path:
            src, dest = Path(item.trash_path), Path(item.path)
            if dest.exists():
                raise UserError(f"{dest} already exists: move it away, then restore {item.short_id} again.")
            if not src.exists():
                raise UserError(f"The trashed copy {src} is gone; import the file again.")
            try:
                for sidecar in find_sidecars(src, read=False).files:
                    _move(sidecar, dest.parent / sidecar.name)
                _move(src, dest)
            except OSError as exc:
                raise UserError(f"Cannot move {src} back to {dest} ({exc.strerror or exc}).") from exc
            shutil.rmtree(src.parent, ignore_errors=True)
            st = dest.stat() if dest.is_file() else None
            if st:
                self.db.execute("INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, item_id, status, "
                                "sidecars, scanned_at) VALUES (?, ?, ?, ?, ?, 'ok', '', ?)",
                                (str(dest), st.st_size, st.st_mtime_ns, item.id, item.id, time.time()))
        return self.items.update_fields(item.id, trashed_at=None, trash_path=None)

    def rename(self, ref: str, new_name: str) -> Item:
        """Rename an item. A file the library owns is renamed on disk too (with its sidecars);
        a file registered in place keeps its file name and gets a new display name."""
        item = self.items.find(ref)
        new_name = new_name.strip()
        if not new_name or any(c in new_name for c in '/\\:*?"<>|') or new_name.startswith("."):
            raise UserError(f"{new_name!r} cannot be a name: avoid / \\ : * ? \" < > | and a leading dot.")
        src = Path(item.path)
        if not item.in_place and not item.trashed and src.is_file() and self._inside_library(src):
            dest = src.with_name(new_name + src.suffix)
            if dest.exists():
                raise UserError(f"{dest} already exists: choose another name.")
            old_stem = model_stem(src)
            for sidecar in find_sidecars(src, read=False).files:
                sidecar.rename(sidecar.with_name(new_name + sidecar.name[len(old_stem):]))
            src.rename(dest)
            with self.db.transaction():
                self.db.execute("UPDATE files SET path = ? WHERE path = ?", (str(dest), str(src)))
                self.items.update_fields(item.id, path=str(dest))
                if item.preview and Path(item.preview).parent == src.parent:
                    self.items.update_fields(item.id, preview=str(Path(item.preview).with_name(
                        new_name + Path(item.preview).name[len(old_stem):])))
        return self.items.edit(item.id, name=new_name)

    # ---------- scanning (scanner.py)
    def scan(self, folders: list[str | Path], *, progress: Callable[[ProgressEvent], None] | None = None,
             cancel: CancelToken | None = None) -> ScanReport:
        """Scan folders recursively (see `Scanner`)."""
        return Scanner(self).scan(folders, progress=progress, cancel=cancel)

    def resume_scan(self, *, progress: Callable[[ProgressEvent], None] | None = None,
                    cancel: CancelToken | None = None) -> ScanReport | None:
        """Finish the last interrupted scan, if any."""
        return Scanner(self).resume(progress=progress, cancel=cancel)
