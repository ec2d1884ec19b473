"""Where the shipped demo artefacts are, if they are installed: the ShapesWorld base model, its
CRAFT backbone and its content/style LoRAs, and the oracle.

Standard library only (no torch): the GUI's state layer and the CLI ask these paths before the
engine loads, to fall back to the demo model when the user has configured none. Each function
returns None when its artefact is absent (a source checkout before `train-base` has run, or a
trimmed install), so callers simply skip the default.
"""

from __future__ import annotations

import json
from pathlib import Path

from craftstudio.domain.curves import list_presets
from craftstudio.domain.resources import demo_dir, resources_dir

MODEL_NAME = "shapesworld"
ROLES = ("content", "style")


def demo_model_dir() -> Path | None:
    """The demo base model's diffusers folder (`resources/models/shapesworld`), if installed."""
    folder = resources_dir() / "models" / MODEL_NAME
    return folder if (folder / "model_index.json").is_file() else None


def demo_backbone() -> Path | None:
    """The demo model's CRAFT backbone (`resources/demo/backbone.safetensors`), if installed."""
    path = demo_dir() / "backbone.safetensors"
    return path if path.is_file() else None


def demo_lora(role: str) -> Path | None:
    """The demo content or style LoRA (`resources/demo/{role}-lora.safetensors`), if installed."""
    if role not in ROLES:
        raise ValueError(f"LoRA role must be one of {', '.join(ROLES)}, not {role!r}.")
    path = demo_dir() / f"{role}-lora.safetensors"
    return path if path.is_file() else None


def demo_oracle() -> Path | None:
    """The ShapesWorld oracle's weights (`resources/demo/oracle.safetensors`), if installed."""
    path = demo_dir() / "oracle.safetensors"
    return path if path.is_file() else None


def _demo_settings() -> dict:
    """`resources/demo/demo-assets.json` ({} when missing or unreadable: the demo then runs on
    the ordinary defaults)."""
    try:
        data = json.loads((demo_dir() / "demo-assets.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def demo_prompt() -> str | None:
    """The prompt that shows the demo LoRAs together (`resources/demo/demo-assets.json`), if any."""
    value = _demo_settings().get("prompt")
    return value if isinstance(value, str) else None


def demo_cfg_scale() -> float | None:
    """The guidance scale the demo prompt was measured at (its style weight is tuned to it), if any."""
    value = _demo_settings().get("cfg_scale")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def demo_curves() -> str | None:
    """The curve preset the demo prompt was measured with, if any and if it is a shipped preset."""
    value = _demo_settings().get("curves")
    return value if isinstance(value, str) and value in list_presets() else None


def default_model(configured: str | Path | None) -> Path | None:
    """The model to use: the configured one when set, else the demo model (None if neither).
    This is the first-run rule of `python main.py` and of the CLI."""
    if configured:
        return Path(configured)
    return demo_model_dir()
