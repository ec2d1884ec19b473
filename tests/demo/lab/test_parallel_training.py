"""LoRAs trained in worker processes are the files the calling process would have trained."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from craftstudio.demo.lab.parallel_training import train_many, watch_parent
from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.training import LoraTrainRequest
from tests.engine.training.conftest import write_image


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    for i in range(2):
        write_image(folder / f"{i}.png", i, size=(32, 32))
    return folder


def _requests(model, pictures, out_dir):
    common = dict(model=str(model), images=(str(pictures),), steps=2, rank=2, batch_size=1, resolution=32,
                  device="cpu", learning_rate=1e-2, checkpoint_every=0, gradient_checkpointing=False)
    return {
        "content": LoraTrainRequest(role="content", trigger="sks", out=str(out_dir / "c.safetensors"), seed=1,
                                    **common),
        "style": LoraTrainRequest(role="style", trigger="ohwx", out=str(out_dir / "s.safetensors"), seed=2, **common),
    }


def test_workers_train_the_same_files_as_the_calling_process(tiny_sd1, pictures, tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    lines = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same reduction order, so the same bits
    try:
        serial = train_many(_requests(tiny_sd1, pictures, here), workers=1)
    finally:
        torch.set_num_threads(threads)
    parallel = train_many(_requests(tiny_sd1, pictures, there), workers=2, say=lines.append)
    assert list(parallel) == ["content", "style"] and set(serial) == set(parallel)
    assert all(report["layers"] and report["seconds"] > 0 for report in parallel.values())
    assert len(lines) == 2 and all("trained" in line for line in lines)
    for name in ("c", "s"):
        a, b = load_file(here / f"{name}.safetensors"), load_file(there / f"{name}.safetensors")
        assert a.keys() == b.keys()
        assert all((a[k] == b[k]).all() for k in a)


def test_a_failing_worker_raises_its_error(tiny_sd1, pictures, tmp_path):
    requests = _requests(tiny_sd1, pictures, tmp_path)
    requests["style"] = dataclasses.replace(requests["style"], images=(str(tmp_path / "missing"),))
    with pytest.raises(Exception, match="missing"):
        train_many(requests, workers=2)


def test_a_request_must_come_after_what_it_needs(tiny_sd1, pictures, tmp_path):
    requests = _requests(tiny_sd1, pictures, tmp_path)
    with pytest.raises(ValueError, match="'content' needs 'style', which is not listed before it"):
        train_many(requests, after={"content": ("style",)})
    with pytest.raises(ValueError, match="needs 'backbone'"):
        train_many(requests, after={"style": ("backbone",)})


def test_a_worker_cancels_its_training_once_its_parent_is_gone():
    parents = iter([100, 100, 1])  # re-parented to init on the third look: the benchmark was killed
    pauses = []
    cancel = CancelToken()
    watch_parent(cancel, 100, ppid=lambda: next(parents), pause=pauses.append)
    assert cancel.cancelled and len(pauses) == 2


def test_the_parent_watch_ends_when_the_training_is_cancelled_otherwise():
    cancel = CancelToken()
    looks = []

    def ppid():
        looks.append(1)
        cancel.cancel()  # cancelled by someone else while the parent is still there
        return 100

    watch_parent(cancel, 100, ppid=ppid, pause=lambda _s: None)
    assert cancel.cancelled and len(looks) == 1


def test_reuse_keeps_only_files_trained_from_the_same_request(tiny_sd1, pictures, tmp_path):
    """`reuse`: a LoRA already trained from the very request is kept (its bytes untouched, no
    training); a file from other settings, or none, is trained; a request for the model's own
    resolution (0) never matches, since the file records the resolution the trainer resolved."""
    from craftstudio.demo.lab.parallel_training import trained_before

    first = {key: dataclasses.replace(request, overwrite=True)  # as the benchmark asks
             for key, request in _requests(tiny_sd1, pictures, tmp_path).items()}
    train_many(first, workers=1)
    before = {name: (tmp_path / f"{name}.safetensors").read_bytes() for name in ("c", "s")}
    again = dict(first, style=dataclasses.replace(first["style"], steps=3))  # the style LoRA's settings changed
    lines = []
    reports = train_many(again, workers=2, reuse=True, say=lines.append)
    assert reports["content"] == {"seconds": 0.0, "final_loss": None, "layers": None, "reused": True}
    assert reports["style"]["seconds"] > 0 and "reused" not in reports["style"]
    assert (tmp_path / "c.safetensors").read_bytes() == before["c"]
    assert (tmp_path / "s.safetensors").read_bytes() != before["s"]
    assert any("kept" in line and "c.safetensors" in line for line in lines)
    assert trained_before(again["content"]) is not None
    assert trained_before(dataclasses.replace(again["content"], resolution=0)) is None  # 0 is not what was recorded
    assert trained_before(dataclasses.replace(again["content"], seed=9)) is None
    assert trained_before(dataclasses.replace(again["content"], out=str(tmp_path / "none.safetensors"))) is None
    assert trained_before(dataclasses.replace(again["content"], backbone=str(tmp_path / "b.safetensors"))) is None
    (tmp_path / "c.safetensors").write_bytes(b"\0" * 10)  # a broken file is trained again, not trusted
    assert trained_before(again["content"]) is None


def test_reuse_keeps_a_file_only_when_what_it_is_made_from_was_kept(tiny_sd1, pictures, tmp_path):
    """`reuse` covers the backbone, a LoRA on it and a ZipLoRA merge as well. Once the backbone is
    trained again (its settings changed), the LoRA on it is trained again although its own request
    is the same, while the merge of the two W0 LoRAs, kept, is kept. Asking for the compiled step
    (`fast`) is how a file is trained, not what, so it does not stop a reuse."""
    from craftstudio.demo.lab.parallel_training import trained_before
    from craftstudio.domain.merging import ZipLoraRequest
    from craftstudio.domain.training import BackboneTrainRequest

    loras = {key: dataclasses.replace(request, overwrite=True)
             for key, request in _requests(tiny_sd1, pictures, tmp_path).items()}
    backbone = str(tmp_path / "bb.safetensors")
    requests = {
        "backbone": BackboneTrainRequest(model=str(tiny_sd1), content_dir=str(pictures), style_dir=str(pictures),
                                         out=backbone, r_max=4, r_min=2, steps=2, batch_size=1, resolution=32,
                                         device="cpu", checkpoint_every=0, overwrite=True),
        **loras,
        "on-backbone": dataclasses.replace(loras["content"], backbone=backbone, out=str(tmp_path / "cb.safetensors")),
        "zip": ZipLoraRequest(model=str(tiny_sd1), content_lora=loras["content"].out, style_lora=loras["style"].out,
                              content_prompt="a sks", style_prompt="in ohwx style", out=str(tmp_path / "z.safetensors"),
                              content_images=(str(pictures),), style_images=(str(pictures),), steps=2,
                              resolution=32, device="cpu", overwrite=True),
    }
    after = {"on-backbone": ("backbone",), "zip": ("content", "style")}
    train_many(requests, after=after)
    kept = train_many(requests, after=after, reuse=True, say=lambda _line: None)
    assert all(report.get("reused") for report in kept.values())

    lora_bytes = (tmp_path / "cb.safetensors").read_bytes()
    changed = dict(requests, backbone=dataclasses.replace(requests["backbone"], steps=3))
    again = train_many(changed, after=after, reuse=True, say=lambda _line: None)
    assert {key for key, report in again.items() if not report.get("reused")} == {"backbone", "on-backbone"}
    assert trained_before(changed["on-backbone"]) is not None  # its own request alone would have let it be kept
    assert (tmp_path / "cb.safetensors").read_bytes() != lora_bytes  # trained again, on the new backbone
    assert trained_before(dataclasses.replace(requests["content"], fast=True)) is not None
    assert trained_before(dataclasses.replace(requests["zip"], steps=3)) is None
    assert trained_before(dataclasses.replace(changed["backbone"], resolution=0)) is None
