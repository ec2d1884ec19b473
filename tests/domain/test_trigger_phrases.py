import pytest

from craftstudio.domain.markers import parse_prompt
from craftstudio.domain.trigger_phrases import has_trigger, insert_trigger, remove_trigger


@pytest.mark.parametrize(("prompt", "trigger", "role", "expected"), [
    ("", "sks", "content", "sks <c>"),
    ("a cat", "ohwx", "style", "a cat, ohwx <s>"),
    ("a cat,", "ohwx", "style", "a cat, ohwx <s>"),
    ("a sks <c> in ink style <s:0.25>", "ohwx", "style", "a sks <c> in ink style ohwx <s:0.25>"),
    ("<s>ink</s> and a dog", "ohwx", "style", "<s>ink ohwx</s> and a dog"),
    ("a sks <c>", "zxq", "content", "a sks zxq <c>"),
])
def test_insert_puts_the_trigger_under_the_marker_of_its_role(prompt, trigger, role, expected):
    result = insert_trigger(prompt, trigger, role)
    assert result == expected
    parsed = parse_prompt(result)
    assert trigger in parsed.text
    assert (parsed.gamma_content if role == "content" else parsed.gamma_style) > 0


def test_insert_leaves_a_prompt_that_already_names_the_trigger():
    assert insert_trigger("a SKS <c> in ink", "sks", "content") == "a SKS <c> in ink"
    # whole words only: "cat" is not in "catalog"
    assert insert_trigger("a catalog", "cat", "content") == "a catalog, cat <c>"
    assert insert_trigger("a cat", "  ", "content") == "a cat"


def test_insert_refuses_an_unknown_role():
    with pytest.raises(ValueError, match="content or style"):
        insert_trigger("a cat", "x", "other")


@pytest.mark.parametrize(("prompt", "trigger", "expected"), [
    ("a cat, ohwx <s>", "ohwx", "a cat"),
    ("a sks <c> in ohwx <s:0.25>", "ohwx", "a sks <c> in <s:0.25>"),
    ("a sks <c>, ohwx <s>", "sks", "a <c>, ohwx <s>"),
    ("sks <c>, ohwx <s>", "sks", "ohwx <s>"),
    ("<s>ohwx</s> a cat", "ohwx", "a cat"),
    ("<s>ink ohwx</s> a cat", "ohwx", "<s>ink</s> a cat"),
    ("a cat", "ohwx", "a cat"),
])
def test_remove_takes_the_trigger_and_a_marker_left_tagging_nothing(prompt, trigger, expected):
    result = remove_trigger(prompt, trigger)
    assert result == expected
    assert not has_trigger(result, trigger)
    parse_prompt(result)  # still well-formed


def test_insert_then_remove_gives_the_prompt_back():
    for prompt in ("a cat", "a cat <c> in ink <s>", ""):
        for role in ("content", "style"):
            assert remove_trigger(insert_trigger(prompt, "ohwx", role), "ohwx") == prompt
