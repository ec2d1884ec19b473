"""Output file names from a template such as `{date}-{time}-{seed}` (the Settings page's).

The template gives the stem; the saving code adds `.png` and, when a file of that name exists,
`-2`, `-3`, ..., so an image never overwrites another. Values are cleaned of characters that
file systems refuse, so a model named `sd 1.5: v2` still gives a valid name.
"""

from __future__ import annotations

import re
import string
import time
from typing import Any

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.markers import MarkerError, parse_prompt

DEFAULT_TEMPLATE = "{date}-{time}-{seed}"
# Placeholder -> what it becomes (shown on the Settings page and in docs/settings.md).
PLACEHOLDERS: dict[str, str] = {
    "date": "the day the image was made, 20261128",
    "time": "the time it was made, 143005",
    "seed": "the image's seed",
    "index": "its number in the batch, 1, 2, ...",
    "model": "the model's name",
    "prompt": "the first words of the prompt, markers removed",
    "steps": "the number of steps",
    "cfg": "the CFG scale",
    "sampler": "the sampler id, dpmpp_2m_karras",
    "size": "width x height, 512x512",
    "mode": "craft, direct or custom",
}
_BAD_CHARS = '/\\:*?"<>|'
_BAD_RE = re.compile(r'[/\\:*?"<>|\x00-\x1f]+')
_MAX_STEM = 150  # leaves room for the folder, "-NN" and ".png" under common 255-byte limits
_PROMPT_WORDS = 6


def check_template(template: str) -> None:
    """Raise `RequestError` with one sentence if `template` cannot name files."""
    names = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    if not template.strip():
        raise RequestError(f"The file name template is empty: write one with placeholders such as {names}.")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise RequestError(f"The file name template {template!r} has an unmatched {{ or }}: write "
                           "placeholders as {seed}.") from None
    bad = sorted({c for literal, _, _, _ in parts for c in literal if c in _BAD_CHARS})
    if bad:
        raise RequestError(f"The file name template may not contain the characters {' '.join(bad)}: "
                           "file names cannot hold them.")
    fields = [field for _, field, _, _ in parts if field is not None]
    for field in fields:
        if field not in PLACEHOLDERS:
            shown = "{" + field + "}" if field else "{}"
            raise RequestError(f"Unknown placeholder {shown} in the file name template: use {names}.")
    try:
        render_name(template, _EXAMPLE, seed=1234, index=0, when=time.localtime(0), model_name="model")
    except (ValueError, TypeError) as exc:
        raise RequestError(f"The file name template {template!r} cannot be filled in ({exc}): "
                           "write placeholders as {seed}, without formats.") from None


def render_name(template: str, request: GenerateRequest, *, seed: int, index: int,
                when: time.struct_time, model_name: str) -> str:
    """The file stem for image `index` (0-based) of `request`; `check_template` it first."""
    values: dict[str, Any] = {
        "date": time.strftime("%Y%m%d", when),
        "time": time.strftime("%H%M%S", when),
        "seed": seed,
        "index": index + 1,
        "model": _clean(model_name),
        "prompt": _clean(" ".join(_prompt_text(request.prompt).split()[:_PROMPT_WORDS])),
        "steps": request.steps,
        "cfg": f"{request.cfg_scale:g}",
        "sampler": request.scheduler,
        "size": f"{request.width}x{request.height}",
        "mode": str(request.mode),
    }
    stem = _clean(template.format(**values))[:_MAX_STEM].strip(" .")
    return stem or str(seed)


def example_name(template: str) -> str:
    """What the template gives for a sample image (for the Settings page)."""
    return render_name(template, _EXAMPLE, seed=1234, index=0,
                       when=time.localtime(), model_name="shapesworld") + ".png"


def _prompt_text(prompt: str) -> str:
    try:
        return parse_prompt(prompt).text
    except MarkerError:
        return prompt


def _clean(text: str) -> str:
    return _BAD_RE.sub("_", text).strip()


_EXAMPLE = GenerateRequest(model="shapesworld", prompt="a sks <c> in ohwx style <s:0.25>", width=64,
                           height=64, steps=20, cfg_scale=5.0)
