"""Trigger phrases in a prompt: put a LoRA's trigger in with its marker, take it out again.

Using a LoRA from the library (or a freshly trained one) should make the prompt name it, as
A1111 users expect, and tag it for CRAFT: a content LoRA's trigger goes before a `<c>` marker,
a style LoRA's before `<s>`.

Decisions:

* A trigger already in the prompt (whole words, case-insensitive) is left alone: the user
  placed it, and a second copy would only change the picture.
* When the prompt already has a marker of the kind, the trigger joins the tagged phrase: it is
  put right before the point marker (`watercolor style <s>` → `watercolor style ink <s>`) or
  before the closing tag of a span. The marker's weight is kept.
* Otherwise `, trigger <c>` (or `<s>`) is appended; an empty prompt becomes `trigger <c>`.
* Removing a trigger takes out the phrase and, when that leaves a point marker with nothing in
  its clause (the text since the previous tag, `,` or `;`), the marker too; separators left
  dangling are tidied. So removing what `insert_trigger` put in gives the prompt back.
"""

from __future__ import annotations

import re

from craftstudio.domain.markers import KINDS

_MARKER = {"content": "c", "style": "s"}
_KINDS = "".join(KINDS)
_TAG = re.compile(rf"<(/?)([{_KINDS}])(?::[^<>]*)?>", re.IGNORECASE)
_EMPTY_SPAN = re.compile(rf"<([{_KINDS}])(?::[^<>]*)?>\s*</\1>", re.IGNORECASE)


def _kind(role: str) -> str:
    try:
        return _MARKER[role]
    except KeyError:
        raise ValueError(f"role must be content or style, not {role!r}") from None


def _phrase_pattern(trigger: str) -> re.Pattern[str]:
    # Whole words: "cat" must not match inside "catalog".
    return re.compile(r"(?<!\w)" + re.escape(trigger.strip()) + r"(?!\w)", re.IGNORECASE)


def has_trigger(prompt: str, trigger: str) -> bool:
    return bool(trigger.strip()) and _phrase_pattern(trigger).search(prompt) is not None


def insert_trigger(prompt: str, trigger: str, role: str) -> str:
    """`prompt` with `trigger` tagged by the marker of `role` ("content" or "style")."""
    kind = _kind(role)
    trigger = trigger.strip()
    if not trigger or has_trigger(prompt, trigger):
        return prompt
    closing = re.search(rf"</{kind}>", prompt, re.IGNORECASE)
    point = re.search(rf"<{kind}(?::[^<>]*)?>", prompt, re.IGNORECASE)
    if closing is not None:  # a span: the trigger goes inside, before the closing tag
        return f"{prompt[:closing.start()].rstrip()} {trigger}{prompt[closing.start():]}"
    if point is not None:
        before = prompt[:point.start()].rstrip()
        return f"{before} {trigger} {prompt[point.start():]}" if before else f"{trigger} {prompt}"
    body = prompt.rstrip().rstrip(",")
    return f"{body}, {trigger} <{kind}>" if body else f"{trigger} <{kind}>"


def remove_trigger(prompt: str, trigger: str) -> str:
    """`prompt` without `trigger`; a marker left tagging nothing goes with it."""
    trigger = trigger.strip()
    if not trigger:
        return prompt
    text = _EMPTY_SPAN.sub("", _phrase_pattern(trigger).sub("", prompt))
    tags = list(_TAG.finditer(text))
    pieces, last = [], 0
    for index, tag in enumerate(tags):
        phrase = text[last:tag.start()]
        pieces.append(phrase)
        later = [t for t in tags[index + 1:] if t.group(2).lower() == tag.group(2).lower()]
        is_point = not tag.group(1) and not (later and later[0].group(1))
        # Keep a point marker only if its clause (since the previous tag or separator) still
        # has text: `a cat, ohwx <s>` without ohwx is `a cat`, not `a cat <s>`.
        if not is_point or re.split(r"[,;]", phrase)[-1].strip():
            pieces.append(tag.group(0))
        last = tag.end()
    pieces.append(text[last:])
    text = re.sub(r"\s*,(\s*,)+", ",", "".join(pieces))  # ", ," left between two phrases
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,;])", r"\1", text)
    text = re.sub(rf"\s+(</[{_KINDS}]>)", r"\1", text, flags=re.IGNORECASE)
    return text.strip().strip(",;").strip()
