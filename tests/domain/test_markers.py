"""Prompt markers: every form, γ values, stripping, tidying, and each malformed case."""

from __future__ import annotations

import pytest

from craftstudio.domain.errors import RequestError
from craftstudio.domain.markers import MarkerError, ParsedPrompt, parse_prompt, strip_markers

# prompt, text, γ_c, γ_s, content phrase, style phrase
VALID = [
    ("a ginger cat <c> in watercolor style <s>",
     "a ginger cat in watercolor style", 1.0, 1.0, "a ginger cat", "in watercolor style"),
    ("a ginger cat <c:0.7> in watercolor style <s:1.5>",
     "a ginger cat in watercolor style", 0.7, 1.5, "a ginger cat", "in watercolor style"),
    ("<c>a ginger cat</c> in <s>watercolor</s> style",
     "a ginger cat in watercolor style", 1.0, 1.0, "a ginger cat", "watercolor"),
    ("<c:0.7>a ginger cat</c>, <s:0>watercolor</s>",
     "a ginger cat, watercolor", 0.7, 0.0, "a ginger cat", "watercolor"),
    ("a ginger cat <c>, watercolor <s>, highly detailed",
     "a ginger cat, watercolor, highly detailed", 1.0, 1.0, "a ginger cat", "watercolor"),
    ("<c>a cat</c> in watercolor <s>",  # a point marker after a span tags the text since the span
     "a cat in watercolor", 1.0, 1.0, "a cat", "in watercolor"),
    ("a ginger cat <c>", "a ginger cat", 1.0, 0.0, "a ginger cat", None),
    ("in watercolor <s:2>", "in watercolor", 0.0, 2.0, None, "in watercolor"),
    ("a photo of a cat", "a photo of a cat", 0.0, 0.0, None, None),
    ("a cat <C> oil paint <S>", "a cat oil paint", 1.0, 1.0, "a cat", "oil paint"),  # any case
    ("cat<c>watercolor<s>", "cat watercolor", 1.0, 1.0, "cat", "watercolor"),  # words do not fuse
    ("  a   cat\t<c>  ,  oil  <s> .", "a cat, oil.", 1.0, 1.0, "a cat", "oil"),
    ("a cat <c:1e-1> <s:1.>oil</s>", "a cat oil", 0.1, 1.0, "a cat", "oil"),
]


@pytest.mark.parametrize(("prompt", "text", "gc", "gs", "cp", "sp"), VALID)
def test_valid_prompts(prompt, text, gc, gs, cp, sp):
    assert parse_prompt(prompt) == ParsedPrompt(text, gc, gs, cp, sp)
    assert strip_markers(prompt) == text


@pytest.mark.parametrize("prompt", ["a<b", "I <3 cats", "x < y > z", "a -> b", "<>", "</>", "< c >", "<c >"])
def test_text_that_is_not_a_tag_is_kept(prompt):
    parsed = parse_prompt(prompt)
    assert parsed.text == prompt
    assert not parsed.has_markers and parsed.gamma_content == parsed.gamma_style == 0.0


def test_multiline_prompt_keeps_line_breaks():
    assert strip_markers("a cat <c>  \n  oil paint <s>") == "a cat\noil paint"


# prompt, 1-based position of the faulty tag, words the message must contain
MALFORMED = [
    ("<c>a cat in watercolor", 1, "never closed"),
    ("a cat <c> <s>", 11, "never closed"),
    ("a cat </c> watercolor", 7, "no opening"),
    ("a cat <c:abc>", 7, "not a number"),
    ("a cat <c:>", 7, "not a number"),
    ("a cat <c:nan>", 7, "not a number"),
    ("a cat <s:2.5>", 7, "outside 0–2"),
    ("a cat <c:-0.1>", 7, "outside 0–2"),
    ("a cat <c> a dog <c>", 17, "given twice"),
    ("<c>a cat</c> and a dog <c>", 24, "given twice"),
    ("a <x> cat", 3, "Unknown marker <x>"),
    ("a <content> cat", 3, "Unknown marker <content>"),
    ("a cat <lora:foo:0.8>", 7, "LoRA panel"),
    ("<c>a cat</c:0.5>", 9, "takes no weight"),
    ("<c>a <s>cat</s></c>", 6, "nested"),
    ("<c> </c> oil <s>", 1, "encloses no text"),
]


@pytest.mark.parametrize(("prompt", "position", "words"), MALFORMED)
def test_malformed_markers(prompt, position, words):
    with pytest.raises(MarkerError) as info:
        parse_prompt(prompt)
    assert info.value.position == position
    assert f"column {position}" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, RequestError)


def test_position_in_multiline_prompt_names_line_and_column():
    with pytest.raises(MarkerError, match=r"line 2, column 5") as info:
        parse_prompt("a cat <c>\noil <x>")
    assert info.value.position == 15
