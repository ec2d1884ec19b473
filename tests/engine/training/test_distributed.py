"""Training on several processes (accelerate's launcher, DDP over gloo on the CPU) trains what one
process trains, and stops and resumes as one process does.

Each launched run starts real processes (about 15 s here, most of it importing torch), so the
module launches three: a LoRA run, and a backbone run cancelled then resumed.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import OutOfMemory, RequestError, UserError
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.engine.training import train, train_here
from craftstudio.engine.training.checkpoint import checkpoint_folder, load_checkpoint
from craftstudio.engine.training.launcher import TrainingProcessesFailed, _result, launch_command, uses_cpu
from tests.engine.training.conftest import backbone_request, lora_request

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread_per_process(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on a shared 2-core machine


def _tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118


def _assert_same_weights(a_path, b_path, atol: float = 1e-4) -> None:
    """The gradient of the global batch is summed in another order: float rounding only. (Without
    the gradient sync, each process training on its half, these runs differ by 0.03 to 0.97.)"""
    a, b = _tensors(a_path), _tensors(b_path)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=atol), key


# A backbone file holds QR([Q_c | Q_s]); where the two bases have come close that QR is ill
# conditioned and turns 1e-6 differences in the bases into up to 5e-4 in Q (measured).
BACKBONE_ATOL = 2e-3


def test_two_processes_train_the_lora_one_process_trains(tmp_path, tiny_sd1, refs):
    one = train_here(lora_request(tiny_sd1, refs, tmp_path / "one.safetensors", steps=3, batch_size=2,
                                  sample_every=3, sample_steps=2))
    events = []
    two = train(lora_request(tiny_sd1, refs, tmp_path / "two.safetensors", steps=3, batch_size=2,
                             sample_every=3, sample_steps=2, num_processes=2), progress=events.append)
    _assert_same_weights(one.out, two.out)
    assert [t["loss"] for t in two.losses] == pytest.approx([t["loss"] for t in one.losses], abs=1e-5)
    assert two.details["processes"] == 2 and two.device == "2 × cpu"
    # The main process reported every step and its sample image; the others said nothing.
    steps = [e.step for e in events if isinstance(e, ProgressEvent) and e.stage == "train" and e.values]
    assert steps == [1, 2, 3]
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert [p.step for p in previews] == [3] and previews[0].image.size == (32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.safetensors", "two.safetensors"]


def test_a_cancelled_two_process_backbone_resumes_to_what_one_process_trains(tmp_path, tiny_sd1, refs):
    whole = train_here(backbone_request(tiny_sd1, refs, tmp_path / "whole.safetensors", steps=4, batch_size=2))
    out = tmp_path / "two.safetensors"
    request = backbone_request(tiny_sd1, refs, out, steps=4, batch_size=2, num_processes=2, checkpoint_every=10)
    token = CancelToken()

    def cancel_at_2(event):
        if getattr(event, "stage", "") == "train" and event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        train(request, progress=cancel_at_2, cancel=token)
    assert not out.exists()
    saved = load_checkpoint(checkpoint_folder(out))
    assert saved is not None and (saved.step, saved.processes) == (2, 2)  # stopped right after step 2
    spare = tmp_path / "spare.safetensors"
    shutil.copytree(checkpoint_folder(out), checkpoint_folder(spare))

    resumed = train(request, resume=True)
    assert resumed.resumed_from == 2 and not checkpoint_folder(out).exists()
    _assert_same_weights(whole.out, out, BACKBONE_ATOL)
    assert [t["loss"] for t in resumed.losses] == pytest.approx([t["loss"] for t in whole.losses], abs=1e-5)

    # Nothing is sharded, so the 2-process checkpoint continues on 1 process just as well.
    said = []
    alone = train_here(backbone_request(tiny_sd1, refs, spare, steps=4, batch_size=2), resume=True,
                       progress=lambda e: said.append(getattr(e, "message", "")))
    assert alone.resumed_from == 2
    assert any("made by 2 processes, continued by 1" in text for text in said)
    _assert_same_weights(whole.out, spare, BACKBONE_ATOL)


def test_the_launcher_runs_accelerate_with_everything_given(tmp_path):
    command = launch_command(tmp_path / "job.json", processes=2, gpus=(1, 3), cpu=False)
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "2" and "--multi_gpu" in command
    assert command[command.index("--gpu_ids") + 1] == "1,3"
    assert command[-3:] == ["-m", "craftstudio.engine.training.process_entry", str(tmp_path / "job.json")]
    single = launch_command(tmp_path / "job.json", processes=1, gpus=(1,), cpu=False)
    assert "--multi_gpu" not in single and single[single.index("--gpu_ids") + 1] == "1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")
def test_gpus_that_are_not_there_are_refused_in_one_sentence():
    with pytest.raises(RequestError, match="No CUDA GPU is available here"):
        uses_cpu("cuda", 2, ())
    with pytest.raises(RequestError, match="No CUDA GPU"):
        uses_cpu("auto", 2, (0, 1))
    assert uses_cpu("auto", 2, ()) and uses_cpu("cpu", 2, ())


def test_a_user_error_on_any_process_is_the_message_shown(tmp_path):
    assert _result({"event": "result", "result": {"x": 1}}, tmp_path, 0) == {"x": 1}
    with pytest.raises(Cancelled):
        _result({"event": "cancelled"}, tmp_path, 0)
    # The main process only saw its peer vanish; the peer ran out of memory: that is what to say.
    (tmp_path / "error-1.json").write_text(json.dumps(
        {"type": "OutOfMemory", "message": "CUDA ran out of memory while training the LoRA: lower ...", "user": True}))
    lost = {"event": "error", "type": "RuntimeError", "message": "Connection closed by peer", "user": False}
    with pytest.raises(OutOfMemory, match="CUDA ran out of memory"):
        _result(lost, tmp_path, 1)
    (tmp_path / "error-1.json").unlink()
    with pytest.raises(TrainingProcessesFailed, match=r"stopped unexpectedly \(Connection closed by peer\)") as info:
        _result(lost, tmp_path, 1)
    assert isinstance(info.value, UserError) and "processes.log" in str(info.value)
    with pytest.raises(TrainingProcessesFailed, match="exit status -9"):
        _result(None, tmp_path, -9)
