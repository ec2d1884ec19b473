"""The Train page's state on the real engine: the shipped demo model, CPU, a few steps."""

from __future__ import annotations

import shlex
import threading
from pathlib import Path

import pytest

from craftstudio.domain.training import LoraTrainRequest
from craftstudio.library.catalog import Catalog
from craftstudio.state.train_state import TrainState, parse_routes
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.train_job import engine_train, preview_path

DEMO = Path(__file__).resolve().parents[2] / "resources" / "models" / "shapesworld"
TRAIN_TIMEOUT = 300_000  # a safety net for a crowded machine, not a speed requirement

pytestmark = pytest.mark.skipif(not (DEMO / "model_index.json").is_file(), reason="demo model not installed")


@pytest.fixture(scope="module")
def heart_refs(tmp_path_factory) -> Path:
    """Four rendered references of the demo's held-out shape (64×64, the model's size)."""
    from craftstudio.demo.world import SPLIT, render

    folder = tmp_path_factory.mktemp("refs") / "heart"
    folder.mkdir()
    for i in range(4):
        render("heart", SPLIT.train_styles[i], i).save(folder / f"heart-{i}.png")
    return folder


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.shutdown()


def make_state(runner, tmp_path, refs: Path, engine=None, **settings) -> TrainState:
    state = TrainState(runner, library_home=tmp_path / "home", engine=engine)
    state.model, state.kind, state.trigger = str(DEMO), "content", "sks"
    state.backbone = ""  # the plain demo model (the page's default adds the demo backbone)
    state.images.set_folder(refs)
    state.steps, state.rank, state.learning_rate, state.device = 4, 4, 2e-3, "cpu"
    state.sample_every, state.sample_steps, state.checkpoint_every = 0, 2, 0
    for key, value in settings.items():
        setattr(state, key, value)
    return state


def run_to_end(qtbot, state: TrainState, start=None):
    """Start (or resume) and wait for the run to end; returns its TrainOutput. A refused or
    failed run fails the test with the page's message."""
    outputs = []
    state.finished.connect(outputs.append)
    # The run ends (finished, failed or cancelled) when is_busy falls back to False.
    with qtbot.waitSignal(state.is_busy_changed, check_params_cb=lambda busy: not busy, timeout=TRAIN_TIMEOUT):
        job = (start or state.start)()
        assert job is not None, state.error
    assert state.error == "" and outputs, state.error or state.status
    return outputs[-1]


def lora_weights(path: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_weights(a, b) -> None:
    import torch

    wa, wb = lora_weights(a), lora_weights(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_content_lora_runs_shows_progress_and_lands_in_the_library(qtbot, runner, tmp_path, heart_refs):
    state = make_state(runner, tmp_path, heart_refs, sample_every=4, name="heart")
    steps_seen: list[int] = []
    state.step_changed.connect(steps_seen.append)
    output = run_to_end(qtbot, state)
    assert steps_seen == [1, 2, 3, 4] and state.total == 4
    assert [point["step"] for point in state.losses] == [1, 2, 3, 4]
    assert all(point["loss"] >= 0 for point in state.losses)
    assert [step for step, _ in state.samples] == [4]
    assert state.samples[0][1].size == (64, 64)
    out = tmp_path / "home" / "loras" / "heart.safetensors"
    assert state.output == str(out) and out.is_file()
    assert (out.parent / "heart.safetensors.samples" / "step-000004.png").is_file()
    assert preview_path(out).is_file()
    with Catalog.open(tmp_path / "home") as catalog:
        item = catalog.items.get(output.item_id)
    assert item.kind == "lora" and item.role == "content" and item.triggers == ["sks"]
    assert item.path == str(out) and item.preview == str(preview_path(out))
    assert item.meta["base_model"] == str(DEMO) and item.base_model_hash


def test_cancel_keeps_a_checkpoint_that_resume_finishes_as_an_uninterrupted_run(qtbot, runner, tmp_path,
                                                                                 heart_refs):
    reached, go_on = threading.Event(), threading.Event()

    def pausing_engine(request, *, progress, cancel, resume):
        # Hold the worker after step 2 of the first run until the page has pressed Cancel, so the
        # stop lands at the same step however busy the machine is.
        def watch(event):
            progress(event)
            if not resume and getattr(event, "values", None) and event.step == 2:
                reached.set()
                go_on.wait(30)
        return engine_train(request, progress=watch, cancel=cancel, resume=resume)

    state = make_state(runner, tmp_path, heart_refs, engine=pausing_engine, steps=5, checkpoint_every=1,
                       name="stopped")
    with qtbot.waitSignal(runner.cancelled, timeout=TRAIN_TIMEOUT):
        state.start()
        qtbot.waitUntil(reached.is_set, timeout=TRAIN_TIMEOUT)
        state.cancel()
        go_on.set()
    out = tmp_path / "home" / "loras" / "stopped.safetensors"
    assert not out.exists()
    assert [(run.out, run.step, run.total, run.what) for run in state.runs] == [(out, 2, 5, "content LoRA")]
    assert "Resume" in state.status

    run_to_end(qtbot, state, lambda: state.resume(state.runs[0]))
    assert [p["step"] for p in state.losses] == [1, 2, 3, 4, 5]  # the plot keeps the steps before the stop
    assert state.runs == []

    whole = make_state(runner, tmp_path, heart_refs, steps=5, checkpoint_every=1, name="whole")
    run_to_end(qtbot, whole)
    assert_same_weights(out, tmp_path / "home" / "loras" / "whole.safetensors")


def test_copy_as_command_trains_the_same_weights(qtbot, runner, tmp_path, heart_refs):
    from craftstudio.cli import main

    state = make_state(runner, tmp_path, heart_refs, steps=3, name="same", routes="", seed=5)
    state.images.remove(heart_refs / "heart-1.png")  # the request then names the files one by one
    command = state.command_line()
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "craftstudio", "train"]
    assert str(heart_refs / "heart-1.png") not in argv and str(heart_refs / "heart-2.png") in argv
    assert main(argv[3:]) == 0
    out = Path(state.output_path())
    by_command = out.with_name("by-command.safetensors")
    out.rename(by_command)

    run_to_end(qtbot, state)
    assert_same_weights(out, by_command)


def test_request_matches_the_command_line_defaults(runner, tmp_path, heart_refs):
    state = make_state(runner, tmp_path, heart_refs, routes="mid_block=style; up_blocks.1.attentions.0=none")
    request = state.request()
    assert isinstance(request, LoraTrainRequest)
    assert request.images == (str(heart_refs),)  # the whole folder: the command stays short
    assert request.routing_overrides == {"mid_block": "style", "up_blocks.1.attentions.0": "none"}
    assert "--route mid_block=style" in state.command_line()
    assert parse_routes("") is None


def test_a_backbone_logs_each_term_and_trains_from_the_chosen_images(qtbot, runner, tmp_path, heart_refs):
    from craftstudio.demo.world import render

    style = tmp_path / "mosaic"
    style.mkdir()
    for i, shape in enumerate(("star", "circle")):
        render(shape, "mosaic", 50 + i).save(style / f"mosaic-{i}.png")
    state = TrainState(runner, library_home=tmp_path / "home")
    state.model, state.kind, state.device = str(DEMO), "backbone", "cpu"
    state.steps, state.r_max, state.r_min, state.checkpoint_every, state.name = 2, 4, 2, 0, "w"
    state.content_refs.set_folder(heart_refs)
    state.content_refs.remove(heart_refs / "heart-0.png")
    state.style_refs.set_folder(style)
    output = run_to_end(qtbot, state)
    assert [p["step"] for p in state.losses] == [1, 2]
    assert {"loss", "denoise", "ortho"} <= set(state.losses[0])
    chosen = Path(output.result.request.content_dir)
    assert sorted(p.name for p in chosen.iterdir()) == ["000-heart-1.png", "001-heart-2.png", "002-heart-3.png"]
    with Catalog.open(tmp_path / "home") as catalog:
        item = catalog.items.get(output.item_id)
    assert item.kind == "backbone" and item.path == str(tmp_path / "home" / "backbones" / "w.safetensors")


def test_the_layers_choice_reaches_the_request_and_the_command(runner, tmp_path, heart_refs):
    state = make_state(runner, tmp_path, heart_refs, routing_preset="b-lora")
    assert state.request().routing_preset == "b-lora"
    assert "--routing b-lora" in state.command_line()
