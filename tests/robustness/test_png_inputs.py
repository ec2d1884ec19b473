"""Hostile PNGs through `library params` and `GenerateState.apply_png`: never a traceback, never an
exception out of the GUI state; a PNG that cannot be read is one sentence naming it, a recorded
setting of the wrong type or range is dropped with a sentence naming it."""

from __future__ import annotations

import json

import pytest

from craftstudio.domain.limits import MAX_INFOTEXT_CHARS
from craftstudio.state.generate_state import GenerateState
from craftstudio.workers.job_runner import JobRunner
from tests.robustness.conftest import (
    BAD_PNG_KINDS,
    BAD_RECORDED,
    assert_one_line,
    bad_png,
    craft_png,
    good_request,
    png_bytes,
    run_cli,
    shown,
    text_chunk,
)
from tests.workers.fake_engine import FakeEngine

PARAMETER_FAULTS = {  # A1111 settings lines with one bad value each
    "steps-text": ("Steps: many, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "Steps"),
    "cfg-nan": ("Steps: 4, Sampler: Euler, CFG scale: nan, Seed: 1, Size: 64x64", "CFG scale"),
    "cfg-inf": ("Steps: 4, Sampler: Euler, CFG scale: inf, Seed: 1, Size: 64x64", "CFG scale"),
    "seed-negative": ("Steps: 4, Sampler: Euler, CFG scale: 7, Seed: -4, Size: 64x64", "Seed"),
    "size-odd": ("Steps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 65x64", "width"),
    "size-text": ("Steps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: big", "Size"),
    "steps-huge": ("Steps: 99999999999, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "Steps"),
}


@pytest.fixture
def state(qtbot, tmp_path):
    runner = JobRunner()
    engine = FakeEngine()
    state = GenerateState(runner, engine=engine, outputs=tmp_path / "outputs")
    state.model, state.prompt, state.cfg_scale, state.steps = "/models/fake", "before", 6.0, 3
    state.width = state.height = 64
    yield state
    runner.shutdown()


def _generate_still_works(state) -> None:
    """After any PNG, Generate either submits a valid request or reports an error; it never raises."""
    state.random_seed = False
    job = state.generate()
    assert job is not None or state.error
    if job is not None:
        state.cancel()


# ---------- whole PNGs that cannot be read


@pytest.mark.parametrize("kind", BAD_PNG_KINDS)
def test_params_refuses_unreadable_pngs(capsys, home, unchanged, tmp_path, kind):
    path = bad_png(tmp_path, kind)
    rc, out, err = run_cli(capsys, ["library", "params", str(path)])
    assert_one_line(rc, err, shown(path))
    assert out == ""
    unchanged()


@pytest.mark.parametrize("kind", [*BAD_PNG_KINDS, "no-parameters"])
def test_apply_png_sets_error_and_keeps_settings(state, tmp_path, kind):
    path = bad_png(tmp_path, kind)
    assert state.apply_png(path) is False
    assert shown(path) in state.error or str(path) in state.error
    assert (state.prompt, state.cfg_scale, state.steps) == ("before", 6.0, 3)
    _generate_still_works(state)


# ---------- recorded settings of the wrong type or range: dropped by name, the rest restored


@pytest.mark.parametrize("case", BAD_RECORDED)
def test_apply_png_drops_invalid_recorded_settings(state, tmp_path, case):
    change, words = BAD_RECORDED[case]
    path = craft_png(tmp_path / f"{case}.png", good_request(**change))
    assert state.apply_png(path) is True
    assert words.lower() in state.error.lower() and path.name in state.error
    assert state.prompt == (good_request()["prompt"] if "prompt" not in change else "before")
    request = state.request()
    request.validate() if request.model else None  # every restored value is valid
    _generate_still_works(state)


@pytest.mark.parametrize("case", BAD_RECORDED)
def test_params_notes_invalid_recorded_settings(capsys, home, unchanged, tmp_path, case):
    change, words = BAD_RECORDED[case]
    path = craft_png(tmp_path / f"{case}.png", good_request(**change))
    rc, out, err = run_cli(capsys, ["library", "params", str(path)])
    assert rc == 0 and err == "" and "Traceback" not in out
    assert any(line.startswith("note:") and words.lower() in line.lower() for line in out.splitlines()), out
    unchanged()


@pytest.mark.parametrize("case", PARAMETER_FAULTS)
def test_a1111_settings_out_of_range_are_dropped_by_name(state, capsys, home, tmp_path, case):
    settings, words = PARAMETER_FAULTS[case]
    path = tmp_path / f"{case}.png"
    path.write_bytes(png_bytes(chunks=[text_chunk("parameters", f"a red square\n{settings}")]))
    assert state.apply_png(path) is True and words in state.error and state.prompt == "a red square"
    rc, out, _ = run_cli(capsys, ["library", "params", str(path)])
    assert rc == 0 and any(line.startswith("note:") and words in line for line in out.splitlines())
    _generate_still_works(state)


@pytest.mark.parametrize("weight", ["nan", "inf", "99", "-5"])
def test_lora_tag_weights_out_of_range_are_left_out(capsys, home, tmp_path, weight):
    path = tmp_path / "tag.png"
    path.write_bytes(png_bytes(chunks=[text_chunk(
        "parameters", f"a cat <lora:kept:{weight}>\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64")]))
    rc, out, _ = run_cli(capsys, ["library", "params", str(path)])
    assert rc == 0 and "weight of LoRA 'kept'" in out and "left out" in out


# ---------- parsing cost and terminal output


def test_five_megabyte_parameters_are_refused_before_parsing(tmp_path):
    from craftstudio.domain.errors import RequestError
    from craftstudio.domain.infotext import parse_infotext

    with pytest.raises(RequestError, match="characters"):
        parse_infotext("Steps: 1, " * 500_000)


@pytest.mark.parametrize("text", [
    "a" * (MAX_INFOTEXT_CHARS - 10),  # one word, no colon: the old parser's quadratic case
    "a b, " * (MAX_INFOTEXT_CHARS // 5 - 2),
    "k: \"" + "x, k: \\" * (MAX_INFOTEXT_CHARS // 8 - 2),
    "<lora:" * (MAX_INFOTEXT_CHARS // 6 - 2),
    " " * (MAX_INFOTEXT_CHARS - 20) + "<lora:a:1>",
], ids=["no-colon", "many-commas", "unclosed-quotes", "unclosed-tags", "blank-run"])
def test_worst_case_parameters_up_to_the_cap_parse(tmp_path, capsys, home, text):
    path = tmp_path / "worst.png"
    path.write_bytes(png_bytes(chunks=[text_chunk("parameters", text)]))
    rc, _, err = run_cli(capsys, ["library", "params", str(path)])
    assert rc == 0 and err == ""


def test_params_escapes_control_characters_of_a_recorded_prompt(capsys, home, tmp_path):
    path = craft_png(tmp_path / "esc.png", good_request(prompt="a cat\x1b]0;owned\x07\x1b[2J\u202e"))
    rc, out, _ = run_cli(capsys, ["library", "params", str(path)])
    assert rc == 0 and "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "a cat\\u001b]0;owned" in out
    rc, out, _ = run_cli(capsys, ["library", "params", "--json", str(path)])
    assert rc == 0 and "\x1b" not in out and json.loads(out)["request"]["prompt"].startswith("a cat\x1b")
