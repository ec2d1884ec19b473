""""GPUs for a batch" (Settings): listed by the shared probe, remembered, and what a job is given."""

from __future__ import annotations

import dataclasses

import pytest

from craftstudio.library.catalog import Catalog
from craftstudio.library.paths import AppPaths
from craftstudio.state.device_probe import DeviceProbe
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.settings_state import SettingsState
from craftstudio.state.train_state import TrainState
from craftstudio.workers.train_job import CPU_ONLY, DeviceInfo
from tests.state.conftest import TIMEOUT
from tests.workers.fake_engine import FakeEngine, quick_request

H200 = "NVIDIA H200, 140 GB"
TWO_GPUS = DeviceInfo("cuda", "NVIDIA H200", 140.0, False, (H200, H200))


class FakeSplit:
    """Stands in for the real split (engine/multi_device.py): records the devices, and reports
    them in the result's details as the engine does."""

    def __init__(self) -> None:
        self.engine = FakeEngine()
        self.devices: list[list[str]] = []

    def __call__(self, request, devices, *, progress=None, cancel=None):
        self.devices.append(list(devices))
        result = self.engine(request, progress=progress, cancel=cancel)
        return dataclasses.replace(result, device=",".join(devices),
                                   details={"devices": [{"device": d, "seeds": []} for d in devices]})


def _settings(tmp_path, runner=None, probe=None) -> SettingsState:
    paths = AppPaths(tmp_path / "home")
    return SettingsState(paths, settings=SettingsFile(paths.settings), runner=runner, probe=probe)


def test_the_row_has_gpus_only_where_the_computer_has_several(qtbot, tmp_path):
    state = _settings(tmp_path)
    assert not state.gpu_selection.several  # nothing listed before the probe answers
    for info, several in ((CPU_ONLY, False), (DeviceInfo("cuda", "RTX 4090", 24.0, False, ("RTX 4090, 24 GB",)), False),
                          (TWO_GPUS, True)):
        state.use_devices(info)
        assert state.gpu_selection.several is several
    assert state.batch_devices(quick_request(batch_count=4)) == ()  # GPU 0 alone until more are ticked


def test_the_choice_is_remembered_and_a_gpu_the_computer_lacks_is_dropped(qtbot, tmp_path):
    state = _settings(tmp_path)
    state.use_devices(DeviceInfo("cuda", "H200", 140.0, False, (H200,) * 4))
    state.gpu_selection.use(1, True)
    state.gpu_selection.use(3, True)  # saved at once, like every setting
    assert state.gpu_selection.chosen == "0,1,3"
    assert "GPUs 0, 1 and 3" in state.gpu_note

    again = _settings(tmp_path)  # the next start, or the settings file on a computer with two GPUs
    assert again.gpu_selection.chosen == "0,1,3"
    # Before the GPUs are listed the remembered choice counts; the job leaves out missing GPUs.
    assert again.batch_devices(quick_request(batch_count=2)) == ("cuda:0", "cuda:1", "cuda:3")
    again.use_devices(TWO_GPUS)
    assert again.batch_devices(quick_request(batch_count=2)) == ("cuda:0", "cuda:1")
    again.use_devices(CPU_ONLY)
    assert again.batch_devices(quick_request(batch_count=2)) == ()


@pytest.mark.parametrize(("changes", "split"), [
    ({}, True),
    ({"device": "cuda"}, True),
    ({"batch_count": 1}, False),  # a single image runs on one GPU
    ({"device": "cpu"}, False),
    ({"device": "mps"}, False),
    ({"low_vram": True}, False),  # low VRAM keeps one model in CPU memory
])
def test_a_batch_is_split_only_on_cuda_without_low_vram_and_with_several_images(qtbot, tmp_path, changes, split):
    state = _settings(tmp_path)
    state.use_devices(TWO_GPUS)
    state.gpu_selection.use(1, True)
    request = quick_request(**{"batch_count": 3, "device": "auto", **changes})
    assert state.batch_devices(request) == (("cuda:0", "cuda:1") if split else ())


def test_the_job_is_given_the_gpus_and_its_result_records_them(qtbot, runner, tmp_path):
    settings = _settings(tmp_path, runner)
    settings.use_devices(TWO_GPUS)
    settings.gpu_selection.use(1, True)
    settings.change("outputs_folder", str(tmp_path / "out"))
    split = FakeSplit()
    plain = FakeEngine()
    catalog = Catalog.in_memory(tmp_path / "home")
    state = GenerateState(runner, engine=plain, split_engine=split, app_settings=settings,
                          history=catalog.history)
    state.model, state.prompt, state.width, state.height, state.steps = "/models/fake", "a cat", 64, 64, 2
    state.random_seed, state.seed, state.batch_count = False, 7, 3
    with qtbot.waitSignal(state.generation_recorded, timeout=TIMEOUT):
        job_id = state.generate()
        job = runner.info(job_id).job
        assert job.devices == ("cuda:0", "cuda:1") and job.label.endswith("on 2 GPUs")
    assert split.devices == [["cuda:0", "cuda:1"]] and plain.calls == []
    assert len(state.image_paths) == 3 and " on 2 GPUs, saved to " in state.status
    record = catalog.history.generations()[0].record
    assert [part["device"] for part in record["devices"]] == ["cuda:0", "cuda:1"]

    state.batch_count = 1  # one image: the ordinary engine, no devices
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        job = runner.info(state.generate()).job
        assert job.devices == () and "GPUs" not in job.label
    assert len(plain.calls) == 1 and len(split.devices) == 1
    catalog.close()


def test_settings_and_train_share_one_probe(qtbot, runner, tmp_path, monkeypatch):
    import craftstudio.state.device_probe as device_probe
    from craftstudio.workers.train_job import DeviceProbeJob

    monkeypatch.setattr(device_probe, "may_have_accelerator", lambda: True)
    probes = []
    monkeypatch.setattr(DeviceProbeJob, "run", lambda self, progress, cancel: probes.append(1) or TWO_GPUS)
    probe = DeviceProbe(runner)
    settings = _settings(tmp_path, runner, probe)
    train = TrainState(runner, library_home=tmp_path / "home", probe=probe)
    with qtbot.waitSignal(probe.detected, timeout=TIMEOUT):
        settings.detect_gpus()  # the Settings page shown first
    train.detect_device()  # then the Train page: the answer is there already
    settings.detect_gpus()
    assert probes == [1]
    assert settings.gpu_selection.several and train.gpu_selection.several
    assert train.device_label == "Device: NVIDIA H200, 140 GB"
