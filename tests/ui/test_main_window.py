"""The main window: its areas, placeholders for those to come, menus, shortcuts, the layout
remembered between sessions, PNG drop, settings on quit."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, QSize, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLabel, QSplitter

from craftstudio.app import build_studio
from craftstudio.domain.generation import FusionSwitches, LoraRef
from craftstudio.library.paths import AppPaths
from craftstudio.library.png_params import save_png
from craftstudio.state.settings_file import SettingsFile
from craftstudio.ui.main_window import AREAS, SHORTCUTS
from craftstudio.ui.settings_page import SettingsPage
from tests.workers.fake_engine import FakeEngine, _image, quick_request


def test_opens_on_generate_and_every_area_is_a_working_page(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    assert window.windowTitle() == "CraftStudio"
    assert window.current_area == "Generate"
    assert [window.navigation.item(i).text() for i in range(window.navigation.count())] == list(AREAS)
    for area in AREAS:
        window.navigation.setCurrentRow(AREAS.index(area))
        assert window.current_area == area and window.pages.currentWidget() is window.page(area)
        texts = [label.text() for label in window.pages.currentWidget().findChildren(QLabel)]
        assert not any(t.startswith("Coming soon") for t in texts), (area, texts)


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


def test_settings_is_the_fifth_area(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    assert AREAS == ("Library", "Generate", "Train", "Gallery", "Settings")
    window.show_area("Settings")
    assert isinstance(window.pages.currentWidget(), SettingsPage)
    assert window.area_actions[4].isChecked()


def test_pages_given_replace_the_placeholders(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(tmp_path / "home"))
    library, compare = QLabel("my library"), QLabel("a compare grid")
    studio = build_studio(engine=FakeEngine(), paths=AppPaths.default(),
                          pages=[("Library", library), ("Compare", compare)])
    qtbot.addWidget(studio.window)
    try:
        window = studio.window
        assert window.page("Library") is library and window.page("Compare") is compare
        assert window.areas == [*AREAS, "Compare"]
        assert [a.text() for a in window.area_actions] == window.areas
        assert window.area_actions[5].shortcut().toString() == "Ctrl+6"
    finally:
        studio.shutdown()


def test_ctrl_digit_switches_areas(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    with qtbot.waitActive(window):
        window.activateWindow()
    for digit, area in ((Qt.Key.Key_3, "Train"), (Qt.Key.Key_5, "Settings"), (Qt.Key.Key_1, "Library"),
                        (Qt.Key.Key_2, "Generate")):
        qtbot.keyClick(window.navigation, digit, Qt.KeyboardModifier.ControlModifier)
        assert window.current_area == area


def test_escape_cancels_the_running_generation(qtbot, make_studio):
    engine = FakeEngine().hold()
    studio = make_studio(engine)
    state = studio.generate
    state.model, state.prompt, state.width, state.height, state.steps = "/m", "a cat", 64, 64, 3
    with qtbot.waitActive(studio.window):
        studio.window.activateWindow()
    with qtbot.waitSignal(state.is_busy_changed, timeout=5000, check_params_cb=lambda busy: not busy):
        assert state.generate() is not None
        assert engine.entered.wait(5)
        studio.window.generate_panel.prompt_edit.setFocus()
        qtbot.keyClick(studio.window.generate_panel.prompt_edit, Qt.Key.Key_Escape)
    assert state.status == "Cancelled."


def test_escape_elsewhere_is_left_to_the_other_pages(qtbot, make_studio):
    engine = FakeEngine().hold()
    studio = make_studio(engine)
    state = studio.generate
    state.model, state.prompt, state.width, state.height, state.steps = "/m", "a cat", 64, 64, 3
    with qtbot.waitActive(studio.window):
        studio.window.activateWindow()
    assert state.generate() is not None
    assert engine.entered.wait(5)
    studio.window.show_area("Settings")
    studio.window.settings_page.template_edit.setFocus()
    qtbot.keyClick(studio.window.settings_page.template_edit, Qt.Key.Key_Escape)
    assert state.is_busy and state.status != "Cancelling…"
    with qtbot.waitSignal(state.is_busy_changed, timeout=5000):
        engine.release()


def test_menus_hold_the_actions_with_tooltips(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    assert list(menus) == ["&File", "&View", "&Tools", "&Help"]
    texts = {name: [a.text() for a in menu.actions() if not a.isSeparator()] for name, menu in menus.items()}
    assert texts["&File"] == ["&Open image…", "&Add folder…", "&Scan library folders", "&Quit"]
    assert texts["&View"] == list(AREAS)
    assert texts["&Tools"] == ["&Merge two LoRAs (ZipLoRA)…"]
    assert texts["&Help"] == ["&Keyboard shortcuts", "&Welcome", "Open &logs folder", "&About CraftStudio"]
    for menu in menus.values():
        assert all(a.toolTip() != a.text().replace("&", "") for a in menu.actions() if not a.isSeparator())
    assert window.open_image_action.shortcut().toString() == "Ctrl+O"
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"


def test_help_lists_every_shortcut_and_shows_welcome_and_about_without_blocking(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    window.shortcuts_action.trigger()
    text = window.dialogs[-1].text()
    assert all(keys in text and what in text for keys, what in SHORTCUTS)
    window.about_action.trigger()
    assert "CraftStudio 0." in window.dialogs[-1].text()
    window.generate_state.dismiss_welcome()
    window.show_area("Train")
    window.welcome_action.trigger()
    assert not window.generate_state.welcome_dismissed and window.current_area == "Generate"


def test_open_logs_folder_opens_the_log_folder(qtbot, make_studio, tmp_path):
    studio = make_studio(FakeEngine())
    opened = []
    studio.window.open_url = opened.append
    studio.window.logs_action.trigger()
    assert [url.toLocalFile() for url in opened] == [str(tmp_path / "home" / "logs")]
    assert (tmp_path / "home" / "logs").is_dir()


def test_scan_library_folders_reports_in_the_status_bar(qtbot, make_studio):
    window = make_studio(FakeEngine()).window
    window.scan_action.trigger()
    assert "Neither the models folder nor the LoRAs folder exists" in window.statusBar().currentMessage()


def test_window_size_splitters_and_area_are_restored(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    window = studio.window
    window.resize(QSize(1200, 700))
    splitter = window.generate_panel.findChild(QSplitter)
    splitter.setSizes([300, 500])
    sizes = splitter.sizes()
    window.show_area("Gallery")
    studio.shutdown()
    again = make_studio(FakeEngine()).window
    assert again.size() == QSize(1200, 700)
    assert again.current_area == "Gallery"
    again.show_area("Generate")
    qtbot.waitUntil(lambda: again.generate_panel.findChild(QSplitter).sizes() == sizes)


def test_a_damaged_layout_is_ignored(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    studio.settings.save_window_layout({"geometry": [1, "x"], "splitters": {"Generate/0": ["a"]}, "area": "Nowhere"})
    window = make_studio(FakeEngine()).window
    assert window.current_area == "Generate"


def test_add_folder_goes_through_the_folder_adder(qtbot, make_studio, tmp_path, monkeypatch):
    window = make_studio(FakeEngine()).window
    added = []
    window.folder_adder = added.append
    monkeypatch.setattr("craftstudio.ui.main_window.QFileDialog.getExistingDirectory",
                        lambda *args: str(tmp_path))
    window.add_folder_action.trigger()
    assert added == [str(tmp_path)]


def test_open_image_goes_through_the_png_opener_and_close_guards_can_veto(qtbot, make_studio, tmp_path):
    window = make_studio(FakeEngine()).window
    opened = []
    window.png_opener = opened.append
    window.show_area("Library")
    window.open_image(tmp_path / "a.png")
    assert opened == [str(tmp_path / "a.png")] and window.current_area == "Generate"
    answers = [False]
    window.close_guards.append(lambda: answers[-1])
    assert not window.close() and window.isVisible()
    answers.append(True)
    assert window.close() and not window.isVisible()
