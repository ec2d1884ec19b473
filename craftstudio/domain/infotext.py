"""A1111-compatible "parameters" text (infotext): write it, parse it, turn it into a request.

Format (as written by AUTOMATIC1111/Forge and read by most SD tools)::

    a prompt, possibly
    over several lines
    Negative prompt: a negative prompt
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: name, Lora hashes: "a: 1f2e"

The settings line is the last line; values holding commas are double-quoted with JSON escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import SCHEDULERS, GenerateRequest
from craftstudio.domain.limits import MAX_INFOTEXT_CHARS, check_text_size

# A quoted settings value ("a, b" with JSON escapes); matched from a known start, so linear.
_QUOTED = re.compile(r'"(?:\\.|[^\\"])+"')
_KEY_CHARS = frozenset("_ -/")
_NEGATIVE = "Negative prompt:"
_LABEL_TO_SCHEDULER = {label.lower(): key for key, label in SCHEDULERS.items()}
# Other tools' spellings of the same samplers.
_LABEL_TO_SCHEDULER.update({"euler_ancestral": "euler_a", "dpm++ 2m karras": "dpmpp_2m_karras"})


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if ("," in value or ":" in value or '"' in value) else value


def format_infotext(request: GenerateRequest, model_name: str, seed: int | None = None,
                    extra: dict[str, str] | None = None) -> str:
    """The `parameters` text for one image of `request` (image seed `seed`)."""
    settings: dict[str, str] = {
        "Steps": str(request.steps),
        "Sampler": SCHEDULERS.get(request.scheduler, request.scheduler),
        "CFG scale": f"{request.cfg_scale:g}",
        "Seed": str(request.seed if seed is None else seed),
        "Size": f"{request.width}x{request.height}",
        "Model": model_name,
    }
    settings.update(_picture_settings(request))
    settings.update(extra or {})
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"{_NEGATIVE} {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in settings.items()))
    return "\n".join(lines)


def _picture_settings(request: GenerateRequest) -> dict[str, str]:
    """A1111's keys for image to image, inpainting and hires (its `Denoising strength` is the
    hires pass's in a hires run, the init image's otherwise)."""
    out: dict[str, str] = {}
    if request.init_image is not None:
        out["Denoising strength"] = f"{request.strength:g}"
        if request.mask is not None:
            out["Mask blur"] = str(request.mask_blur)
    if request.hires_factor != 1.0:
        out["Denoising strength"] = f"{request.hires_strength:g}"
        out["Hires upscale"] = f"{request.hires_factor:g}"
        out["Hires steps"] = str(request.hires_steps)
        out["Hires upscaler"] = "Lanczos"
    return out


def _key_before(line: str, start: int, colon: int) -> str | None:
    """The settings key ending at `colon`: the longest run of word characters, spaces, `-` and
    `/` before it that starts with a word character (A1111's `\\w[\\w \\-/]+`), else None."""
    i = colon
    while i > start and (line[i - 1].isalnum() or line[i - 1] in _KEY_CHARS):
        i -= 1
    while i < colon and not (line[i].isalnum() or line[i] == "_"):
        i += 1
    key = line[i:colon].strip()
    return key if colon - i >= 2 and key else None


def parse_settings_line(line: str) -> dict[str, str]:
    """`Steps: 20, Lora hashes: "a: 1, b: 2"` → {"Steps": "20", "Lora hashes": "a: 1, b: 2"}.

    One pass over the line (A1111's own regular expression backtracks: minutes on 60 KB)."""
    out: dict[str, str] = {}
    n = len(line)
    i = 0
    colon = -1
    while i < n:
        if colon < i:
            colon = line.find(":", i)
            if colon < 0:
                break
        comma = line.find(",", i, colon)
        if comma >= 0:  # an item without a colon: skip it
            i = comma + 1
            continue
        key = _key_before(line, i, colon)
        i = colon + 1
        while i < n and line[i].isspace():
            i += 1
        quoted = _QUOTED.match(line, i) if i < n and line[i] == '"' else None
        if quoted and (quoted.end() == n or line[quoted.end()] == ","):
            value, i = quoted.group(), quoted.end() + 1
        else:
            end = line.find(",", i)
            end = n if end < 0 else end
            value, i = line[i:end], end + 1
        if key is None:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        out[key] = value if isinstance(value, str) else str(value)
    return out


def parse_infotext(text: str) -> dict[str, Any]:
    """Split infotext into {"prompt", "negative_prompt", "settings": {...}}. Text over
    `MAX_INFOTEXT_CHARS` is refused (`RequestError`) before it is parsed."""
    check_text_size("The image's parameters text", text, MAX_INFOTEXT_CHARS)
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines:
        last = parse_settings_line(lines[-1])
        if len(last) >= 3:
            settings = last
            lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith(_NEGATIVE):
            target = negative_lines
            line = line[len(_NEGATIVE):].lstrip()
        target.append(line)
    return {
        "prompt": "\n".join(prompt_lines).strip(),
        "negative_prompt": "\n".join(negative_lines).strip(),
        "settings": settings,
    }


def request_from_infotext(text: str, model: str = "", dropped: dict[str, str] | None = None) -> GenerateRequest:
    """Turn infotext into a `GenerateRequest`; `model` stands in for the recorded model name.

    A setting that is unreadable, not finite or out of range is left at its default: with a
    `dropped` dict, {field: sentence naming it} is added there; without one it is a `RequestError`."""
    parsed = parse_infotext(text)
    s = parsed["settings"]
    record: dict[str, Any] = {
        "model": model or s.get("Model", ""),
        "prompt": parsed["prompt"],
        "negative_prompt": parsed["negative_prompt"],
    }
    problems: dict[str, str] = {}
    numbers = [("Steps", "steps", int), ("CFG scale", "cfg_scale", float), ("Seed", "seed", int)]
    if "Hires upscale" in s:  # A1111 hires: the strength is the hires pass's
        numbers += [("Hires upscale", "hires_factor", float), ("Hires steps", "hires_steps", int),
                    ("Denoising strength", "hires_strength", float)]
    for key, field, kind in numbers:
        if key in s:
            try:
                record[field] = kind(s[key])
            except ValueError:
                problems[field] = f"{key} {s[key][:40]!r} is not a number."
    if "Size" in s:
        try:
            width, height = s["Size"].lower().split("x")
            record["width"], record["height"] = int(width), int(height)
        except ValueError:
            problems["width"] = problems["height"] = f"Size {s['Size'][:40]!r} is not WIDTHxHEIGHT."
    if "Sampler" in s:
        label = s["Sampler"].lower()
        if s.get("Schedule type", "").lower() == "karras" and not label.endswith("karras"):
            label += " karras"
        if label in _LABEL_TO_SCHEDULER:
            record["scheduler"] = _LABEL_TO_SCHEDULER[label]
    request, invalid = GenerateRequest.from_record(record)
    problems.update(invalid)
    if problems and dropped is None:
        raise RequestError(f"The image's parameters have an unreadable setting: {next(iter(problems.values()))}")
    if dropped is not None:
        dropped.update(problems)
    return request
