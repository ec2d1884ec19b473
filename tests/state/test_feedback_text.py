"""Progress and marker feedback in words."""

from __future__ import annotations

import pytest

from craftstudio.domain.markers import parse_prompt
from craftstudio.domain.progress import ProgressEvent
from craftstudio.state.feedback_text import duration_text, markers_note, rate_text, step_text


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (59.4, "59 s"), (61, "1 min 01 s"),
                                               (3600 * 2 + 60 * 5 + 7, "2 h 05 min")])
def test_durations_read_naturally(seconds, text):
    assert duration_text(seconds) == text


def test_slow_speeds_are_seconds_per_step():
    assert rate_text(4.04) == "4.0 it/s" and rate_text(0.25) == "4.0 s/it"


def test_a_batch_names_the_image_and_counts_all_its_steps():
    event = ProgressEvent("denoise", 5, 10, image_index=1, image_count=3)
    # 15 steps done, 5 of them in 10 s since the first step seen: 0.5 it/s, 15 steps to go.
    assert step_text(event, 3, (0.0, 10), 10.0) == "image 2/3 · step 5/10 · 2.0 s/it · 30 s left"
    assert step_text(event, 3, (10.0, 15), 10.0) == "image 2/3 · step 5/10"  # no speed yet


def test_the_hires_pass_is_named_and_counts_its_own_steps():
    event = ProgressEvent("denoise", 2, 10, message="hires pass")
    assert step_text(event, 1, (0.0, 0), 4.0) == "hires pass · step 2/10 · 2.0 s/it · 16 s left"


def test_markers_note_names_a_loaded_lora_switched_off():
    assert markers_note(parse_prompt("a cat <c>"), "c.safetensors", "s.safetensors") == (
        "The style LoRA is off (no <s> in the prompt).")
    assert markers_note(parse_prompt("a cat"), "c.safetensors", "s.safetensors") == ""  # no markers: γ 1
    assert markers_note(parse_prompt("a cat <c>"), "c.safetensors", "") == ""
