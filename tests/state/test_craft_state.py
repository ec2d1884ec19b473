"""CRAFT settings in GenerateState: request fields, mode ↔ switches, prompt markers, settings,
PNG restore and the first-run demo defaults."""

from __future__ import annotations

import json
import struct

import pytest

from craftstudio.domain.curves import load_preset
from craftstudio.domain.generation import FusionSwitches, LoraRef
from craftstudio.library.png_params import save_png
from craftstudio.state.craft_state import CraftState
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from tests.state.conftest import TIMEOUT
from tests.state.conftest import make_state as kit_state
from tests.state.fake_demo import install_demo_assets, remove_demo_assets
from tests.workers.fake_engine import FakeEngine, _image, quick_request


@pytest.fixture(autouse=True)
def no_demo(monkeypatch):
    """Tests see no installed demo unless they install one."""
    install_demo_assets(monkeypatch, demo_model_dir=lambda: None)


def make_state(runner, tmp_path, engine=None, settings=None) -> GenerateState:
    return kit_state(runner, tmp_path, engine, settings, prompt="a ginger cat <c> in watercolor style <s:0.8>")


def test_the_request_carries_loras_backbone_switches_and_curves(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    craft = state.craft
    craft.content_lora, craft.content_weight = "/loras/cat.safetensors", 0.8
    craft.style_lora, craft.style_weight = " /loras/ink.safetensors ", 1.5
    craft.backbone = "/backbones/b.safetensors"
    craft.use_routing = False
    craft.curves.load_preset("guidance-ramp")
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    request = engine.calls[0]
    assert request.content_lora == LoraRef("/loras/cat.safetensors", 0.8)
    assert request.style_lora == LoraRef("/loras/ink.safetensors", 1.5)
    assert request.backbone == "/backbones/b.safetensors"
    assert request.switches == FusionSwitches(routing=False) and request.mode == "custom"
    assert request.curves == load_preset("guidance-ramp").to_dict()


def test_empty_craft_fields_are_none(qtbot, runner, tmp_path):
    request = make_state(runner, tmp_path).request()
    assert (request.content_lora, request.style_lora, request.backbone) == (None, None, None)
    assert request.mode == "craft" and request.curves == load_preset("paper").to_dict()


def test_mode_is_derived_from_the_switches(qtbot):
    craft = CraftState()
    modes = []
    craft.mode_changed.connect(modes.append)
    assert craft.mode == "craft"
    craft.set_mode("direct")
    assert craft.switches == FusionSwitches(False, False, False, False) and craft.mode == "direct"
    craft.use_gates = True
    assert craft.mode == "custom"
    craft.set_mode("custom")  # not a target: the switches stay
    assert craft.switches == FusionSwitches(False, False, False, True)
    craft.set_mode("craft")
    assert craft.switches == FusionSwitches() and modes == ["direct", "custom", "craft"]


def test_prompt_markers_give_live_gamma_feedback(qtbot, runner, tmp_path):
    state = make_state(runner, tmp_path)
    assert state.markers == "content γ 1.0 · style γ 0.8" and state.marker_error == ""
    state.prompt = "a cat"
    assert state.markers == "No <c>/<s> markers: content γ 1.0 · style γ 1.0"
    state.prompt = "a cat <c:0.75>"
    assert state.markers == "content γ 0.75 · style γ 0.0"
    state.prompt = "a cat <c:3>"
    assert state.markers == ""
    assert state.marker_error == "The weight in <c:3> at column 7 is outside 0–2."


def test_malformed_markers_are_shown_instead_of_submitting(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.prompt = "a cat <c> in ink <x>"
    with qtbot.waitSignal(state.marker_error_at, timeout=TIMEOUT) as blocker:
        assert state.generate() is None
    assert blocker.args == [18]
    assert state.error.startswith("Unknown marker <x> at column 18")
    assert engine.calls == [] and not state.is_busy


def test_craft_settings_are_saved_and_restored(qtbot, runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    state = make_state(runner, tmp_path, settings=settings)
    craft = state.craft
    craft.content_lora, craft.content_weight, craft.style_lora = "/l/c.safetensors", 0.6, "/l/s.safetensors"
    craft.backbone = "/b.safetensors"
    craft.set_mode("direct")
    craft.curves.load_preset("constant")
    state.save_settings()
    again = GenerateState(runner, settings=settings).craft
    assert (again.content_lora, again.content_weight, again.style_lora) == ("/l/c.safetensors", 0.6,
                                                                          "/l/s.safetensors")
    assert again.backbone == "/b.safetensors" and again.mode == "direct"
    assert again.curves.preset == "constant" and not again.curves.edited
    # Edited curves are saved as curves, with the preset they came from.
    craft.curves.add_point(0.5, 2.0, "guidance")
    state.save_settings()
    saved = json.loads((tmp_path / "settings.json").read_text())["generate"]["craft"]
    assert saved["curves"]["preset"] == "constant" and saved["curves"]["curves"] is not None
    again = GenerateState(runner, settings=settings).craft
    assert again.curves.edited and again.curves.curve_set == craft.curves.curve_set


def test_a_hand_edited_weight_is_clamped(qtbot, runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    settings.save_section("generate", {"craft": {"content_weight": 9, "use_routing": "no"}})
    craft = GenerateState(runner, settings=settings).craft
    assert craft.content_weight == 2.0 and craft.use_routing is True


def test_apply_png_restores_the_craft_settings(qtbot, runner, tmp_path):
    lora = tmp_path / "cat.safetensors"
    lora.write_bytes(b"x")
    edited = CraftState()
    edited.curves.move_point(1, 0.6, 0.0, "content")
    request = quick_request(content_lora=LoraRef(str(lora), 0.7),
                            style_lora=LoraRef(str(tmp_path / "gone.safetensors"), 1.2),
                            switches=FusionSwitches(asymmetric=False),
                            curves=edited.curves.curve_set.to_dict())
    png = save_png(_image(request, 1, 1), tmp_path / "in.png", request, seed=1, model_name="m")
    state = make_state(runner, tmp_path)
    assert state.apply_png(png)
    craft = state.craft
    assert (craft.content_lora, craft.content_weight) == (str(lora), 0.7)
    assert craft.style_lora.endswith("gone.safetensors") and craft.style_weight == 1.2
    assert craft.backbone == "" and craft.mode == "custom" and not craft.use_asymmetric
    assert craft.curves.edited and craft.curves.curve("content").points[1] == (0.6, 0.0)
    assert state.status.endswith("Not found here: style LoRA gone.safetensors.")
    # A request without LoRAs or curves clears them: the image was made without.
    state.apply_request(quick_request())
    assert craft.content_lora == "" and craft.curves.preset == "constant"


def _lora_with_trigger(path, trigger):
    header = json.dumps({"__metadata__": {"modelspec.trigger_phrase": trigger},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    return path


def test_first_run_fills_in_the_demo(qtbot, runner, tmp_path, monkeypatch):
    model = tmp_path / "shapesworld"
    model.mkdir()
    loras = {"content": _lora_with_trigger(tmp_path / "c.safetensors", "sks"),
             "style": _lora_with_trigger(tmp_path / "s.safetensors", "zxq")}
    install_demo_assets(monkeypatch, demo_model_dir=lambda: model, demo_lora=loras.get,
                        demo_backbone=lambda: tmp_path / "b.safetensors")
    state = GenerateState(runner, settings=SettingsFile(tmp_path / "settings.json"))
    assert state.model == str(model)
    assert (state.craft.content_lora, state.craft.style_lora) == (str(loras["content"]), str(loras["style"]))
    assert state.craft.backbone == str(tmp_path / "b.safetensors")
    assert state.prompt == "a sks <c> in zxq style <s>"
    assert state.markers == "content γ 1.0 · style γ 1.0"


def test_demo_defaults_only_where_available(qtbot, runner, tmp_path, monkeypatch):
    # An older demo module: no demo_lora; and no backbone installed.
    install_demo_assets(monkeypatch, demo_model_dir=lambda: tmp_path, demo_backbone=lambda: None)
    state = GenerateState(runner)
    assert state.model == str(tmp_path) and state.craft.content_lora == "" and state.prompt == ""
    # A configured model is never replaced.
    settings = SettingsFile(tmp_path / "settings.json")
    settings.save_section("generate", {"model": "/mine"})
    assert GenerateState(runner, settings=settings).model == "/mine"


def test_no_demo_module_means_no_defaults(qtbot, runner, monkeypatch):
    remove_demo_assets(monkeypatch)
    state = GenerateState(runner)
    assert state.model == "" and state.prompt == ""


def test_peer_modes_are_offered_turn_the_switches_off_and_reach_the_request(qtbot, runner, tmp_path):
    from craftstudio.state.craft_state import MODES

    assert {"k-lora", "switch", "composite"} <= set(MODES)
    state = make_state(runner, tmp_path)
    craft = state.craft
    modes = []
    craft.mode_changed.connect(modes.append)
    craft.set_mode("k-lora")
    assert craft.mode == "k-lora" and craft.switches == FusionSwitches(False, False, False, False)
    request = state.request()
    assert request.peer_mode == "k-lora" and request.mode == "k-lora"
    assert request.effective_switches == FusionSwitches(False, False, False, False)
    craft.set_mode("composite")  # same switches, another peer mode: still one signal
    craft.set_mode("direct")
    assert request.peer_mode == "k-lora" and state.request().peer_mode is None
    craft.set_mode("switch")
    craft.use_routing = True  # ticking a switch by hand leaves the peer mode
    assert craft.peer_mode == "" and craft.mode == "custom"
    assert modes == ["k-lora", "composite", "direct", "switch", "custom"]


def test_peer_mode_survives_settings_and_png_restore(qtbot):
    from craftstudio.domain.generation import GenerateRequest

    craft = CraftState()
    craft.set_mode("switch")
    saved = json.loads(json.dumps(craft.settings()))
    again = CraftState()
    again.restore_settings(saved)
    assert again.mode == "switch" and not any(vars(again.switches).values())
    again.restore_settings({**saved, "peer_mode": "unknown"})
    assert again.mode == "direct"
    recorded = GenerateRequest(model="m", prompt="p", peer_mode="composite", switches=FusionSwitches())
    again.apply_request(recorded)
    assert again.mode == "composite" and again.switches == FusionSwitches(False, False, False, False)
    again.apply_request(GenerateRequest(model="m", prompt="p"))
    assert again.mode == "craft" and again.peer_mode == ""
