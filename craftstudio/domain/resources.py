"""Where the shipped resources (curve presets, demo model, model configs, styles) live.

Three layouts, tried in order:

1. `CRAFTSTUDIO_RESOURCES` names a folder: that folder (a custom or relocated set).
2. A source checkout or editable install: `resources/` beside the `craftstudio` package.
3. An installed wheel or a desktop bundle: the same files as the package data
   `craftstudio/_resources/` (pyproject.toml maps `resources/` there; the bundle's spec
   copies it to the same place), found beside the package without importlib machinery so a
   frozen application finds them as an installed one does.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def resources_dir() -> Path:
    override = os.environ.get("CRAFTSTUDIO_RESOURCES")
    if override:
        return Path(override)
    checkout = _PACKAGE.parent / "resources"
    if checkout.is_dir():
        return checkout
    return _PACKAGE / "_resources"


def curves_dir() -> Path:
    return resources_dir() / "curves"


def demo_dir() -> Path:
    return resources_dir() / "demo"
