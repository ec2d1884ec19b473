"""The ZipLoRA merge dialog's state: filled from Generate, refuses bad settings with a sentence,
runs the merge as a job (progress, result announced for the library), loads the result."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from craftstudio.domain.progress import ProgressEvent
from craftstudio.state.merge_state import MergeState
from tests.state.conftest import TIMEOUT, make_state


class FakeMerge:
    def __init__(self) -> None:
        self.requests = []

    def __call__(self, request, *, progress=None, cancel=None):
        self.requests.append(request)
        for step in range(1, 4):
            if cancel is not None:
                cancel.raise_if_cancelled()
            progress(ProgressEvent("train", step, 3, values={"loss": 0.5 / step, "similarity": 1.0 / step}))
        Path(request.out).write_bytes(b"merged")
        return SimpleNamespace(out=request.out, layers=12, seconds=1.0, similarity=0.25)


def _merge_state(runner, tmp_path, engine=None):
    generate = make_state(runner, tmp_path)
    generate.craft.content_lora = str(tmp_path / "cat.safetensors")
    generate.craft.style_lora = str(tmp_path / "ink.safetensors")
    loras = tmp_path / "LoRAs"
    state = MergeState(runner, generate, folder=lambda: str(loras), engine=engine or FakeMerge())
    return state, generate


def test_filled_from_generate_with_an_output_in_the_loras_folder(runner, tmp_path):
    state, _ = _merge_state(runner, tmp_path)
    state.fill_from_generate()
    assert (state.content_lora, state.style_lora) == (str(tmp_path / "cat.safetensors"),
                                                      str(tmp_path / "ink.safetensors"))
    assert state.out == str(tmp_path / "LoRAs" / "cat + ink (ZipLoRA).safetensors")


def test_missing_prompts_or_an_existing_output_are_refused(runner, tmp_path):
    state, _ = _merge_state(runner, tmp_path)
    state.fill_from_generate()
    assert state.start() is None and "The content prompt is empty" in state.error
    state.content_prompt, state.style_prompt = "a photo of cat", "an image in ink style"
    Path(state.out).parent.mkdir(parents=True)
    Path(state.out).write_bytes(b"x")
    assert state.start() is None and "already exists" in state.error
    assert not state.is_busy and runner.pending == []


def test_a_merge_runs_reports_and_is_used_on_generate(qtbot, runner, tmp_path):
    engine = FakeMerge()
    state, generate = _merge_state(runner, tmp_path, engine)
    state.fill_from_generate()
    state.content_prompt, state.style_prompt = "a photo of cat", "an image in ink style"
    Path(state.out).parent.mkdir(parents=True)
    announced = []
    state.merged.connect(announced.append)
    with qtbot.waitSignal(state.merged, timeout=TIMEOUT):
        assert state.start() is not None
    assert announced == [state.out] and state.result == state.out and not state.is_busy
    assert state.progress == 1.0 and "Merged 12 layers" in state.status
    request = engine.requests[0]
    assert request.model == generate.model and request.steps == 100
    state.use_result()
    assert generate.craft.content_lora == state.out and generate.craft.style_lora == ""
