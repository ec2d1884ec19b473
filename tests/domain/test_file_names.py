"""File name templates: every placeholder fills in, bad templates are refused in one sentence."""

from __future__ import annotations

import time

import pytest

from craftstudio.domain.errors import RequestError
from craftstudio.domain.file_names import DEFAULT_TEMPLATE, PLACEHOLDERS, check_template, render_name
from craftstudio.domain.generation import FusionSwitches, GenerateRequest

WHEN = time.strptime("2026-11-28 14:30:05", "%Y-%m-%d %H:%M:%S")


def _request(**changes) -> GenerateRequest:
    values = dict(model="/m/sd15", prompt="a ginger cat <c> in watercolor style <s:0.8>", width=512,
                  height=768, steps=30, cfg_scale=6.5, scheduler="ddim")
    values.update(changes)
    return GenerateRequest(**values)


def test_the_default_template_keeps_the_names_images_had_before():
    assert render_name(DEFAULT_TEMPLATE, _request(), seed=42, index=0, when=WHEN,
                       model_name="sd15") == "20261128-143005-42"


def test_every_placeholder_fills_in():
    template = "-".join("{" + name + "}" for name in PLACEHOLDERS)
    stem = render_name(template, _request(switches=FusionSwitches.for_mode("direct")), seed=9, index=2,
                       when=WHEN, model_name="my model")
    assert stem == ("20261128-143005-9-3-my model-a ginger cat in watercolor style-30-6.5-ddim-512x768-"
                    "direct")


def test_values_are_cleaned_of_characters_file_systems_refuse():
    stem = render_name("{model}_{prompt}", _request(prompt='a/b: "c"?'), seed=1, index=0, when=WHEN,
                       model_name="sd 1.5: v2/final")
    assert "/" not in stem and ":" not in stem and '"' not in stem and "?" not in stem
    assert stem.startswith("sd 1.5_ v2_final_a_b_")


@pytest.mark.parametrize(("template", "fragment"), [
    ("", "The file name template is empty"),
    ("   ", "The file name template is empty"),
    ("{date}/{seed}", "may not contain the characters /"),
    ("{seed", "unmatched { or }"),
    ("{colour}-{seed}", "Unknown placeholder {colour}"),
    ("{}-{seed}", "Unknown placeholder {}"),
    ("{seed:q}", "cannot be filled in"),
])
def test_bad_templates_are_refused_with_a_sentence(template, fragment):
    with pytest.raises(RequestError, match=None) as info:
        check_template(template)
    assert fragment in str(info.value)
    assert str(info.value).endswith(".")


def test_a_good_template_passes():
    check_template("{date} {prompt} #{index}")
    check_template("{seed:08d}")
