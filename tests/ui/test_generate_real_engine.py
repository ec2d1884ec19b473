"""The GUI's generate path on the real engine with the tiny SD1.x model (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

import craftstudio
from craftstudio.library.png_params import read_request
from craftstudio.workers.generate_job import engine_generate

pytestmark = pytest.mark.skipif(
    not (Path(craftstudio.__file__).parent / "engine" / "generation.py").exists(),
    reason="craftstudio.engine.generation is not written yet")

# The first run imports torch and diffusers and loads the model on the worker thread.
TIMEOUT = 120_000


def fill_in(qtbot, panel, model: str):
    panel.model_edit.setText(model)
    qtbot.keyClicks(panel.prompt_edit, "a ginger cat")
    panel.width_spin.setValue(64)
    panel.height_spin.setValue(64)
    panel.steps_spin.setValue(3)


def test_generate_with_the_tiny_model(qtbot, make_studio, tiny_sd1):
    studio = make_studio()  # the real engine
    panel = studio.window.generate_panel
    fill_in(qtbot, panel, str(tiny_sd1))
    previews = []
    studio.generate.preview_changed.connect(previews.append)
    with qtbot.waitSignal(studio.generate.is_busy_changed, timeout=TIMEOUT,
                          check_params_cb=lambda busy: not busy):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text() == ""
    assert not panel.image_view.pixmap().isNull()
    assert (panel.image_view.pixmap().width(), panel.image_view.pixmap().height()) == (64, 64)
    assert any(p is not None for p in previews)
    [path] = studio.generate.image_paths
    assert path.parent == studio.paths.outputs
    recorded = read_request(path)
    assert (recorded.prompt, recorded.steps, recorded.seed) == ("a ginger cat", 3, studio.generate.seed)


def test_a_missing_model_is_a_message(qtbot, make_studio, tmp_path):
    studio = make_studio()
    panel = studio.window.generate_panel
    fill_in(qtbot, panel, str(tmp_path / "no-such-model"))
    with qtbot.waitSignal(studio.runner.failed, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert "no-such-model" in panel.error_label.text()
    assert not panel.error_label.text().startswith("Unexpected error")


def test_cancel_stops_the_real_engine(qtbot, make_studio, tiny_sd1):
    def cancel_at_step_two(request, *, progress, cancel):
        # Press Cancel from inside step 2: deterministic, unlike racing a 0.3 s generation.
        def watch(event):
            if getattr(event, "stage", "") == "denoise" and event.step == 2:
                cancel.cancel()
            progress(event)

        return engine_generate(request, progress=watch, cancel=cancel)

    studio = make_studio(cancel_at_step_two)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel, str(tiny_sd1))
    panel.steps_spin.setValue(4)
    with qtbot.waitSignal(studio.runner.cancelled, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.status_label.text() == "Cancelled."
    assert not studio.paths.outputs.exists() or not list(studio.paths.outputs.iterdir())
