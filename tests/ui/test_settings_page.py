"""SettingsPage: widgets show the settings, refused values show the sentence, the theme applies."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QSpinBox, QWidget

from craftstudio.library.paths import AppPaths
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.settings_state import SettingsState
from craftstudio.ui.settings_page import SettingsPage
from craftstudio.ui.theme import apply_theme, palette_for
from tests.workers.fake_engine import FakeEngine


def _page(qtbot, tmp_path) -> SettingsPage:
    paths = AppPaths(tmp_path / "home")
    page = SettingsPage(SettingsState(paths, settings=SettingsFile(paths.settings)))
    qtbot.addWidget(page)
    page.show()
    return page


def test_widgets_show_and_change_the_settings(qtbot, tmp_path):
    page = _page(qtbot, tmp_path)
    state = page.state
    assert page.device_combo.currentData() == "auto" and page.theme_combo.currentData() == "dark"
    assert page.preview_spin.text() == "1 step" and page.threads_spin.text() == "Automatic"
    page.threads_spin.setValue(3)
    page.preview_spin.setValue(0)
    assert (state.cpu_threads, state.preview_every) == (3, 0) and page.preview_spin.text() == "Off"
    page.device_combo.setCurrentIndex(page.device_combo.findData("cpu"))
    page.device_combo.activated.emit(page.device_combo.currentIndex())
    assert state.device == "cpu"
    state.change("device", "cuda")
    assert page.device_combo.currentData() == "cuda"
    assert not page.fast_check.isChecked() and not page.low_vram_check.isChecked()
    page.fast_check.setChecked(True)
    state.change("low_vram", True)
    assert state.fast and page.low_vram_check.isChecked()


def test_an_invalid_template_shows_the_sentence_and_keeps_the_old_one(qtbot, tmp_path):
    page = _page(qtbot, tmp_path)
    page.template_edit.setFocus()
    page.template_edit.selectAll()
    qtbot.keyClicks(page.template_edit, "{colour}")
    assert page.example_label.text().startswith("Unknown placeholder {colour}")  # live, before committing
    page.template_edit.editingFinished.emit()
    assert page.error_label.isVisible()
    assert page.error_label.text().startswith("Unknown placeholder {colour} in the file name template")
    assert page.state.file_name_template == "{date}-{time}-{seed}"
    page.template_edit.setText("{model}-{seed}")
    page.template_edit.editingFinished.emit()
    assert not page.error_label.isVisible() and page.state.file_name_template == "{model}-{seed}"
    assert page.example_label.text() == "e.g. shapesworld-1234.png"


def test_a_relative_folder_is_refused_on_the_page(qtbot, tmp_path):
    page = _page(qtbot, tmp_path)
    edit = page.folder_edits["outputs_folder"]
    edit.setText("pictures")
    edit.editingFinished.emit()
    assert page.error_label.text() == ("The outputs folder 'pictures' is not a full path: choose it with "
                                       "Browse….")
    assert page.state.outputs_folder == str(tmp_path / "home" / "outputs")


def test_every_control_has_a_tooltip(qtbot, tmp_path):
    page = _page(qtbot, tmp_path)
    controls = [w for w in page.findChildren(QWidget)
                if w.metaObject().className() in ("QComboBox", "QSpinBox", "QLineEdit", "QPushButton")
                and not isinstance(w.parent(), QSpinBox)]  # a spin box's own line edit
    assert len(controls) == 11  # 2 combos, 2 spin boxes, 4 text fields, 3 Browse buttons
    assert all(w.toolTip() for w in controls), [w.metaObject().className() for w in controls if not w.toolTip()]


def test_changing_the_theme_repaints_the_application(qtbot, make_studio):
    app = QApplication.instance()
    before = app.palette()
    studio = make_studio(FakeEngine())
    try:
        studio.settings.change("theme", "light")
        assert app.palette().color(QPalette.ColorRole.Window) == palette_for("light").color(QPalette.ColorRole.Window)
        studio.settings.change("theme", "dark")
        window_colour = app.palette().color(QPalette.ColorRole.Window)
        assert window_colour == palette_for("dark").color(QPalette.ColorRole.Window)
        assert window_colour.lightness() < 80
    finally:
        app.setPalette(before)
        app.setStyleSheet("")


def test_system_theme_goes_back_to_the_palette_before_any_theme(qtbot):
    app = QApplication.instance()
    before = app.palette()
    try:
        apply_theme("dark")
        apply_theme("system")
        assert app.palette().color(QPalette.ColorRole.Window) == palette_for("system").color(QPalette.ColorRole.Window)
        assert app.palette().color(QPalette.ColorRole.Window) != palette_for("dark").color(QPalette.ColorRole.Window)
    finally:
        app.setPalette(before)
        app.setStyleSheet("")


def test_the_gpu_row_shows_only_with_several_gpus_and_remembers_the_ticks(qtbot, tmp_path):
    from craftstudio.workers.train_job import CPU_ONLY, DeviceInfo

    page = _page(qtbot, tmp_path)
    state = page.state
    assert not page.gpu_row.isVisible()
    state.use_devices(CPU_ONLY)
    assert not page.gpu_row.isVisible() and page.gpu_row.boxes == []
    state.use_devices(DeviceInfo("cuda", "RTX 4090", 24.0, False, ("RTX 4090, 24 GB",)))
    assert not page.gpu_row.isVisible()
    gpus = ("NVIDIA H200, 140 GB", "NVIDIA H200, 140 GB")
    state.use_devices(DeviceInfo("cuda", "NVIDIA H200", 140.0, False, gpus))
    assert page.gpu_row.isVisible()
    assert [box.text() for box in page.gpu_row.boxes] == [f"GPU 0 · {gpus[0]}", f"GPU 1 · {gpus[1]}"]
    assert [box.isChecked() for box in page.gpu_row.boxes] == [True, False]
    page.gpu_row.boxes[1].click()
    assert state.gpu_selection.chosen == "0,1" and "split over GPUs 0 and 1" in page.gpu_row.note.text()
    state.change("low_vram", True)
    assert not page.gpu_row.boxes[0].isEnabled() and "Low VRAM" in page.gpu_row.note.text()
    state.change("low_vram", False)
    assert page.gpu_row.boxes[1].isEnabled()
    again = _page(qtbot, tmp_path)  # the next start: ticked once the GPUs are listed
    again.state.use_devices(DeviceInfo("cuda", "NVIDIA H200", 140.0, False, gpus))
    assert [box.isChecked() for box in again.gpu_row.boxes] == [True, True]


def test_showing_settings_lists_the_gpus_once_for_train_too(qtbot, make_studio, monkeypatch):
    import craftstudio.state.device_probe as device_probe
    from craftstudio.workers.train_job import DeviceInfo, DeviceProbeJob

    gpus = ("NVIDIA H200, 140 GB",) * 3
    monkeypatch.setattr(device_probe, "may_have_accelerator", lambda: True)
    monkeypatch.setattr(DeviceProbeJob, "run", lambda self, progress, cancel: DeviceInfo(
        "cuda", "NVIDIA H200", 140.0, False, gpus))
    studio = make_studio(FakeEngine())
    page = studio.window.settings_page
    with qtbot.waitSignal(studio.settings.gpu_selection.available_changed):
        studio.window.show_area("Settings")
    assert page.gpu_row.isVisible() and len(page.gpu_row.boxes) == 3
    assert studio.train.gpu_selection.several  # the Train page has its answer without a second probe
