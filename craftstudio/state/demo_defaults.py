"""First-run defaults: the built-in ShapesWorld demo model, its LoRAs, backbone and a prompt.

When the user has configured no model yet, the Generate panel starts filled in with the demo
so that pressing Generate works at once. The demo artefacts are found through
`craftstudio.demo.assets` (standard library only, so no torch here), imported lazily: an install
without the demo, or a checkout from before that module existed, simply gets no defaults.

The prompt names each LoRA's trigger word, read from the file's `modelspec.trigger_phrase`
metadata (a header read, no tensors), and marks the phrases with `<c>`/`<s>` so the γ feedback
shows both LoRAs in use: "a sks <c> in zxq style <s>". `demo.assets.demo_prompt()`, if that
module provides one, wins over the built prompt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from craftstudio.library.header import UnreadableFile, read_header

log = logging.getLogger(__name__)

TRIGGER_KEY = "modelspec.trigger_phrase"


@dataclass(frozen=True)
class DemoDefaults:
    model: str
    content_lora: str = ""
    style_lora: str = ""
    backbone: str = ""
    prompt: str = ""
    cfg_scale: float | None = None  # the guidance scale the demo prompt is tuned to
    curves: str | None = None  # the curve preset the demo prompt is tuned to


def demo_defaults() -> DemoDefaults | None:
    """What to pre-fill, or None when the demo model is not installed."""
    assets = _assets()
    if assets is None:
        return None
    model = _call(assets, "demo_model_dir")
    if model is None:
        return None
    content, style = _call(assets, "demo_lora", "content"), _call(assets, "demo_lora", "style")
    backbone = _call(assets, "demo_backbone")
    prompt = _call(assets, "demo_prompt")
    if not isinstance(prompt, str):
        prompt = demo_prompt(content, style)
    return DemoDefaults(model=str(model), content_lora=str(content or ""), style_lora=str(style or ""),
                        backbone=str(backbone or ""), prompt=prompt,
                        cfg_scale=_call(assets, "demo_cfg_scale"), curves=_call(assets, "demo_curves"))


def demo_prompt(content: Path | None, style: Path | None) -> str:
    """`a <content trigger> <c> in <style trigger> style <s>`; a part whose LoRA or trigger is
    unknown is left out (no markers at all when neither is known)."""
    content_word, style_word = trigger_word(content), trigger_word(style)
    if content_word and style_word:
        return f"a {content_word} <c> in {style_word} style <s>"
    if content_word:
        return f"a {content_word} <c>"
    if style_word:
        return f"a picture in {style_word} style <s>"
    return ""


def trigger_word(lora: Path | None) -> str:
    """The trigger phrase recorded in a LoRA's metadata, "" when absent or unreadable."""
    if lora is None:
        return ""
    try:
        metadata = read_header(lora).metadata
    except (UnreadableFile, OSError) as exc:
        log.warning("no trigger word from %s: %s", lora, exc)
        return ""
    phrase = metadata.get(TRIGGER_KEY, "")
    # Markers in a trigger would break the prompt's own markers.
    return phrase.strip() if isinstance(phrase, str) and "<" not in phrase and ">" not in phrase else ""


def _assets() -> Any | None:
    try:
        from craftstudio.demo import assets
    except ImportError:
        return None
    return assets


def _call(module: Any, name: str, *args: Any) -> Any:
    """`module.name(*args)`, or None when the function is missing (an older demo module) or
    fails: a broken demo install must never stop the window from opening."""
    try:
        function = getattr(module, name)
    except AttributeError:
        return None
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - any failure just means "no default"
        log.warning("demo default %s unavailable: %s", name, exc)
        return None
