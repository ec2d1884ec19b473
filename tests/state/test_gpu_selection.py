"""Choosing the GPUs a training run uses: from a (faked) device probe, remembered, in the request."""

from __future__ import annotations

import shlex

import pytest

from craftstudio.domain.errors import RequestError
from craftstudio.state.gpu_selection import GpuSelection, parse_numbers
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.train_command import command_line
from craftstudio.state.train_state import TrainState
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.train_job import DeviceInfo

TWO_GPUS = DeviceInfo("cuda", "NVIDIA H200", 140.0, False, ("NVIDIA H200, 140 GB", "NVIDIA H200, 140 GB"))


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.shutdown()


def _state(runner, tmp_path, settings: SettingsFile | None = None) -> TrainState:
    state = TrainState(runner, library_home=tmp_path / "home", settings=settings)
    state.model, state.kind, state.trigger = "model-folder", "content", "sks"
    return state


def test_one_gpu_or_none_is_the_ordinary_run():
    selection = GpuSelection()
    assert not selection.several and selection.request_fields("auto") == {}
    selection.available = ["A"]
    selection.chosen = "0,1"  # remembered from a computer with two
    assert selection.numbers() == [0] and selection.request_fields("cuda") == {}


def test_several_chosen_gpus_make_one_process_each():
    selection = GpuSelection()
    selection.available = ["A", "B", "C"]
    assert selection.is_used(0) and not selection.is_used(1)  # GPU 0 alone until more are chosen
    selection.use(2, True)
    assert selection.chosen == "0,2" and selection.request_fields("auto") == {"num_processes": 2, "gpus": (0, 2)}
    assert selection.request_fields("cpu") == {}  # CPU training ignores the GPU choice
    selection.use(0, False)
    assert selection.request_fields("cuda") == {"num_processes": 1, "gpus": (2,)}  # GPU 2 alone
    assert parse_numbers("2, x,0,2") == [0, 2]


def test_the_train_state_offers_the_probed_gpus_and_remembers_the_choice(runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    state = _state(runner, tmp_path, settings)
    state._on_device(TWO_GPUS)  # what DeviceProbeJob reports on a two-GPU computer
    assert state.gpu_selection.several and state.device_label == "Device: NVIDIA H200, 140 GB"
    state.gpu_selection.use(1, True)
    state.batch_size = 4
    request = state.request()
    assert (request.num_processes, request.gpus, request.batch_size) == (2, (0, 1), 4)
    args = shlex.split(command_line(request))
    assert args[args.index("--gpus") + 1] == "0,1" and "--num-processes" not in args  # one process per GPU
    state.save_settings()

    again = _state(runner, tmp_path, SettingsFile(tmp_path / "settings.json"))
    assert again.gpu_selection.chosen == "0,1"
    assert again.request().num_processes == 1  # until the probe says the GPUs are here
    again._on_device(TWO_GPUS)
    assert again.request().gpus == (0, 1)


def test_a_batch_that_does_not_split_over_the_gpus_is_refused_in_one_sentence(runner, tmp_path):
    state = _state(runner, tmp_path)
    state._on_device(TWO_GPUS)
    state.gpu_selection.use(1, True)
    state.batch_size = 3
    with pytest.raises(RequestError, match="batch size 3 does not split evenly over 2 processes"):
        state.request().validate()
