"""`asset_training --measure-only`: re-measure shipped LoRAs with another style weight or curve
preset and record it, keeping the training record; refuse a folder with nothing to measure."""

from __future__ import annotations

import json
import shutil

import pytest

from craftstudio.demo import assets
from craftstudio.demo.lab.asset_training import main

pytestmark = pytest.mark.skipif(assets.demo_lora("content") is None or assets.demo_model_dir() is None,
                                reason="the demo model and LoRAs are not installed")


def test_measure_only_records_the_prompt_curves_and_numbers(tmp_path, capsys):
    demo = assets.demo_lora("content").parent
    for name in ("content-lora.safetensors", "style-lora.safetensors", "demo-assets.json", "backbone.safetensors"):
        if (demo / name).is_file():
            shutil.copy(demo / name, tmp_path / name)
    before = json.loads((tmp_path / "demo-assets.json").read_text())
    assert main(["--out", str(tmp_path), "--measure-only", "--style-gamma", "0.3", "--curves", "paper",
                 "--check-images", "1"]) == 0
    after = json.loads((tmp_path / "demo-assets.json").read_text())
    assert after["prompt"] == "a sks <c> in ohwx style <s:0.3>" and after["curves"] == "paper"
    assert after["measured_on"] == "cpu" and after["lora"] == before["lora"] and after["refs"] == before["refs"]
    assert set(after["measured"]) == {"craft, a sks <c> in ohwx style <s:0.3>", "craft, a sks <c> in ohwx style <s>",
                                      "direct merge"}
    assert all(set(v) == {"content", "style", "both"} for v in after["measured"].values())
    assert str(tmp_path / "demo-assets.json") in capsys.readouterr().out


def test_measure_only_without_a_record_says_to_train_first(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--measure-only"]) == 2
    assert "train the demo assets first" in capsys.readouterr().err


def test_measure_only_names_a_missing_backbone(tmp_path, capsys):
    demo = assets.demo_lora("content").parent
    for name in ("content-lora.safetensors", "style-lora.safetensors"):
        shutil.copy(demo / name, tmp_path / name)
    record = json.loads((demo / "demo-assets.json").read_text())
    record["backbone"] = {"steps": 1}
    (tmp_path / "demo-assets.json").write_text(json.dumps(record))
    assert main(["--out", str(tmp_path), "--measure-only", "--check-images", "1"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "backbone.safetensors") in err and "train the demo assets again" in err
