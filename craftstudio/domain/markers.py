"""Prompt markers: which phrase is content, which is style, and how strongly (DESIGN.md §1).

Forms, for the content marker `c` (the style marker `s` works the same way)::

    a ginger cat <c> in watercolor style <s>      point marker: tags the phrase before it
    <c>a ginger cat</c> in <s>watercolor</s>      span: tags the enclosed text
    a ginger cat <c:0.7> ...                       weighted point marker
    <c:0.7>a ginger cat</c> ...                    weighted span

Routing weights (Eq. 8): γ_c = the weight of the `c` marker, 1 when unweighted, 0 when the
prompt has no `c` marker; γ_s likewise. Weights lie in [0, 2].

Eq. 6: markers are stripped before text encoding, in training and in inference alike, so both
must encode `ParsedPrompt.text` (or `strip_markers(prompt)`), never the raw prompt.

Decisions:

* What is a tag. A tag is `<`, an optional `/`, a name (a letter, then letters, digits, `_` or
  `-`), an optional `:` followed by weight text without `<` or `>`, then `>`. Anything else is
  ordinary text and passes through untouched: `a<b`, `<3`, `x < y > z`, `-> arrow`. There is no
  escape syntax; a literal `<c>` cannot be written.
* Every tag must be a CraftStudio marker, `c` or `s` (case-insensitive). Any other tag (`<x>`,
  `<content>`, A1111's `<lora:name:0.8>`, a textual-inversion token like `<cat-toy>`) is an
  error rather than text sent to the encoder, because in a prompt it is almost always a typo or
  a tag from another tool that would silently do nothing here.
* Point or span. An opening tag starts a span when the next tag of the same kind is its closing
  tag; otherwise it is a point marker. A point marker tags the text since the previous tag (or
  the start of the prompt), trimmed of spaces and of `,` / `;`. A point marker with nothing
  before it can only be meant as a span opener, so it is reported as an unclosed span.
* Spans do not nest: no marker may appear inside a span. Each kind is given at most once (a
  point and a span of the same kind count as twice). Closing tags take no weight.
* Whitespace tidying. After the tags are removed, runs of spaces and tabs become one space,
  spaces next to line breaks and at both ends go, and a space before `, . ; : ! ?` goes. A tag
  between two word characters (`cat<c>in`) leaves one space so the words do not fuse. The CLIP
  tokenizer normalises whitespace anyway; tidying keeps recorded and displayed text clean.
* Positions in messages are 1-based character positions ("column"); for a prompt of several
  lines the message gives the line and the column within it. `MarkerError.position` is the
  1-based position in the whole prompt, for the UI to place the cursor.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from craftstudio.domain.errors import RequestError

MIN_WEIGHT = 0.0
MAX_WEIGHT = 2.0
KINDS = {"c": "content", "s": "style"}

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]*)(?::([^<>]*))?>")
# Separators that belong to neither neighbouring phrase (`a cat, <c>` tags "a cat").
_PHRASE_TRIM = " \t\r\n,;"
_SPACE_RUN = re.compile(r"[ \t]+")
_SPACE_AT_BREAK = re.compile(r" *\n *")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?])")
# Names other tools put in angle brackets; worth a specific hint.
_FOREIGN = {"lora", "lyco", "hypernet", "embedding"}


class MarkerError(RequestError):
    """A malformed prompt marker; the message names its position and what is wrong."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position  # 1-based character position in the whole prompt


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt with its markers resolved.

    `text` is what the text encoder sees. `gamma_content`/`gamma_style` are γ_c/γ_s of Eq. 8.
    The phrases are the tagged text (tidied), or None when the marker is absent.
    """

    text: str
    gamma_content: float = 0.0
    gamma_style: float = 0.0
    content_phrase: str | None = None
    style_phrase: str | None = None

    @property
    def has_markers(self) -> bool:
        return self.content_phrase is not None or self.style_phrase is not None


@dataclass(frozen=True)
class _Tag:
    start: int  # 0-based index of "<"
    end: int  # index after ">"
    closing: bool
    kind: str  # "c" or "s"
    weight: float
    source: str  # the tag as typed, for messages


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Resolve the markers of `prompt`; raise `MarkerError` for a malformed one."""
    tags = [_read_tag(prompt, match) for match in _TAG.finditer(prompt)]
    pieces: list[str] = []  # text between tags, in order
    gammas: dict[str, float] = {}
    phrases: dict[str, str] = {}
    given_at: dict[str, int] = {}  # kind -> start of its first tag
    open_span: _Tag | None = None
    cursor = 0  # end of the previous tag

    for i, tag in enumerate(tags):
        before = prompt[cursor:tag.start]
        pieces.append(before)
        cursor = tag.end
        if open_span is not None:
            if tag.closing and tag.kind == open_span.kind:
                phrase = _tidy(before).strip(_PHRASE_TRIM)
                if not phrase:
                    raise _error(prompt, open_span, f"the span {open_span.source}…{tag.source} encloses no text")
                phrases[tag.kind] = phrase
                open_span = None
                continue
            raise _error(prompt, tag, f"{tag.source} is inside the span opened by {open_span.source} at "
                                      f"{_where(prompt, open_span.start)}; markers cannot be nested")
        if tag.closing:
            raise _error(prompt, tag, f"closing tag {tag.source} has no opening <{tag.kind}> before it")
        if tag.kind in given_at:
            raise _error(prompt, tag, f"the {KINDS[tag.kind]} marker is given twice ({tag.source} here, "
                                      f"and already at {_where(prompt, given_at[tag.kind])})")
        given_at[tag.kind] = tag.start
        gammas[tag.kind] = tag.weight
        next_same = next((t for t in tags[i + 1:] if t.kind == tag.kind), None)
        if next_same is not None and next_same.closing:
            open_span = tag
            continue
        phrase = _tidy(before).strip(_PHRASE_TRIM)
        if not phrase:
            raise _error(prompt, tag, f"{tag.source} opens a span that is never closed: add </{tag.kind}> "
                                      f"after the {KINDS[tag.kind]} phrase, or put {tag.source} after the "
                                      f"phrase it tags (\"a ginger cat <{tag.kind}>\")")
        phrases[tag.kind] = phrase
    # A span opener always has its closing tag ahead (that is how it became one), so no span can
    # be left open here.
    pieces.append(prompt[cursor:])

    return ParsedPrompt(
        text=_tidy(_join(pieces)),
        gamma_content=gammas.get("c", 0.0),
        gamma_style=gammas.get("s", 0.0),
        content_phrase=phrases.get("c"),
        style_phrase=phrases.get("s"),
    )


def strip_markers(prompt: str) -> str:
    """The text to encode for `prompt` (Eq. 6); raises `MarkerError` for a malformed marker."""
    return parse_prompt(prompt).text


def _read_tag(prompt: str, match: re.Match[str]) -> _Tag:
    slash, name, weight_text = match.group(1), match.group(2), match.group(3)
    source = match.group(0)
    where = _where(prompt, match.start())
    kind = name.lower()
    if kind not in KINDS:
        hint = (" (A1111 LoRA tags are not used: choose the content and style LoRAs in the LoRA panel)"
                if kind in _FOREIGN else "")
        raise MarkerError(f"Unknown marker {source} at {where}: use <c> for the content phrase and <s> "
                          f"for the style phrase{hint}.", match.start() + 1)
    if weight_text is None:
        return _Tag(match.start(), match.end(), bool(slash), kind, 1.0, source)
    if slash:
        raise MarkerError(f"Closing tag {source} at {where} takes no weight: write </{kind}> and put the "
                          f"weight on the opening tag.", match.start() + 1)
    try:
        weight = float(weight_text)
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight):
        raise MarkerError(f"The weight in {source} at {where} is not a number: write e.g. <{kind}:0.7>.",
                          match.start() + 1)
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise MarkerError(f"The weight in {source} at {where} is outside {MIN_WEIGHT:g}–{MAX_WEIGHT:g}.",
                          match.start() + 1)
    return _Tag(match.start(), match.end(), bool(slash), kind, weight, source)


def _error(prompt: str, tag: _Tag, what: str) -> MarkerError:
    return MarkerError(f"Prompt marker at {_where(prompt, tag.start)}: {what}.", tag.start + 1)


def _where(prompt: str, index: int) -> str:
    """'column 12', or 'line 2, column 5' in a prompt of several lines (both 1-based)."""
    line_start = prompt.rfind("\n", 0, index) + 1
    column = index - line_start + 1
    if "\n" not in prompt:
        return f"column {column}"
    return f"line {prompt.count(chr(10), 0, index) + 1}, column {column}"


def _join(pieces: list[str]) -> str:
    """Concatenate the text around removed tags, keeping a space between two words."""
    out = ""
    for piece in pieces:
        if out and piece and _is_word(out[-1]) and _is_word(piece[0]):
            out += " "
        out += piece
    return out


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _tidy(text: str) -> str:
    text = _SPACE_RUN.sub(" ", text)
    text = _SPACE_AT_BREAK.sub("\n", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return text.strip()
