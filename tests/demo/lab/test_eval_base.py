"""`python -m craftstudio.demo eval-base`: accuracy and speed of a demo base model, on W0 or on a
backbone's W_init; a backbone made for another model is refused in one sentence."""

from __future__ import annotations

import json

import pytest
import torch

from craftstudio.demo.assets import demo_model_dir, demo_oracle
from craftstudio.demo.lab.commands import main
from craftstudio.domain.family import Family
from craftstudio.engine.backbone import save_backbone
from craftstudio.engine.fingerprint import model_fingerprint
from craftstudio.engine.loader import load_model
from craftstudio.engine.training.rank_ft import ProjectionBases, layer_specs

MODEL = demo_model_dir()
pytestmark = pytest.mark.skipif(MODEL is None or demo_oracle() is None, reason="demo model or oracle not installed")


def _backbone(model, out):
    unet = load_model(model, torch.device("cpu"), torch.float32).unet
    specs = layer_specs(unet, 2, 1)
    bases = ProjectionBases(specs, 0, torch.device("cpu"), init="minor",
                            weights={s.name: unet.get_submodule(s.name).weight for s in specs})
    save_backbone(out, bases.merged(), fingerprint=model_fingerprint(model), family=Family.SD1,
                  base_name=model.name, r_max=2, r_min=1)
    return out


def _report(text: str) -> dict:
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def test_eval_base_on_w0_and_on_a_backbone(tmp_path, capsys):
    args = ["eval-base", "--model", str(MODEL), "--images", "2", "--steps", "2", "--threads", "1"]
    assert main(args) == 0
    plain = capsys.readouterr().out
    assert "oracle accuracy: content" in plain and _report(plain)["backbone"] is None
    backbone = _backbone(MODEL, tmp_path / "demo-backbone.safetensors")
    assert main([*args, "--backbone", str(backbone)]) == 0
    report = _report(capsys.readouterr().out)
    assert report["backbone"] == str(backbone) and report["images"] == 2


def test_eval_base_refuses_a_backbone_for_another_model(tmp_path, tiny_sd1, capsys):
    backbone = _backbone(tiny_sd1, tmp_path / "tiny-backbone.safetensors")
    assert main(["eval-base", "--model", str(MODEL), "--images", "1", "--steps", "2", "--backbone",
                 str(backbone)]) == 2
    err = capsys.readouterr().err
    assert "error: Backbone tiny-backbone.safetensors was trained for the base model" in err
    assert "Traceback" not in err
