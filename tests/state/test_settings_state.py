"""SettingsState: validation sentences, persistence, and the settings reaching what they affect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from craftstudio.library.paths import AppPaths
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.settings_state import SETTINGS_SECTION, SettingsState
from tests.state.conftest import TIMEOUT
from tests.workers.fake_engine import FakeEngine


@pytest.fixture
def paths(tmp_path) -> AppPaths:
    return AppPaths(tmp_path / "home")


def _state(paths: AppPaths, runner=None) -> SettingsState:
    return SettingsState(paths, settings=SettingsFile(paths.settings), runner=runner)


def test_defaults_are_the_data_folders_and_dark(qtbot, paths):
    state = _state(paths)
    assert state.outputs_folder == str(paths.outputs)
    assert (state.models_folder, state.loras_folder) == (str(paths.models), str(paths.loras))
    assert (state.device, state.preview_every, state.cpu_threads, state.theme) == ("auto", 1, 0, "dark")
    assert state.example_name.endswith("-1234.png")


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("device", "tpu", "Unknown device 'tpu': choose auto, cuda, mps, cpu."),
    ("preview_every", -1, "Step preview must be a whole number from 0 to 1000"),
    ("preview_every", True, "Step preview must be a whole number"),
    ("cpu_threads", 1000, "CPU threads must be a whole number from 0 to 256"),
    ("theme", "purple", "Unknown theme 'purple'"),
    ("fast", "yes", "The fast setting is on or off"),
    ("file_name_template", "{seed", "unmatched { or }"),
    ("file_name_template", "{when}", "Unknown placeholder {when}"),
    ("outputs_folder", "", "The outputs folder is empty"),
    ("models_folder", "relative/models", "is not a full path"),
])
def test_invalid_values_are_refused_with_a_sentence_and_the_old_value_kept(qtbot, paths, name, value,
                                                                          fragment):
    state = _state(paths)
    before = getattr(state, name)
    with qtbot.waitSignal(state.error_changed):
        assert state.change(name, value) is False
    assert fragment in state.error and state.error.endswith(".")
    assert getattr(state, name) == before
    assert not paths.settings.exists()  # nothing invalid was saved


def test_a_folder_that_is_a_file_is_refused(qtbot, paths, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    state = _state(paths)
    assert not state.change("loras_folder", str(afile))
    assert state.error == f"The LoRAs folder {afile} is a file, not a folder: choose a folder."


def test_a_valid_change_clears_the_error_and_is_saved_at_once(qtbot, paths, tmp_path):
    state = _state(paths)
    state.change("theme", "purple")
    assert state.change("theme", "light") and state.error == ""
    assert state.change("outputs_folder", f"  {tmp_path / 'renders'}  ")
    assert state.outputs_folder == str(tmp_path / "renders")
    saved = SettingsFile(paths.settings).section(SETTINGS_SECTION)
    assert saved["theme"] == "light" and saved["outputs_folder"] == str(tmp_path / "renders")


def test_settings_round_trip_through_the_file(qtbot, paths, tmp_path):
    state = _state(paths)
    values = {"device": "cpu", "preview_every": 5, "cpu_threads": 2, "theme": "system",
              "file_name_template": "{model}-{seed}", "outputs_folder": str(tmp_path / "out"),
              "models_folder": str(tmp_path / "m"), "loras_folder": str(tmp_path / "l")}
    for name, value in values.items():
        assert state.change(name, value), state.error
    again = _state(paths)
    assert {name: getattr(again, name) for name in values} == values
    assert again.example_name == "shapesworld-1234.png"


def test_hand_edited_invalid_values_are_skipped_and_the_rest_kept(qtbot, paths):
    paths.root.mkdir(parents=True)
    paths.settings.write_text(json.dumps({
        "generate": {"prompt": "kept apart"},
        SETTINGS_SECTION: {"device": "quantum", "preview_every": 3, "cpu_threads": True,
                           "file_name_template": "{nope}", "theme": "light", "unknown": 1}}))
    state = _state(paths)
    assert (state.device, state.preview_every, state.cpu_threads, state.theme) == ("auto", 3, 0, "light")
    assert state.file_name_template == "{date}-{time}-{seed}"
    state.change("device", "cpu")
    assert SettingsFile(paths.settings).section("generate") == {"prompt": "kept apart"}


def test_window_layout_has_its_own_section(qtbot, paths):
    state = _state(paths)
    assert state.window_layout() == {}
    state.save_window_layout({"area": "Train"})
    state.change("theme", "light")
    assert _state(paths).window_layout() == {"area": "Train"}


def test_device_and_previews_reach_the_request_and_folder_names_threads_the_job(qtbot, runner, tmp_path,
                                                                               paths):
    settings = _state(paths, runner)
    settings.change("device", "cpu")
    settings.change("preview_every", 0)
    settings.change("low_vram", True)
    settings.change("outputs_folder", str(tmp_path / "renders"))
    settings.change("file_name_template", "cat-{seed}")
    engine = FakeEngine()
    state = GenerateState(runner, engine=engine, outputs=tmp_path / "ignored", app_settings=settings)
    state.model, state.prompt, state.width, state.height, state.steps = "/models/fake", "a cat", 64, 64, 2
    state.random_seed, state.seed = False, 11
    for _ in range(2):
        with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
            assert state.generate() is not None
    assert (engine.calls[0].device, engine.calls[0].preview_every) == ("cpu", 0)
    assert engine.calls[0].low_vram and not engine.calls[0].fast
    # The same seed twice: the second image is numbered, never written over the first.
    assert sorted(p.name for p in (tmp_path / "renders").iterdir()) == ["cat-11-2.png", "cat-11.png"]
    assert not (tmp_path / "ignored").exists()


def test_generate_state_built_with_settings_uses_them(qtbot, runner, tmp_path, paths):
    settings = _state(paths, runner)
    settings.change("device", "cpu")
    state = GenerateState(runner, engine=FakeEngine(), app_settings=settings)
    assert state.request().device == "cpu" and state.request().preview_every == 1


def test_add_folder_scans_it_into_the_catalog(qtbot, runner, paths, tmp_path):
    from craftstudio.library.catalog import Catalog
    from craftstudio.library.synthetic import kohya, kohya_metadata, write_safetensors

    folder = tmp_path / "My LoRAs"
    write_safetensors(folder / "ink.safetensors", kohya("sd1", 4), kohya_metadata("ink", "sd1", 4))
    state = _state(paths, runner)
    added = []
    state.folder_added.connect(added.append)
    with qtbot.waitSignal(state.scan_status_changed, timeout=TIMEOUT,
                          check_params_cb=lambda text: text.startswith("Scanned")):
        assert state.add_folder(folder) is not None
    assert added == [str(folder)]
    assert "1 files, 1 added" in state.scan_status
    with Catalog.open(paths.root) as catalog:
        assert [Path(item.path).name for item in catalog.items.search()] == ["ink.safetensors"]


def test_scanning_without_folders_or_a_missing_folder_explains(qtbot, runner, paths, tmp_path):
    state = _state(paths, runner)
    assert state.scan_library_folders() is None
    assert "Neither the models folder nor the LoRAs folder exists" in state.scan_status
    assert state.add_folder(tmp_path / "nowhere") is None
    assert state.scan_status.endswith("is not a folder: choose a folder of models or LoRAs.")


def test_scans_fill_the_apps_shared_catalog(qtbot, runner, paths, tmp_path):
    """With the app's catalog given (build_studio does), a scan lands in that very catalog, also
    when it is the in-memory one used after the library file could not be opened."""
    from craftstudio.library.catalog import Catalog
    from craftstudio.library.database import Database
    from craftstudio.library.synthetic import kohya, kohya_metadata, write_safetensors

    folder = tmp_path / "LoRAs"
    write_safetensors(folder / "ink.safetensors", kohya("sd1", 4), kohya_metadata("ink", "sd1", 4))
    shared = Catalog(paths, Database())
    state = SettingsState(paths, settings=SettingsFile(paths.settings), runner=runner, catalog=shared)
    with qtbot.waitSignal(state.scan_status_changed, timeout=TIMEOUT,
                          check_params_cb=lambda text: text.startswith("Scanned")):
        state.add_folder(folder)
    assert [Path(item.path).name for item in shared.items.search()] == ["ink.safetensors"]
    assert not paths.database.exists()  # nothing was written to another catalog
