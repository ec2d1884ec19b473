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


def _model_folder(tmp_path, name: str, sample_size: int):
    import json

    folder = tmp_path / name
    for sub, config in (("unet", {"sample_size": sample_size}), ("vae", {"block_out_channels": [1, 2, 3, 4]})):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "config.json").write_text(json.dumps(config))
    return folder


def test_choosing_a_model_sets_its_native_size_and_a_far_size_gets_a_hint(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    state.model = str(_model_folder(tmp_path, "sdxl", 128))
    assert (state.width, state.height) == (1024, 1024) and state.native_size == (1024, 1024)
    assert state.size_hint == ""
    state.width = state.height = 512  # a quarter of the pixels
    assert "1024×1024" in state.size_hint
    state.use_native_size()
    assert (state.width, state.height) == (1024, 1024) and state.size_hint == ""
    state.width = 832  # near enough: no hint
    assert state.size_hint == ""
    state.model = "/models/unknown"  # nothing to go by: the size stays, no hint
    assert (state.width, state.height) == (832, 1024) and state.native_size is None and state.size_hint == ""


def test_a_recorded_size_wins_over_the_native_one(qtbot, runner, tmp_path):
    model = _model_folder(tmp_path, "sd15", 64)
    state = make_state(runner, tmp_path)
    state.apply_request(quick_request(model=str(model), width=768, height=512))
    assert (state.model, state.width, state.height) == (str(model), 768, 512)


def test_progress_text_counts_steps_speed_and_time_left(qtbot, runner, tmp_path):
    from craftstudio.domain.progress import ProgressEvent

    state = make_state(runner, tmp_path, FakeEngine().hold())
    now = [100.0]
    state._clock = lambda: now[0]
    job = state.generate()
    state._on_started(job)  # the runner's signals, in the order it sends them
    busy = []
    state.progress_busy_changed.connect(busy.append)
    state._on_progress(job, ProgressEvent("load", 0, 1, message="loading model"))
    assert state.progress_busy and state.progress_text == "Loading model…"
    state._on_progress(job, ProgressEvent("denoise", 1, 20))
    assert not state.progress_busy and state.progress_text == "step 1/20"
    now[0] += 2.0  # two more steps in two seconds: 1 it/s, 17 steps to go
    state._on_progress(job, ProgressEvent("denoise", 3, 20))
    assert state.progress_text == "step 3/20 · 1.0 it/s · 17 s left"
    now[0] += 100.0  # a slow machine: seconds per step, minutes left
    state._on_progress(job, ProgressEvent("denoise", 5, 20))
    assert state.progress_text == "step 5/20 · 25.5 s/it · 6 min 22 s left"
    assert busy == [False]
    state.cancel()
    qtbot.waitUntil(lambda: not state.is_busy, timeout=TIMEOUT)
    assert not state.progress_busy


def test_a_fixed_marker_error_goes_away_while_typing(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path, prompt="a cat <x>")
    assert state.generate() is None
    assert state.error.startswith("Unknown marker <x>") and state.marker_error_position == 7
    state.prompt = "a cat <c> in ink <s:9>"  # another mistake: the message follows it
    assert state.error.startswith("The weight in <s:9>")
    state.prompt = "a cat <c> in ink <s>"
    assert state.error == "" and state.marker_error == "" and state.marker_error_position == 0


def test_a_refused_setting_clears_once_valid_and_a_new_error_clears_the_old_status(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert "saved to" in state.status
    state.width = 100
    assert state.generate() is None
    assert "Image width 100" in state.error and state.status == ""
    state.width = 102  # still not a multiple of 8
    assert "Image width 102" in state.error
    state.width = 96
    assert state.error == ""


def test_welcome_is_dismissed_for_good_and_comes_back_on_request(qtbot, runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    state = make_state(runner, tmp_path, settings=settings)
    assert not state.welcome_dismissed
    state.dismiss_welcome()
    assert GenerateState(runner, settings=settings).welcome_dismissed
    with qtbot.waitSignal(state.show_requested, timeout=TIMEOUT):
        state.show_welcome()
    assert not state.welcome_dismissed


def _lora(path, trigger: str):
    from craftstudio.library import synthetic

    return synthetic.write_safetensors(path, synthetic.LAYOUTS["peft-sd1"](4), {"modelspec.trigger_phrase": trigger})


def test_taking_a_lora_off_offers_to_remove_its_trigger(qtbot, runner, tmp_path):
    cat, ink = _lora(tmp_path / "cat.safetensors", "ginger cat"), _lora(tmp_path / "ink.safetensors", "ink sketch")
    state = make_state(runner, tmp_path, prompt="")
    state.use_lora(cat, "content", "ginger cat")
    state.use_lora(ink, "style", "ink sketch")
    assert state.prompt == "ginger cat <c>, ink sketch <s>"
    assert state.trigger_phrases == ["ginger cat", "ink sketch"]
    state.craft.style_lora = ""
    assert state.trigger_offer == ("style", "ink sketch")
    assert state.trigger_phrases == ["ginger cat"]
    state.remove_offered_trigger()
    assert state.prompt == "ginger cat <c>" and state.trigger_offer is None
    state.craft.content_lora = ""
    assert state.trigger_offer == ("content", "ginger cat")
    state.keep_offered_trigger()
    assert state.prompt == "ginger cat <c>" and state.trigger_offer is None
    # An offer the user made moot by editing the prompt goes by itself.
    state.craft.content_lora = str(cat)
    state.craft.content_lora = ""
    state.prompt = "a dog <c>"
    assert state.trigger_offer is None


def test_a_loaded_lora_without_its_marker_is_noted(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path, prompt="a cat <c>")
    state.craft.style_lora = "/loras/ink.safetensors"
    assert state.markers_note == "The style LoRA is off (no <s> in the prompt)."
    state.prompt = "a cat <c> in ink <s>"
    assert state.markers_note == ""


def test_a_hires_request_fills_the_bar_once_over_both_passes(qtbot, runner, tmp_path):
    from craftstudio.domain.progress import ProgressEvent

    def two_passes(request, *, progress=None, cancel=None):
        for message, total in (("", 4), ("hires pass", 2)):
            for step in range(1, total + 1):
                progress(ProgressEvent("denoise", step, total, message=message))
        return FakeEngine()(request, cancel=cancel)

    state = make_state(runner, tmp_path, two_passes)
    state.pictures.hires_factor = 2.0
    seen = []
    state.progress_changed.connect(seen.append)
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert seen[:6] == [0.125, 0.25, 0.375, 0.5, 0.75, 1.0]
