"""Where the shipped resources (curve presets, demo model, styles) live.

`resources/` sits beside the `craftstudio` package in a source checkout or editable install;
`CRAFTSTUDIO_RESOURCES` points elsewhere (e.g. a bundled application).
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    override = os.environ.get("CRAFTSTUDIO_RESOURCES")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "resources"


def curves_dir() -> Path:
    return resources_dir() / "curves"


def demo_dir() -> Path:
    return resources_dir() / "demo"
