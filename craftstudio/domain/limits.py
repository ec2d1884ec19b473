"""Documented limits on what CraftStudio accepts from a user, a file or an image (docs/hardening.md).

Every number that reaches the engine comes from somewhere a user controls: the command line, a
settings file, a PNG's recorded parameters. `check_number` is the one gate they pass: a value that
is not a finite number, or lies outside its range, is refused with one sentence naming it. Text
read from files is capped before it is parsed, so no input can make a parser run for minutes.
"""

from __future__ import annotations

import math
from typing import Any

from craftstudio.domain.errors import RequestError

# A1111/Forge infotext is a few KB (a long prompt, a negative prompt, one settings line).
MAX_INFOTEXT_CHARS = 64 * 1024
# Our JSON chunk holds the request plus the sampler's per-step record (curves, γ): tens of KB.
MAX_RECORD_CHARS = 2 * 1024 * 1024
MAX_PROMPT_CHARS = 32 * 1024
CFG_RANGE = (0.0, 100.0)
LORA_WEIGHT_RANGE = (0.0, 2.0)  # the Generate panel's spin box offers the same range
STEPS_RANGE = (1, 1000)
BATCH_RANGE = (1, 100)
SEED_RANGE = (0, 2**63 - 1)
MAX_SIDE = 4096


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_number(label: str, value: Any, low: float, high: float, *, integer: bool = False) -> float:
    """`value` as a number in [low, high]; raises `RequestError` naming `label` otherwise.
    Booleans and text are refused (JSON `true` or `"7"` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{label} must be a number, not {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(f"{label} must be a finite number, not {value}.")
    if integer and not isinstance(value, int):
        if not float(value).is_integer():
            raise RequestError(f"{label} must be a whole number, not {value!r}.")
        value = int(value)
    if not low <= value <= high:
        raise RequestError(f"{label} must be between {_fmt(low)} and {_fmt(high)}, not {_fmt(value)}.")
    return value


def check_text_size(label: str, text: str, limit: int) -> str:
    """Refuse text longer than `limit` characters before anything parses it."""
    if len(text) > limit:
        raise RequestError(f"{label} is {len(text):,} characters, more than the {limit:,} CraftStudio "
                           "reads: it is not generation parameters (or is damaged).")
    return text


def check_utf8(label: str, text: str) -> str:
    """Refuse text holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(f"{label} holds a byte that is not UTF-8 text at character {exc.start + 1}: "
                           "retype it or save the text as UTF-8.") from None
    return text
