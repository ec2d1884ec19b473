"""The CRAFT fusion section of the Generate panel: files, mode and switches, curves, markers."""

from __future__ import annotations

from PySide6.QtCore import Qt

from craftstudio.domain.curves import Interpolation, load_preset
from craftstudio.domain.generation import FusionSwitches, LoraRef
from tests.state.fake_demo import install_demo_assets
from tests.ui.conftest import type_path
from tests.ui.test_generate_panel import fill_in
from tests.workers.fake_engine import FakeEngine

TIMEOUT = 5000
LEFT = Qt.MouseButton.LeftButton


def test_generate_sends_the_craft_settings(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    craft = panel.craft_panel
    fill_in(qtbot, panel, prompt="a cat <c> in ink style <s:0.5>")
    type_path(qtbot, craft.content_edit, "/loras/cat.safetensors")
    craft.content_weight.setValue(0.75)
    type_path(qtbot, craft.style_edit, "/loras/ink.safetensors")
    type_path(qtbot, craft.backbone_edit, "/backbones/b.safetensors")
    craft.switch_checks["asymmetric"].click()
    craft.preset_combo.setCurrentIndex(craft.preset_combo.findText("content-early-style-late"))
    craft.preset_combo.activated.emit(craft.preset_combo.currentIndex())
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, LEFT)
    request = engine.calls[0]
    assert request.content_lora == LoraRef("/loras/cat.safetensors", 0.75)
    assert request.style_lora == LoraRef("/loras/ink.safetensors", 1.0)
    assert request.backbone == "/backbones/b.safetensors"
    assert request.switches == FusionSwitches(asymmetric=False)
    assert request.curves == load_preset("content-early-style-late").to_dict()


def test_mode_combo_and_switch_boxes_follow_each_other(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    craft = studio.window.generate_panel.craft_panel
    assert craft.mode_combo.currentData() == "craft"
    craft.mode_combo.activated.emit(craft.mode_combo.findData("direct"))
    assert not any(check.isChecked() for check in craft.switch_checks.values())
    assert craft.mode_combo.currentData() == "direct"
    craft.switch_checks["routing"].click()
    assert craft.mode_combo.currentData() == "custom"
    assert studio.generate.craft.switches == FusionSwitches(False, True, False, False)
    craft.mode_combo.activated.emit(craft.mode_combo.findData("craft"))
    assert all(check.isChecked() for check in craft.switch_checks.values())
    # "custom" cannot be picked: it is where toggling a switch leads.
    custom = craft.mode_combo.model().item(craft.mode_combo.findData("custom"))
    assert not custom.isEnabled()


def test_mode_combo_offers_the_peer_modes(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    craft = studio.window.generate_panel.craft_panel
    for mode in ("k-lora", "switch", "composite"):
        index = craft.mode_combo.findData(mode)
        assert index >= 0 and craft.mode_combo.model().item(index).isEnabled()
        assert "arXiv" in craft.mode_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    craft.mode_combo.activated.emit(craft.mode_combo.findData("composite"))
    assert studio.generate.craft.mode == "composite" and craft.mode_combo.currentData() == "composite"
    assert not any(check.isChecked() for check in craft.switch_checks.values())
    assert not craft.editor.isEnabled()  # no curves in a peer mode
    craft.switch_checks["gates"].click()
    assert craft.mode_combo.currentData() == "custom"


def test_gates_off_disables_the_curve_editor(qtbot, make_studio):
    craft = make_studio(FakeEngine()).window.generate_panel.craft_panel
    assert craft.editor.isEnabled()
    craft.switch_checks["gates"].click()
    assert not craft.editor.isEnabled()


def test_prompt_shows_gamma_or_the_marker_error(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel, prompt="a cat <c> in ink style <s:0.8>")
    assert panel.markers_label.text() == "content γ 1.0 · style γ 0.8"
    panel.prompt_edit.setPlainText("a cat <c> in ink <s:x>")
    assert panel.markers_label.text().startswith("The weight in <s:x> at column 18 is not a number")
    qtbot.mouseClick(panel.generate_button, LEFT)
    assert panel.error_label.isVisible()
    assert panel.error_label.text() == panel.markers_label.text()
    assert panel.prompt_edit.textCursor().position() == 17  # on the bad marker
    assert engine.calls == [] and panel.generate_button.isEnabled()


def test_curve_controls_edit_the_curves(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    craft = studio.window.generate_panel.craft_panel
    curves = studio.generate.craft.curves
    craft.curve_buttons["style"].click()
    assert curves.active == "style"
    craft.interpolation_combo.activated.emit(craft.interpolation_combo.findData("smooth"))
    assert curves.curve("style").interpolation is Interpolation.SMOOTH
    assert craft.edited_label.text() == "edited" and craft.revert_button.isEnabled()
    assert craft.undo_button.isEnabled()
    qtbot.mouseClick(craft.undo_button, LEFT)
    assert curves.curve_set == load_preset("paper") and craft.edited_label.text() == ""
    curves.remove_point(0, "guidance")  # refused: the curve's only point
    assert craft.curve_message.text() == "The guidance curve has no points: give at least one."
    curves.select("content", 1)
    assert craft.curve_message.text() == "Content gate point 2: x = 0.7, y = 0"


def test_steps_change_the_ticks_the_editor_draws(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    panel = studio.window.generate_panel
    panel.steps_spin.setValue(7)
    assert studio.generate.craft.curves.steps == 7
    assert len(studio.generate.craft.curves.samples().content) == 7


def test_first_start_with_the_demo_installed(qtbot, make_studio, monkeypatch, tmp_path):
    install_demo_assets(monkeypatch, demo_model_dir=lambda: tmp_path,
                        demo_lora=lambda role: tmp_path / f"{role}.safetensors",
                        demo_backbone=lambda: None, demo_prompt=lambda: "a sks <c> in zxq style <s>")
    panel = make_studio(FakeEngine()).window.generate_panel
    assert panel.model_edit.text() == str(tmp_path)
    assert panel.craft_panel.content_edit.text() == str(tmp_path / "content.safetensors")
    assert panel.craft_panel.backbone_edit.text() == ""
    assert panel.prompt_edit.toPlainText() == "a sks <c> in zxq style <s>"
    assert panel.markers_label.text() == "content γ 1.0 · style γ 1.0"


def test_the_layers_box_picks_the_routing_preset(qtbot):
    from craftstudio.state.craft_state import CraftState
    from craftstudio.ui.craft_panel import CraftPanel

    state = CraftState()
    panel = CraftPanel(state)
    qtbot.addWidget(panel)
    panel.routing_combo.setCurrentIndex(panel.routing_combo.findData("b-lora"))
    assert state.routing_preset == "b-lora" and state.request_fields()["routing_preset"] == "b-lora"
    state.use_routing = False
    assert not panel.routing_combo.isEnabled()
    state.use_routing = True
    assert panel.routing_combo.isEnabled()
