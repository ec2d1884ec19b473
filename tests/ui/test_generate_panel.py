"""The Generate panel driven like a user would: type, click, watch, cancel, read errors."""

from __future__ import annotations

from PySide6.QtCore import Qt

from craftstudio.domain.errors import ModelError
from tests.workers.fake_engine import FakeEngine

TIMEOUT = 5000


def fill_in(qtbot, panel, prompt="a ginger cat"):
    qtbot.keyClicks(panel.model_edit, "/models/fake")
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
