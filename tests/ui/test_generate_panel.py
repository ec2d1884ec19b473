"""The Generate panel driven like a user would: type, click, watch, cancel, read errors."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from craftstudio.domain.errors import ModelError
from tests.ui.conftest import type_path
from tests.workers.fake_engine import FakeEngine, _image, quick_request

TIMEOUT = 5000


def fill_in(qtbot, panel, prompt="a ginger cat"):
    type_path(qtbot, panel.model_edit, "/models/fake")
    qtbot.keyClicks(panel.prompt_edit, prompt)
    for spin, value in ((panel.width_spin, 64), (panel.height_spin, 64), (panel.steps_spin, 3)):
        spin.setValue(value)


def test_generate_shows_progress_previews_and_the_image(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    panel.scheduler_combo.setCurrentIndex(panel.scheduler_combo.findData("euler_a"))
    previews = []
    studio.generate.preview_changed.connect(previews.append)
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
        assert panel.generate_button.text() == "Add to queue" and panel.cancel_button.isEnabled()
    request = engine.calls[0]
    assert (request.prompt, request.model, request.width, request.steps, request.scheduler) == (
        "a ginger cat", "/models/fake", 64, 3, "euler_a")
    assert any(p is not None for p in previews)
    assert not panel.image_view.pixmap().isNull()
    assert panel.image_view.pixmap().width() == 64
    assert not panel.image_view.label.pixmap().isNull()
    assert panel.progress_bar.value() == panel.progress_bar.maximum()
    assert "saved to" in panel.status_label.text()
    assert panel.generate_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.error_label.isHidden()
    assert len(list((studio.paths.outputs).glob("*.png"))) == 1


def test_a_batch_shows_thumbnails(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    panel.batch_spin.setValue(3)
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.image_view.thumbnails.count() == 3
    assert not panel.image_view.thumbnails.isHidden()
    panel.image_view.thumbnails.setCurrentRow(2)
    assert not panel.image_view.pixmap().isNull()


def test_cancel_during_a_slow_generation(qtbot, make_studio):
    engine = FakeEngine().hold()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert engine.entered.wait(5)
    with qtbot.waitSignal(studio.runner.cancelled, timeout=TIMEOUT):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert panel.status_label.text() == "Cancelled."
    assert panel.generate_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.progress_bar.value() == 0
    assert not studio.paths.outputs.exists()


def test_engine_user_error_is_shown_in_the_window(qtbot, make_studio):
    message = "/models/fake does not exist: choose a diffusers model folder or a .safetensors file."
    studio = make_studio(FakeEngine(error=ModelError(message)))
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    with qtbot.waitSignal(studio.runner.failed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text() == message
    assert panel.error_label.isVisible()
    assert studio.window.statusBar().currentMessage() == message
    assert panel.generate_button.isEnabled()


def test_unexpected_engine_error_is_a_short_message_not_a_crash(qtbot, make_studio):
    studio = make_studio(FakeEngine(error=RuntimeError("mat1 and mat2 shapes cannot be multiplied")))
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    with qtbot.waitSignal(studio.runner.failed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text() == (
        "Unexpected error: mat1 and mat2 shapes cannot be multiplied; details in the log.")


def test_invalid_size_is_explained_and_nothing_runs(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    panel.width_spin.setValue(100)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert "Image width 100 is not allowed" in panel.error_label.text()
    assert engine.calls == [] and not studio.runner.is_busy
    assert panel.generate_button.isEnabled()


def test_fixed_seed_is_typed_and_used(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    assert not panel.seed_edit.isEnabled()  # random by default
    panel.random_seed_check.setChecked(False)
    panel.seed_edit.clear()
    qtbot.keyClicks(panel.seed_edit, "5000000000")  # more than 32 bits
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert engine.calls[0].seed == 5_000_000_000


def test_widgets_follow_state_changes(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    panel = studio.window.generate_panel
    studio.generate.prompt = "a blue bird"
    studio.generate.steps = 12
    studio.generate.scheduler = "ddim"
    assert panel.prompt_edit.toPlainText() == "a blue bird"
    assert panel.steps_spin.value() == 12
    assert panel.scheduler_combo.currentData() == "ddim"


def test_cancel_brings_back_the_previous_result_not_the_noisy_preview(qtbot, make_studio):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    finished = panel.image_view.pixmap().toImage()
    engine.hold()
    engine.entered.clear()
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(engine.entered.is_set, timeout=TIMEOUT)  # held inside the first step
    studio.generate.preview = _image(quick_request(), 99, 1)  # the step preview the job would show
    assert panel.image_view.pixmap().toImage() != finished
    with qtbot.waitSignal(studio.runner.cancelled, timeout=TIMEOUT):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    engine.release()
    assert panel.image_view.pixmap().toImage() == finished
    assert panel.status_label.text() == "Cancelled. Showing the previous result."


def test_the_progress_bar_says_the_step_and_is_busy_while_loading(qtbot, make_studio):
    engine = FakeEngine().hold()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.progress_bar.format() == "Loading model…", timeout=TIMEOUT)
    assert panel.progress_bar.maximum() == 0  # Qt's busy indicator
    assert panel.status_label.text() == "Loading model…"  # a busy bar draws no text
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        engine.release()
    assert panel.progress_bar.maximum() > 0 and panel.progress_bar.format().startswith("Done in")
    seen = []
    studio.generate.progress_text_changed.connect(seen.append)
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert "step 1/3" in seen and any(text.startswith("step 3/3 · ") and "left" in text for text in seen)


def test_a_new_error_replaces_the_status_and_fixing_the_prompt_clears_it(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    with qtbot.waitSignal(studio.generate.images_changed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert "saved to" in panel.status_label.text()
    qtbot.keyClicks(panel.prompt_edit, " <x>")
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.isVisible() and panel.status_label.text() == ""
    assert panel.prompt_edit.textCursor().position() == len("a ginger cat ")  # put on the bad marker
    panel.prompt_edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClick(panel.prompt_edit, Qt.Key.Key_Backspace)
    qtbot.keyClick(panel.prompt_edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(panel.prompt_edit, "c>")
    assert panel.error_label.isHidden() and panel.markers_label.text().startswith("content γ 1.0")


def test_clearing_a_lora_offers_to_take_its_trigger_out_of_the_prompt(qtbot, make_studio, tmp_path):
    from craftstudio.library import synthetic

    ink = synthetic.write_safetensors(tmp_path / "ink.safetensors", synthetic.LAYOUTS["peft-sd1"](4),
                                      {"modelspec.trigger_phrase": "ink sketch"})
    studio = make_studio()
    panel = studio.window.generate_panel
    fill_in(qtbot, panel, prompt="a cat <c>")
    studio.generate.use_lora(ink, "style", "ink sketch")
    assert studio.generate.prompt == "a cat <c>, ink sketch <s>"
    assert panel.prompt_edit.trigger_phrases() == ["ink sketch"]
    style = panel.craft_panel.style_edit
    style.lineEdit().clear()
    style.lineEdit().textEdited.emit("")  # the field's clear button
    assert panel.trigger_offer.isVisible() and "ink sketch" in panel.trigger_offer_label.text()
    qtbot.mouseClick(panel.remove_trigger_button, Qt.MouseButton.LeftButton)
    assert studio.generate.prompt == "a cat <c>" and not panel.trigger_offer.isVisible()


def test_the_model_picker_offers_the_demo_after_the_field_was_cleared(qtbot, make_studio, monkeypatch, tmp_path):
    import json

    from tests.state.fake_demo import install_demo_assets

    demo = tmp_path / "shapesworld"
    for sub, config in (("unet", {"sample_size": 16}), ("vae", {"block_out_channels": [1, 2, 3]})):
        (demo / sub).mkdir(parents=True)
        (demo / sub / "config.json").write_text(json.dumps(config))
    (demo / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    studio = make_studio()
    install_demo_assets(monkeypatch, demo_model_dir=lambda: demo)
    studio.generate.library._demo = False  # look the demo up again
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    panel.model_edit.lineEdit().clear()
    panel.model_edit.lineEdit().textEdited.emit("")
    assert studio.generate.model == ""
    panel.model_edit.setFocus()
    qtbot.keyClicks(panel.model_edit, "shapes")
    qtbot.keyClick(panel.model_edit, Qt.Key.Key_Return)
    assert studio.generate.model == str(demo)
    assert (studio.generate.width, studio.generate.height) == (64, 64)
    assert "demo" in panel.model_edit.lineEdit().text().lower()
    assert "will come later" not in panel.model_edit.lineEdit().toolTip()


def test_the_settings_column_scrolls_and_is_never_clipped_sideways(qtbot, make_studio):
    studio = make_studio()
    panel = studio.window.generate_panel
    scroll = panel.settings_scroll
    for size in ((1024, 640), (studio.window.minimumSizeHint().width(), 640)):
        studio.window.resize(*size)
        qtbot.waitUntil(lambda s=size: studio.window.width() == s[0])
        assert scroll.viewport().width() >= scroll.widget().minimumSizeHint().width()
        assert scroll.verticalScrollBar().maximum() > 0  # taller than the window: it scrolls
    assert studio.window.minimumSizeHint().width() <= 1024
