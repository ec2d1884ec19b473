"""Write files safely: into a temporary file beside the target, renamed into place on success.

A failure (disk full, cancel, crash) leaves no partial file and never damages an existing one.
`tempfile.mkstemp` creates its file readable by the owner only (0600); the finished file gets
the mode any file the user saves gets (0666 less the umask), as the user expects of an image or
a LoRA. Temporary names are `.<name>.<random>.tmp`, so `stale_temp_files` can find the ones a
killed process left behind.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from craftstudio.domain.errors import UserError

TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 3600.0  # a temp file untouched this long belongs to no running write


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


def normal_mode() -> int:
    return 0o666 & ~_UMASK


def temp_file(target: Path) -> Path:
    """A new empty temporary file beside `target` (closed), with the normal file mode."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        os.fchmod(fd, normal_mode()) if hasattr(os, "fchmod") else None
    finally:
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `target`. An `OSError` is one
    `UserError` sentence naming `target`; the temporary file never stays behind. With
    `overwrite=False` an existing `target` is never replaced, even one that appeared while the
    file was written: `FileExistsError` is raised instead (the caller picks another name)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = temp_file(target)
    except OSError as exc:
        raise UserError(f"Could not write {target}: {exc.strerror or exc}; make the folder writable or "
                        "choose another folder.") from exc
    try:
        yield tmp_path
        if overwrite:
            os.replace(tmp_path, target)
        else:
            _place_new(tmp_path, target)
    except FileExistsError:
        tmp_path.unlink(missing_ok=True)
        raise
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise UserError(f"Could not write {target}: {exc.strerror or exc}; free some disk space or "
                        "choose another folder.") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _place_new(tmp_path: Path, target: Path) -> None:
    """Rename without ever replacing: a hard link is atomic and fails on a taken name; where the
    file system has no hard links, check, then rename (a narrow window, but never a silent loss
    of what was checked)."""
    try:
        os.link(tmp_path, target)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.replace(tmp_path, target)
        return
    tmp_path.unlink()


def stale_temp_files(folder: Path, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Temporary files of `atomic_path` (and folders staged by an import) in `folder`, not below
    it, that a killed process left behind."""
    now = time.time()
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            if not entry.is_symlink() and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                found.append(Path(entry.path))
        except OSError:
            continue
    return found
