"""`SettingsFile`: the app's settings.json, read leniently and written atomically.

Sections keep each view-model's settings apart (`{"generate": {...}, ...}`), so saving one
never drops another's. Written to a temporary file and renamed into place: a crash while
saving leaves the previous file intact.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SettingsFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        """Everything in the file; {} if it is missing or unreadable (logged, the app starts)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable settings file %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def section(self, name: str) -> dict[str, Any]:
        value = self.load().get(name)
        return value if isinstance(value, dict) else {}

    def save_section(self, name: str, values: dict[str, Any]) -> None:
        data = self.load()
        data[name] = values
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, ensure_ascii=False)
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not save settings to %s: %s", self.path, exc)
