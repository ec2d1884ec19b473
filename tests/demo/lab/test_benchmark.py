"""The quality benchmark: a smoke run with tiny settings makes tables and JSON of the right shape
(values are not asserted: a few training steps teach the LoRAs nothing)."""

from __future__ import annotations

import json

import pytest

from craftstudio.demo.assets import demo_model_dir, demo_oracle
from craftstudio.demo.lab.benchmark import ROWS, choose_pairs

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
    from craftstudio.demo.lab.commands import main

    out = tmp_path / "bench.json"
    sheet = tmp_path / "sheet.png"
    code = main(["benchmark", "--pair", "heart:neon", "--images", "2", "--steps", "2", "--refs", "2", "--ref-classes", "2",
                 "--lora-steps", "2", "--backbone-steps", "2", "--workdir", str(tmp_path / "work"),
                 "--style-gamma", "0.3", "--curves", "guidance-interval", "--backbone-keep", "2", "--keep-weight", "10",
                 "--json", str(out), "--sheet", str(sheet)])
    assert code == 0
    text = capsys.readouterr().out
    assert "| Method |" in text and "| Backbone | Routing |" in text
    assert "follow the guidance-interval curves" in text
    data = json.loads(out.read_text())
    table1, ablation = data["tables"]["table1"], data["tables"]["ablation"]
    assert [r[0] for r in table1] == ["Method", "direct merge", "CRAFT (full)", "CRAFT (full), γ_s = 0.3",
                                      "CRAFT without backbone, γ_s = 0.3"]
    assert len(ablation) == 1 + len(ROWS) == 9 and all(len(r) == len(ablation[0]) for r in ablation)
    assert {tuple(r[:3]) for r in ablation[1:]} == {(a, b, c) for a in "✓✗" for b in "✓✗" for c in "✓✗"}
    per_pair = data["tables"]["per_pair"]
    assert per_pair[0] == ["Method", "heart:neon"] and len(per_pair) == 1 + len(data["summary"])
    assert {"direct merge", "CRAFT (full)", "CRAFT (full), γ_s = 0.3"} <= {r[0] for r in per_pair[1:]}
    assert "Per pair: combination" in text
    assert len(data["pairs"]) == 1 and set(data["pairs"][0]["methods"]) == set(data["summary"])
    method = data["pairs"][0]["methods"][data["aliases"]["CRAFT (full)"]]
    assert len(method["predictions"]) == 2
    assert data["pairs"][0]["methods"]["CRAFT (full), γ_s = 0.3"]["predictions"]
    assert len(data["summary"]) == len(ROWS) + 2
    assert {"content_acc", "style_acc", "both_acc", "content_leak", "style_leak"} <= set(method)
    assert set(data["summary"][data["aliases"]["direct merge"]]["both_acc"]) == {"mean", "std"}
    assert sheet.stat().st_size > 0
    assert data["config"]["backbone_keep"] == 2 and len(list((tmp_path / "work" / "refs" / "keep").glob("*.png"))) == 2


def test_the_style_weight_goes_into_the_prompt_marker():
    from craftstudio.demo.lab.benchmark import BenchConfig, Concept, methods, prompt_for
    from craftstudio.domain.markers import parse_prompt

    c = Concept("content", "heart", "sks", "flat", (1,))
    s = Concept("style", "neon", "zxq", "star", (2,))
    assert prompt_for(c, s) == "a sks <c> in zxq style <s>"
    parsed = parse_prompt(prompt_for(c, s, 0.25))
    assert (parsed.gamma_content, parsed.gamma_style) == (1.0, 0.25)
    assert [m[0] for m in methods(BenchConfig("m", (("heart", "neon"),)))] == [m[0] for m in methods(
        BenchConfig("m", (("heart", "neon"),), style_gamma=0.25))][:len(ROWS)]


def test_references_cycle_through_their_classes_and_captions_name_them():
    from craftstudio.demo.lab.benchmark import make_concepts
    from craftstudio.demo.world import SPLIT

    one = make_concepts([("heart", "neon")], refs=4, seed=0)
    assert all(len(set(c.others)) == 1 for c in one.values())
    three = make_concepts([("heart", "neon")], refs=6, seed=0, ref_classes=3)
    content, style = three[("content", "heart")], three[("style", "neon")]
    assert content.others[:3] == content.others[3:] and len(set(content.others)) == 3
    assert set(content.others) <= set(SPLIT.train_styles) and set(style.others) <= set(SPLIT.train_shapes)
    assert style.captions()[1] == f"a {style.others[1]} in {{trigger}} style"
    assert content.captions()[2] == f"a {{trigger}} in {content.others[2]} style"
    assert len(content.images()) == 6
    plain = make_concepts([("heart", "neon")], refs=2, seed=0, plain_content_captions=True)
    assert plain[("content", "heart")].captions() == ["a {trigger}", "a {trigger}"]
    assert plain[("style", "neon")].captions()[0].startswith("a ")  # style captions still name the shape


def _fake_result(pair: tuple[str, str], both: float, lora_steps: int = 300, lora_workers: int = 1) -> dict:
    from craftstudio.demo.lab.benchmark import METRICS, summarize

    names = ["m1", "m2"]
    entry = {"content": pair[0], "style": pair[1],
             "methods": {n: {m: both * (i + 1) for m in METRICS} for i, n in enumerate(names)}}
    return {"config": {"pairs": [list(pair)], "lora_steps": lora_steps, "workdir": f"/w/{pair[0]}", "images": 2,
                       "refs": 1, "lora_workers": lora_workers},
            "pairs": [entry], "summary": summarize([entry], names), "aliases": {"direct merge": "m1",
                                                                                 "CRAFT (full)": "m2"},
            "rows": [], "training": {"backbone": {"seconds": 1.0}},
            "timing": {"training_s": 1.0, "generation_s": 2.0, "total_s": 3.0, "seconds_per_image": 0.5}}


def test_merging_runs_of_different_pairs_recomputes_the_summary():
    from craftstudio.demo.lab.benchmark import merge

    # How many LoRAs trained at once does not change the numbers, so such runs merge.
    merged = merge([_fake_result(("heart", "neon"), 0.2), _fake_result(("bolt", "mosaic"), 0.6, lora_workers=8)])
    assert merged["config"]["pairs"] == [["heart", "neon"], ["bolt", "mosaic"]]
    assert merged["summary"]["m2"]["both_acc"]["mean"] == pytest.approx(0.8)
    assert merged["summary"]["m1"]["both_acc"]["std"] == pytest.approx(0.2)
    assert merged["timing"]["total_s"] == 6.0
    with pytest.raises(ValueError, match="different settings"):
        merge([_fake_result(("heart", "neon"), 0.2), _fake_result(("bolt", "mosaic"), 0.6, lora_steps=10)])
    with pytest.raises(ValueError, match="share pairs"):
        merge([_fake_result(("heart", "neon"), 0.2), _fake_result(("heart", "neon"), 0.6)])


def test_benchmark_merge_command_prints_one_table(tmp_path, capsys):
    from craftstudio.demo.lab.commands import main

    files = []
    for pair, both in ((("heart", "neon"), 0.2), (("bolt", "mosaic"), 0.6)):
        files.append(tmp_path / f"{pair[0]}.json")
        files[-1].write_text(json.dumps(_fake_result(pair, both)))
    assert main(["benchmark-merge", *map(str, files), "--json", str(tmp_path / "all.json")]) == 0
    assert "Pairs: heart:neon, bolt:mosaic" in capsys.readouterr().out
    tables = json.loads((tmp_path / "all.json").read_text())["tables"]
    assert tables["table1"][2][3] == "0.800 ± 0.400"
    assert tables["per_pair"] == [["Method", "heart:neon", "bolt:mosaic"],
                                  ["direct merge", "0.20 (0.20 / 0.20)", "0.60 (0.60 / 0.60)"],
                                  ["CRAFT (full)", "0.40 (0.40 / 0.40)", "1.20 (1.20 / 1.20)"]]
    (tmp_path / "bad.json").write_text("{")
    assert main(["benchmark-merge", str(tmp_path / "bad.json")]) == 2


def test_benchmark_refuses_an_unknown_curve_preset_before_training(tmp_path, capsys):
    from craftstudio.demo.lab.commands import main

    assert main(["benchmark", "--pair", "heart:neon", "--curves", "wobbly", "--workdir", str(tmp_path / "w")]) == 2
    assert "Unknown curve preset 'wobbly': choose one of" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
