"""`craftstudio train lora|backbone --resume` with damaged or implausible checkpoints: refused in one
line before the model loads, nothing written at --out."""

from __future__ import annotations

import json

import pytest
import torch

from tests.robustness.conftest import assert_one_line, run_cli, write_checkpoint

GOOD = {"format": "craft-train-checkpoint", "step": 3, "request": {},
        "optimizer": {"scalars": {}, "param_groups": []}, "losses": [], "scaler": {}}

CHECKPOINT_FAULTS = {
    "step-huge": dict(document={**GOOD, "step": 10**9}),
    "step-past-run": dict(document={**GOOD, "step": 11}),
    "step-negative": dict(document={**GOOD, "step": -1}),
    "step-text": dict(document={**GOOD, "step": "3"}),
    "step-float": dict(document={**GOOD, "step": 2.5}),
    "step-bool": dict(document={**GOOD, "step": True}),
    "step-missing": dict(document={k: v for k, v in GOOD.items() if k != "step"}),
    "param-nan": dict(tensors={"param.a": torch.full((2, 2), float("nan"))}),
    "param-inf": dict(tensors={"param.a": torch.tensor([1.0, float("inf")])}),
    "optim-nan": dict(tensors={"param.a": torch.zeros(2), "optim.0.exp_avg": torch.tensor([float("nan"), 0.0])}),
    "wrong-format": dict(document={**GOOD, "format": "something-else"}),
    "document-list": dict(document=[1, 2]),
    "losses-text": dict(document={**GOOD, "losses": "low"}),
    "request-list": dict(document={**GOOD, "request": []}),
    "optimizer-missing": dict(document={k: v for k, v in GOOD.items() if k != "optimizer"}),
    "not-safetensors": dict(raw=b"\x80\x04 a pickle would be here"),
    "empty": dict(raw=b""),
}


@pytest.fixture
def lora_args(tiny_sd1, tmp_path) -> list[str]:
    images = tmp_path / "images"
    images.mkdir()
    return ["train", "lora", "--role", "content", "--model", str(tiny_sd1), "--images", str(images),
            "--trigger", "sks square", "--steps", "10", "--device", "cpu", "--out", str(tmp_path / "out.safetensors"),
            "--resume"]


@pytest.fixture
def backbone_args(tiny_sd1, tmp_path) -> list[str]:
    for name in ("content", "style"):
        (tmp_path / name).mkdir()
    return ["train", "backbone", "--model", str(tiny_sd1), "--content-dir", str(tmp_path / "content"),
            "--style-dir", str(tmp_path / "style"), "--steps", "10", "--device", "cpu",
            "--out", str(tmp_path / "out.safetensors"), "--resume"]


@pytest.mark.parametrize("kind", ["lora", "backbone"])
@pytest.mark.parametrize("fault", CHECKPOINT_FAULTS)
def test_resume_refuses_bad_checkpoints(capsys, request, tmp_path, unchanged, kind, fault):
    argv = request.getfixturevalue(f"{kind}_args")
    checkpoint = write_checkpoint(tmp_path / "out.safetensors.checkpoints", **CHECKPOINT_FAULTS[fault])
    rc, _, err = run_cli(capsys, argv)
    assert_one_line(rc, err, str(checkpoint))
    assert not (tmp_path / "out.safetensors").exists()
    unchanged()


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--lr", "nan", "Learning rate"), ("--lr", "inf", "Learning rate"), ("--lr", "-1", "Learning rate"),
    ("--alpha", "nan", "alpha"), ("--alpha", "inf", "alpha"), ("--steps", "0", "Training steps"),
])
def test_training_numbers_are_finite_and_in_range(capsys, lora_args, tmp_path, unchanged, option, value, words):
    rc, _, err = run_cli(capsys, [*lora_args, option, value])
    assert_one_line(rc, err, words)
    assert not (tmp_path / "out.safetensors").exists()
    unchanged()


def test_a_sound_checkpoint_passes_the_early_check(tmp_path):
    from craftstudio.engine.training.checkpoint import load_checkpoint

    folder = tmp_path / "c"
    write_checkpoint(folder, document=GOOD)
    assert load_checkpoint(folder, 10).step == 3
    assert json.loads(json.dumps(GOOD))["step"] == 3
