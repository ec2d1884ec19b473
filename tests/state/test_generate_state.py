"""GenerateState: builds and validates requests, follows its job, persists settings."""

from __future__ import annotations

import pytest

from craftstudio.domain.errors import ModelError
from craftstudio.library.png_params import save_png
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine, _image, quick_request


def test_generate_runs_the_job_and_shows_the_images(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.batch_count = 2
    previews, progress = [], []
    state.preview_changed.connect(previews.append)
    state.progress_changed.connect(progress.append)
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        assert state.generate() is not None
        assert state.is_busy
    assert not state.is_busy and state.error == ""
    assert len(state.images) == 2 and len(state.image_paths) == 2
    assert all(p.exists() for p in state.image_paths)
    assert any(p is not None for p in previews)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert "2 images" in state.status
    request = engine.calls[0]
    assert (request.model, request.prompt, request.width, request.steps) == ("/models/fake", "a ginger cat", 64, 3)
    assert request.seed == state.seed


def test_random_seed_draws_a_new_seed_and_fixed_seed_keeps_it(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.random_seed, state.seed = False, 1234
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert engine.calls[-1].seed == 1234
    state.random_seed = True
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert engine.calls[-1].seed == state.seed


def test_property_signals_fire_only_on_change(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    seen = []
    state.prompt_changed.connect(seen.append)
    state.prompt = "a ginger cat"  # unchanged
    state.prompt = "a dog"
    assert seen == ["a dog"]


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("width", 100, "Image width 100 is not allowed"),
    ("model", "", "No model is chosen"),
    ("steps", 0, "Steps must be between 1 and 1000"),
])
def test_invalid_settings_show_an_error_and_submit_nothing(qtbot, runner, tmp_path, name, value, fragment):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    setattr(state, name, value)
    assert state.generate() is None
    assert fragment in state.error
    assert not state.is_busy
    assert runner.pending == [] and not runner.is_busy
    assert engine.calls == []


def test_engine_user_error_lands_in_error(qtbot, runner, tmp_path):
    engine = FakeEngine(error=ModelError("/models/fake does not exist: choose a model folder."))
    state = make_state(runner, tmp_path, engine)
    with qtbot.waitSignal(state.error_changed, timeout=TIMEOUT):
        state.generate()
    qtbot.waitUntil(lambda: not state.is_busy, timeout=TIMEOUT)
    assert state.error == "/models/fake does not exist: choose a model folder."
    assert state.images == []
    # The next attempt clears the old error.
    engine.error = None
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert state.error == ""


def test_cancel_while_running(qtbot, runner, tmp_path):
    engine = FakeEngine().hold()
    state = make_state(runner, tmp_path, engine)
    state.generate()
    assert engine.entered.wait(5)
    with qtbot.waitSignal(runner.cancelled, timeout=TIMEOUT):
        state.cancel()
    assert not state.is_busy
    assert state.status == "Cancelled."
    assert state.images == []
    assert not (tmp_path / "outputs").exists()


def test_generate_while_busy_queues_the_next_job(qtbot, runner, tmp_path):
    engine = FakeEngine().hold()
    state = make_state(runner, tmp_path, engine)
    state.random_seed = False
    first = state.generate()
    qtbot.waitUntil(engine.entered.is_set, timeout=TIMEOUT)
    second = state.generate()
    assert first is not None and second is not None and second != first
    assert runner.pending == [second] and state.job_ids == [first, second]
    engine.release()
    qtbot.waitUntil(lambda: not state.is_busy, timeout=TIMEOUT)
    assert len(engine.calls) == 2


def test_generate_times_n_queues_n_jobs_with_the_next_seeds(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.random_seed, state.seed, state.repeat = False, 40, 3
    state.generate()
    qtbot.waitUntil(lambda: not state.is_busy, timeout=TIMEOUT)
    assert [call.seed for call in engine.calls] == [40, 41, 42]


def test_other_jobs_do_not_touch_this_state(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    other = make_state(runner, tmp_path)
    with qtbot.waitSignal(other.images_changed, timeout=TIMEOUT):
        other.generate()
    assert state.images == [] and state.status == "" and not state.is_busy


def test_settings_are_saved_on_generate_and_restored(qtbot, runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    state = make_state(runner, tmp_path, settings=settings)
    state.negative_prompt, state.cfg_scale, state.scheduler = "blurry", 5.5, "euler_a"
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    restored = GenerateState(runner, settings=settings)
    assert (restored.model, restored.prompt, restored.negative_prompt) == ("/models/fake", "a ginger cat", "blurry")
    assert (restored.cfg_scale, restored.scheduler, restored.width, restored.steps) == (5.5, "euler_a", 64, 3)
    assert restored.images == [] and not restored.is_busy


def test_apply_png_restores_the_recorded_settings(qtbot, runner, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    request = quick_request(model=str(model_dir), prompt="a red house", steps=7, seed=2**40, scheduler="ddim")
    png = save_png(_image(request, 1, 1), tmp_path / "in.png", request, seed=2**40, model_name="m")
    state = GenerateState(runner)
    assert state.apply_png(png)
    assert (state.model, state.prompt, state.steps, state.scheduler) == (str(model_dir), "a red house", 7, "ddim")
    assert state.seed == 2**40 and not state.random_seed
    not_png = tmp_path / "notes.png"
    not_png.write_text("hello")
    assert not state.apply_png(not_png)
    assert "not a readable image" in state.error


def test_use_lora_loads_it_by_role_and_tags_its_trigger(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path, prompt="a ginger cat <c>")
    with qtbot.waitSignal(state.show_requested, timeout=TIMEOUT):
        state.use_lora("/loras/ink.safetensors", "style", "ink sketch")
    assert state.craft.style_lora == "/loras/ink.safetensors"
    assert state.prompt == "a ginger cat <c>, ink sketch <s>"
    assert "style γ 1.0" in state.markers
    state.use_lora("/loras/cat.safetensors", "content", "ginger cat")  # already named: kept
    assert state.craft.content_lora == "/loras/cat.safetensors"
    assert state.prompt == "a ginger cat <c>, ink sketch <s>"
    with pytest.raises(ValueError, match="content or style"):
        state.use_lora("/loras/x.safetensors", "other")


def test_use_model_and_backbone_fill_generate(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    with qtbot.waitSignal(state.show_requested, timeout=TIMEOUT):
        state.use_model("/models/sd15")
    state.use_backbone("/backbones/b.safetensors")
    assert (state.model, state.craft.backbone) == ("/models/sd15", "/backbones/b.safetensors")
