"""The Train page in the window: bound to TrainState, kinds, references, clipboard, Try it."""

from __future__ import annotations

import shlex
from pathlib import Path

from PIL import Image
from PySide6.QtGui import QGuiApplication

from craftstudio.domain.training import LoraTrainRequest, TrainResult
from craftstudio.ui.train_page import TrainPage
from craftstudio.workers.train_job import TrainOutput


def write_refs(folder: Path) -> Path:
    folder.mkdir()
    for i, size in enumerate([(64, 64), (64, 64), (32, 32)]):
        Image.new("RGB", size, (60 * i, 120, 90)).save(folder / f"ref-{i}.png")
    (folder / "ref-0.txt").write_text("a sks on grass", encoding="utf-8")
    (folder / "bad.png").write_bytes(b"nope")
    return folder


def test_the_train_area_is_the_train_page_bound_to_its_state(make_studio, qtbot, tmp_path):
    studio = make_studio()
    window, state = studio.window, studio.train
    window.show_area("Train")
    page = window.page("Train")
    assert isinstance(page, TrainPage) and window.pages.currentWidget() is page

    page.trigger_edit.setText("sks cat")
    assert state.trigger == "sks cat"
    assert page.name_edit.placeholderText() == "sks-cat-content"
    page.quality_combo.setCurrentIndex(page.quality_combo.findData("Quick"))
    assert (state.steps, state.rank) == (300, 8)

    page.fast_check.setChecked(True)
    assert not page.fast_check.isHidden() and state.request().fast

    backbone = next(b for b in page.kind_buttons.buttons() if b.property("kind") == "backbone")
    backbone.click()
    assert state.kind == "backbone" and state.steps == 500
    assert page.content_strip.isVisibleTo(page) and not page.lora_strip.isVisibleTo(page)
    assert not page.trigger_edit.isVisibleTo(page)
    # The backbone's Rank-FT step compiles too (staged): the box stays, and the request asks for it.
    assert not page.fast_check.isHidden() and state.request().fast
    page.fast_check.setChecked(False)
    assert not state.request().fast


def test_references_show_captions_badges_and_problems(make_studio, qtbot, tmp_path):
    studio = make_studio()
    page, state = studio.window.page("Train"), studio.train
    studio.window.show_area("Train")
    state.trigger, state.resolution = "sks", 64
    state.images.set_folder(write_refs(tmp_path / "refs"))
    strip = page.lora_strip
    texts = [strip.strip.item(i).text() for i in range(strip.strip.count())]
    assert texts == ["a sks on grass", "a photo of sks", "a photo of sks"]  # template where no caption file
    assert "1 below 64 px" in strip.count_label.text()
    assert "bad.png" in strip.problems.text() and strip.problems.isVisibleTo(page)

    strip.strip.setCurrentRow(1)
    strip.caption_edit.setText("a sks by the sea")
    strip.caption_edit.editingFinished.emit()
    assert (tmp_path / "refs" / "ref-1.txt").read_text(encoding="utf-8").strip() == "a sks by the sea"
    strip.strip.setCurrentRow(2)
    strip.remove_button.click()
    assert [i.path.name for i in state.images.images] == ["ref-0.png", "ref-1.png"]
    assert (tmp_path / "refs" / "ref-2.png").is_file()


def test_copy_as_command_puts_the_cli_command_on_the_clipboard(make_studio, qtbot, tmp_path):
    studio = make_studio()
    page, state = studio.window.page("Train"), studio.train
    state.model, state.trigger = str(tmp_path / "model"), "ohwx"
    state.kind = "style"
    state.images.set_folder(write_refs(tmp_path / "refs"))
    page.command_button.click()
    argv = shlex.split(QGuiApplication.clipboard().text())
    assert argv[:6] == ["python", "-m", "craftstudio", "train", "lora", "--role"] and argv[6] == "style"
    assert argv[argv.index("--images") + 1] == str(tmp_path / "refs")
    assert state.status == "Command copied to the clipboard."


def test_try_it_opens_generate_with_the_lora_and_its_trigger(make_studio, qtbot, tmp_path):
    studio = make_studio()
    page, state, window = studio.window.page("Train"), studio.train, studio.window
    window.show_area("Train")
    out = tmp_path / "cat.safetensors"
    request = LoraTrainRequest(role="content", model=str(tmp_path / "model"), images=("refs",),
                               trigger="sks cat", out=str(out))
    state.last_output = TrainOutput(TrainResult(request, str(out), 1, 1.0, "cpu", 64))
    state.output = str(out)
    assert page.try_button.isEnabled()
    page.try_button.click()
    assert window.current_area == "Generate"
    assert studio.generate.craft.content_lora == str(out)
    assert "sks cat <c>" in studio.generate.prompt


def test_on_a_computer_without_a_gpu_the_page_says_cpu_and_picks_the_cpu_preset(make_studio, qtbot,
                                                                               monkeypatch):
    import craftstudio.state.device_probe as device_probe

    monkeypatch.setattr(device_probe, "may_have_accelerator", lambda: False)
    studio = make_studio()
    state, page = studio.train, studio.window.page("Train")
    state.gradient_checkpointing, state.batch_size = True, 3
    studio.window.show_area("Train")
    assert page.device_label.text() == "Device: CPU"
    assert page.memory_combo.itemText(0) == "Auto (CPU)"
    assert (state.batch_size, state.gradient_checkpointing, state.adam_8bit) == (1, False, False)


def test_with_several_gpus_the_page_offers_them_and_remembers_the_choice(make_studio, qtbot, monkeypatch):
    import craftstudio.state.device_probe as device_probe
    from craftstudio.workers.train_job import DeviceInfo, DeviceProbeJob

    gpus = ("NVIDIA H200, 140 GB", "NVIDIA H200, 140 GB")
    monkeypatch.setattr(device_probe, "may_have_accelerator", lambda: True)
    monkeypatch.setattr(DeviceProbeJob, "run", lambda self, progress, cancel: DeviceInfo(
        "cuda", "NVIDIA H200", 140.0, False, gpus))
    studio = make_studio()
    state, page = studio.train, studio.window.page("Train")
    assert not page.gpu_row.isVisible()  # no choice before the probe says there is one
    with qtbot.waitSignal(state.gpu_selection.available_changed):
        studio.window.show_area("Train")
    assert page.gpu_row.isVisible()
    assert [box.text() for box in page.gpu_row.boxes] == [f"0: {gpus[0]}", f"1: {gpus[1]}"]
    assert [box.isChecked() for box in page.gpu_row.boxes] == [True, False]
    page.gpu_row.boxes[1].click()
    state.batch_size = 2
    assert (state.request().num_processes, state.request().gpus) == (2, (0, 1))
    assert "batch split over them" in page.gpu_row.note.text()
    state.save_settings()

    again = make_studio()  # the next start: the choice comes back and shows once the probe answers
    with qtbot.waitSignal(again.train.gpu_selection.available_changed):
        again.window.show_area("Train")
    assert [box.isChecked() for box in again.window.page("Train").gpu_row.boxes] == [True, True]


def test_with_one_gpu_there_is_no_gpu_choice(make_studio, qtbot, monkeypatch):
    import craftstudio.state.device_probe as device_probe
    from craftstudio.workers.train_job import DeviceInfo, DeviceProbeJob

    monkeypatch.setattr(device_probe, "may_have_accelerator", lambda: True)
    monkeypatch.setattr(DeviceProbeJob, "run", lambda self, progress, cancel: DeviceInfo(
        "cuda", "RTX 4090", 24.0, False, ("RTX 4090, 24 GB",)))
    studio = make_studio()
    with qtbot.waitSignal(studio.train.gpu_selection.available_changed):
        studio.window.show_area("Train")
    assert not studio.window.page("Train").gpu_row.isVisible() and studio.train.request().num_processes == 1
