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

# Same pattern A1111 uses to split the settings line (key: value or key: "quoted, value").
_SETTING = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
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
    settings.update(extra or {})
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"{_NEGATIVE} {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in settings.items()))
    return "\n".join(lines)


def parse_settings_line(line: str) -> dict[str, str]:
    """`Steps: 20, Lora hashes: "a: 1, b: 2"` → {"Steps": "20", "Lora hashes": "a: 1, b: 2"}."""
    out: dict[str, str] = {}
    for key, value in _SETTING.findall(line):
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        out[key.strip()] = value
    return out


def parse_infotext(text: str) -> dict[str, Any]:
    """Split infotext into {"prompt", "negative_prompt", "settings": {...}}."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and len(_SETTING.findall(lines[-1])) >= 3:
        settings = parse_settings_line(lines.pop())
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


def request_from_infotext(text: str, model: str = "") -> GenerateRequest:
    """Turn infotext into a `GenerateRequest`; `model` stands in for the recorded model name."""
    parsed = parse_infotext(text)
    s = parsed["settings"]
    kwargs: dict[str, Any] = {
        "model": model or s.get("Model", ""),
        "prompt": parsed["prompt"],
        "negative_prompt": parsed["negative_prompt"],
    }
    try:
        if "Steps" in s:
            kwargs["steps"] = int(s["Steps"])
        if "CFG scale" in s:
            kwargs["cfg_scale"] = float(s["CFG scale"])
        if "Seed" in s:
            kwargs["seed"] = int(s["Seed"])
        if "Size" in s:
            width, height = s["Size"].lower().split("x")
            kwargs["width"], kwargs["height"] = int(width), int(height)
    except ValueError as exc:
        raise RequestError(f"The image's parameters have an unreadable setting ({exc}).") from exc
    if "Sampler" in s:
        label = s["Sampler"].lower()
        if s.get("Schedule type", "").lower() == "karras" and not label.endswith("karras"):
            label += " karras"
        if label in _LABEL_TO_SCHEDULER:
            kwargs["scheduler"] = _LABEL_TO_SCHEDULER[label]
    return GenerateRequest(**kwargs)
