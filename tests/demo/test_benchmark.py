"""The quality benchmark: a smoke run with tiny settings makes tables and JSON of the right shape
(values are not asserted: a few training steps teach the LoRAs nothing)."""

from __future__ import annotations

import json

import pytest

from craftstudio.demo.assets import demo_model_dir, demo_oracle
from craftstudio.demo.benchmark import ROWS, choose_pairs

MODEL = demo_model_dir()


def test_pairs_default_count_and_validation():
    assert len(choose_pairs()) == 4
    assert choose_pairs(count=1) == (("heart", "neon"),)
    assert choose_pairs(["bolt:mosaic", "bolt:mosaic"]) == (("bolt", "mosaic"),)
    for bad, words in (("heart", "CONTENT:STYLE"), ("star:neon", "held-out shape"), ("heart:dots", "held-out style")):
        with pytest.raises(ValueError, match=words):
            choose_pairs([bad])


@pytest.mark.skipif(MODEL is None or demo_oracle() is None, reason="demo model or oracle not installed")
def test_benchmark_smoke(tmp_path, capsys):
    from craftstudio.demo.__main__ import main

    out = tmp_path / "bench.json"
    sheet = tmp_path / "sheet.png"
    code = main(["benchmark", "--pair", "heart:neon", "--images", "2", "--steps", "2", "--refs", "1",
                 "--lora-steps", "2", "--backbone-steps", "2", "--workdir", str(tmp_path / "work"),
                 "--style-gamma", "0.3", "--json", str(out), "--sheet", str(sheet)])
    assert code == 0
    text = capsys.readouterr().out
    assert "| Method |" in text and "| Backbone | Routing |" in text
    data = json.loads(out.read_text())
    table1, ablation = data["tables"]["table1"], data["tables"]["ablation"]
    assert [r[0] for r in table1] == ["Method", "direct merge", "CRAFT (full)", "CRAFT (full), γ_s = 0.3"]
    assert len(ablation) == 1 + len(ROWS) == 9 and all(len(r) == len(ablation[0]) for r in ablation)
    assert {tuple(r[:3]) for r in ablation[1:]} == {(a, b, c) for a in "✓✗" for b in "✓✗" for c in "✓✗"}
    assert len(data["pairs"]) == 1 and set(data["pairs"][0]["methods"]) == set(data["summary"])
    method = data["pairs"][0]["methods"][data["aliases"]["CRAFT (full)"]]
    assert len(method["predictions"]) == 2
    assert data["pairs"][0]["methods"]["CRAFT (full), γ_s = 0.3"]["predictions"]
    assert len(data["summary"]) == len(ROWS) + 1
    assert {"content_acc", "style_acc", "both_acc", "content_leak", "style_leak"} <= set(method)
    assert set(data["summary"][data["aliases"]["direct merge"]]["both_acc"]) == {"mean", "std"}
    assert sheet.stat().st_size > 0


def test_the_style_weight_goes_into_the_prompt_marker():
    from craftstudio.demo.benchmark import BenchConfig, Concept, methods, prompt_for
    from craftstudio.domain.markers import parse_prompt

    c = Concept("content", "heart", "sks", "flat", (1,))
    s = Concept("style", "neon", "zxq", "star", (2,))
    assert prompt_for(c, s) == "a sks <c> in zxq style <s>"
    parsed = parse_prompt(prompt_for(c, s, 0.25))
    assert (parsed.gamma_content, parsed.gamma_style) == (1.0, 0.25)
    assert [m[0] for m in methods(BenchConfig("m", (("heart", "neon"),)))] == [m[0] for m in methods(
        BenchConfig("m", (("heart", "neon"),), style_gamma=0.25))][:len(ROWS)]
