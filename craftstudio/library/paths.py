"""Where CraftStudio keeps its data: platformdirs' user data dir, overridable.

Set `CRAFTSTUDIO_HOME` (or pass a folder) to keep everything somewhere else, e.g. in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "CraftStudio"


@dataclass(frozen=True)
class AppPaths:
    root: Path

    @classmethod
    def default(cls) -> AppPaths:
        override = os.environ.get("CRAFTSTUDIO_HOME")
        root = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        return cls(root)

    @property
    def database(self) -> Path:
        return self.root / "library.sqlite"

    @property
    def loras(self) -> Path:
        return self.root / "loras"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def backbones(self) -> Path:
        return self.root / "backbones"

    @property
    def previews(self) -> Path:
        """Preview images the library made itself (decoded ModelSpec thumbnails)."""
        return self.root / "previews"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"
