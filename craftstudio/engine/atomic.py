"""Write files safely: into a temporary file beside the target, renamed into place on success.

A failure (disk full, cancel, crash) leaves no partial file and never damages an existing one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from craftstudio.domain.errors import UserError


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise UserError(f"Could not write {target}: {exc.strerror or exc}; free some disk space or "
                        "choose another folder.") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
