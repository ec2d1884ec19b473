"""The main window: its four areas, placeholders for those to come, PNG drop, settings on quit."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLabel

from craftstudio.domain.generation import FusionSwitches, LoraRef
from craftstudio.library.png_params import save_png
from craftstudio.state.settings_file import SettingsFile
from craftstudio.ui.main_window import AREAS
from tests.workers.fake_engine import FakeEngine, _image, quick_request


def test_opens_on_generate_with_the_other_areas_marked_coming_soon(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    assert window.windowTitle() == "CraftStudio"
    assert window.current_area == "Generate"
    assert [window.navigation.item(i).text() for i in range(window.navigation.count())] == list(AREAS)
    for area in ("Library", "Train"):
        window.navigation.setCurrentRow(AREAS.index(area))
        assert window.current_area == area
        texts = [label.text() for label in window.pages.currentWidget().findChildren(QLabel)]
        assert any(t.startswith("Coming soon:") for t in texts), texts
    window.show_area("Gallery")
    assert window.pages.currentWidget() is window.gallery_page


def test_model_field_is_empty_with_a_hint_on_first_start(qtbot, make_studio):
    panel = make_studio(FakeEngine()).window.generate_panel
    assert panel.model_edit.text() == ""
    assert ".safetensors" in panel.model_edit.placeholderText()


def test_dropping_a_png_restores_its_settings(qtbot, make_studio, tmp_path):
    studio = make_studio(FakeEngine())
    lora = tmp_path / "house.safetensors"
    lora.write_bytes(b"x")
    request = quick_request(prompt="a red house <c>", steps=9, seed=77, scheduler="ddim",
                            content_lora=LoraRef(str(lora), 1.25), switches=FusionSwitches.for_mode("direct"),
                            curves=None)
    png = save_png(_image(request, 77, 1), tmp_path / "made.png", request, seed=77, model_name="m")
    studio.window.show_area("Train")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    studio.window.dropEvent(event)
    panel = studio.window.generate_panel
    assert studio.window.current_area == "Generate"
    assert panel.prompt_edit.toPlainText() == "a red house <c>"
    assert panel.markers_label.text() == "content γ 1.0 · style γ 0.0"
    craft = panel.craft_panel
    assert craft.content_edit.text() == str(lora) and craft.content_weight.value() == 1.25
    assert craft.style_edit.text() == "" and craft.mode_combo.currentData() == "direct"
    assert craft.preset_combo.currentText() == "constant" and craft.edited_label.text() == ""
    assert panel.steps_spin.value() == 9
    assert panel.seed_edit.text() == "77" and not panel.random_seed_check.isChecked()
    assert panel.scheduler_combo.currentData() == "ddim"


def test_shutdown_saves_the_settings(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    studio.generate.model = "/models/mine"
    studio.generate.prompt = "a fluffy dog"
    studio.generate.craft.style_lora = "/loras/ink.safetensors"
    studio.generate.craft.use_routing = False
    studio.generate.craft.curves.add_point(0.5, 0.5, "style")
    studio.shutdown()
    saved = SettingsFile(studio.paths.settings).section("generate")
    assert saved["model"] == "/models/mine" and saved["prompt"] == "a fluffy dog"
    assert saved["craft"]["style_lora"] == "/loras/ink.safetensors"
    again = make_studio(FakeEngine())
    panel = again.window.generate_panel
    assert panel.model_edit.text() == "/models/mine"
    assert panel.craft_panel.style_edit.text() == "/loras/ink.safetensors"
    assert panel.craft_panel.mode_combo.currentData() == "custom"
    assert panel.craft_panel.edited_label.text() == "edited"
    assert again.generate.craft.curves.curve("style").points[-1] == (0.5, 0.5)
