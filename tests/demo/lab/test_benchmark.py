"""The quality benchmark: a smoke run with tiny settings makes tables and JSON of the right shape
(values are not asserted: a few training steps teach the LoRAs nothing)."""

from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import pytest

from craftstudio.demo.assets import demo_model_dir, demo_oracle
from craftstudio.demo.lab.benchmark import METRICS, ROWS, choose_pairs, row_name
from craftstudio.demo.lab.benchmark_peers import BASE, peer_request
from craftstudio.demo.lab.benchmark_report import COST

MODEL = demo_model_dir()


def test_pairs_default_count_and_validation():
    assert len(choose_pairs()) == 4
    assert choose_pairs(count=1) == (("heart", "neon"),)
    assert choose_pairs(["bolt:mosaic", "bolt:mosaic"]) == (("bolt", "mosaic"),)
    for bad, words in (("heart", "CONTENT:STYLE"), ("star:neon", "held-out shape"), ("heart:dots", "held-out style")):
        with pytest.raises(ValueError, match=words):
            choose_pairs([bad])


PEER_ROWS = ["K-LoRA", "LoRA Switch", "LoRA Composite", "ZipLoRA", "B-LoRA"]
# --peer-style-gamma 0.5: the direct merge and every peer but ZipLoRA again, the style LoRA at 0.5
REWEIGHTED_ROWS = [f"{name}, style weight 0.5" for name in ("direct merge", "K-LoRA", "LoRA Switch",
                                                            "LoRA Composite", "B-LoRA")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One tiny run of the command (every peer, 2 images, 2 steps), shared by the tests below; the
    live result (with its images) is kept beside the printed text and the JSON."""
    if MODEL is None or demo_oracle() is None:
        pytest.skip("demo model or oracle not installed")
    from craftstudio.demo.lab import benchmark
    from craftstudio.demo.lab.commands import main

    tmp = tmp_path_factory.mktemp("bench")
    real, live = benchmark.run_benchmark, {}

    def keep(config, **kwargs):
        live["result"] = real(config, **kwargs)
        return live["result"]

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(benchmark, "run_benchmark", keep)
        code = main(["benchmark", "--pair", "heart:neon", "--images", "2", "--steps", "2", "--refs", "2", "--threads", "1",
                     "--ref-classes", "2", "--lora-steps", "2", "--backbone-steps", "2", "--ziplora-steps", "2",
                     "--workdir", str(tmp / "work"), "--style-gamma", "0.3", "--auto-style-gamma",
                     "--curves", "guidance-interval", "--peer-style-gamma", "0.5",
                     "--backbone-keep", "2", "--keep-weight", "10", "--json", str(tmp / "bench.json"),
                     "--sheet", str(tmp / "sheet.png")])
    return SimpleNamespace(code=code, text=printed.getvalue(), data=json.loads((tmp / "bench.json").read_text()),
                           live=live["result"], tmp=tmp)


def test_benchmark_smoke(smoke):
    assert smoke.code == 0
    text, data, tmp_path = smoke.text, smoke.data, smoke.tmp
    assert "| Method |" in text and "| Backbone | Routing |" in text
    assert "follow the guidance-interval curves" in text
    table1, ablation = data["tables"]["table1"], data["tables"]["ablation"]
    assert [r[0] for r in table1] == ["Method", BASE, "direct merge", *PEER_ROWS, *REWEIGHTED_ROWS, "CRAFT (full)",
                                      "CRAFT (full), γ_s = 0.3", "CRAFT without backbone, γ_s = 0.3",
                                      "CRAFT (full), γ_s = γ*", "CRAFT without backbone, γ_s = γ*"]
    assert len(ablation) == 1 + len(ROWS) == 9 and all(len(r) == len(ablation[0]) for r in ablation)
    assert {tuple(r[:3]) for r in ablation[1:]} == {(a, b, c) for a in "✓✗" for b in "✓✗" for c in "✓✗"}
    per_pair = data["tables"]["per_pair"]
    assert per_pair[0] == ["Method", "heart:neon"] and len(per_pair) == 1 + len(data["summary"])
    assert {"direct merge", "CRAFT (full)", "CRAFT (full), γ_s = 0.3", BASE, *PEER_ROWS} <= {r[0] for r in per_pair[1:]}
    assert "Per pair: combination" in text
    assert len(data["pairs"]) == 1 and set(data["pairs"][0]["methods"]) == set(data["summary"])
    method = data["pairs"][0]["methods"][data["aliases"]["CRAFT (full)"]]
    assert len(method["predictions"]) == 2
    assert data["pairs"][0]["methods"]["CRAFT (full), γ_s = 0.3"]["predictions"]
    assert len(data["summary"]) == 1 + len(ROWS) + 4 + len(PEER_ROWS) + len(REWEIGHTED_ROWS)  # + γ_s 0.3, γ*
    assert {"content_acc", "style_acc", "both_acc", "content_leak", "style_leak"} <= set(method)
    assert set(data["summary"][data["aliases"]["direct merge"]]["both_acc"]) == {"mean", "std"}
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert data["config"]["backbone_keep"] == 2 and len(list((tmp_path / "work" / "refs" / "keep").glob("*.png"))) == 2


def test_the_peers_are_scored_like_every_method_on_the_direct_merges_loras(smoke):
    data = smoke.data
    entry = data["pairs"][0]
    for name in (BASE, *PEER_ROWS):
        assert set(METRICS) <= set(entry["methods"][name]) and len(entry["methods"][name]["predictions"]) == 2
        assert set(data["summary"][name]) == set(METRICS)
    assert {name: info["arxiv"] for name, info in data["peers"].items()} == {
        "K-LoRA": "2502.18461", "LoRA Switch": "2402.16843", "LoRA Composite": "2402.16843",
        "ZipLoRA": "2311.13600", "B-LoRA": "2403.14572"}
    setup = entry["setup"]
    direct = setup[data["aliases"]["direct merge"]]
    assert (direct["content_lora"], direct["style_lora"]) == ("content-heart-w0-all.safetensors",
                                                              "style-neon-w0-all.safetensors")
    for name, mode in (("K-LoRA", "k-lora"), ("LoRA Switch", "switch"), ("LoRA Composite", "composite")):
        assert setup[name]["mode"] == mode and setup[name]["prompt"] == entry["plain_prompt"] == "a sks in ohwx style"
        assert (setup[name]["content_lora"], setup[name]["style_lora"]) == (direct["content_lora"], direct["style_lora"])
        assert not any(setup[name][k] for k in ("backbone", "routing", "asymmetric_cfg", "gates", "curves"))
    assert setup["ZipLoRA"]["mode"] == "direct" and setup["ZipLoRA"]["style_lora"] is None
    assert setup["ZipLoRA"]["content_lora"] == "ziplora-heart-neon.safetensors"
    blora = setup["B-LoRA"]
    assert (blora["routing_preset"], blora["routing"], blora["backbone"], blora["asymmetric_cfg"], blora["gates"]) == (
        "b-lora", True, False, False, False)
    assert setup[BASE]["content_lora"] is None and setup[BASE]["style_lora"] is None


def test_b_lora_files_hold_only_their_block_and_ziplora_stacks_both_ranks(smoke):
    from safetensors import safe_open

    work = smoke.tmp / "work"

    def shapes(name):
        with safe_open(work / f"{name}.safetensors", "pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118

    for name, block in (("content-heart-w0-blora", "up_blocks.1.attentions.0."),
                        ("style-neon-w0-blora", "up_blocks.1.attentions.1.")):
        keys = shapes(name)
        assert keys and all(block in key for key in keys)
    merged, content = shapes("ziplora-heart-neon"), shapes("content-heart-w0-all")
    assert set(merged) == set(content)  # unrouted LoRAs: both touch every layer
    down = next(k for k in merged if k.endswith("lora_A.weight"))
    assert merged[down][0] == 2 * content[down][0]  # rank r_c + r_s


def test_peer_style_gamma_reruns_the_peers_with_only_the_style_weight_changed(smoke):
    entry = smoke.data["pairs"][0]
    setup, direct = entry["setup"], entry["setup"][smoke.data["aliases"]["direct merge"]]
    for label, name in zip(["direct merge", "K-LoRA", "LoRA Switch", "LoRA Composite", "B-LoRA"], REWEIGHTED_ROWS,
                           strict=True):
        plain = direct if label == "direct merge" else setup[label]
        assert (plain["content_weight"], plain["style_weight"]) == (1.0, 1.0)
        assert (setup[name]["content_weight"], setup[name]["style_weight"]) == (1.0, 0.5)
        assert {k: v for k, v in setup[name].items() if k != "style_weight"} == {
            k: v for k, v in plain.items() if k != "style_weight"}
        assert len(entry["methods"][name]["predictions"]) == 2
    assert not any(name.startswith("ZipLoRA, style weight") for name in smoke.data["summary"])
    with pytest.raises(ValueError, match="no separate style weight"):
        peer_request("ziplora", {"model": "m", "prompt": "p"}, "z.safetensors", None, style_weight=0.5)


def test_the_base_model_and_direct_merge_differ_and_direct_is_the_all_off_row(smoke):
    import numpy as np

    from craftstudio.demo.lab.benchmark import DIRECT

    samples, aliases = smoke.live["_samples"], smoke.live["aliases"]
    assert aliases[DIRECT] == row_name(ROWS[0])  # one generation, reported under both names
    base, direct = ([np.asarray(im) for im in samples[(0, name)]] for name in (BASE, aliases[DIRECT]))
    assert any((a != b).any() for a, b in zip(base, direct, strict=True))


def test_every_method_has_a_cost_relative_to_the_base_model(smoke):
    data, text = smoke.data, smoke.text
    for table in (data["tables"]["table1"], data["tables"]["ablation"]):
        assert table[0][-1] == COST
        assert all(float(row[-1]) > 0 for row in table[1:])
    assert data["tables"]["table1"][1][0] == BASE and data["tables"]["table1"][1][-1] == "1.00"
    assert set(data["cost"]) == set(data["summary"]) and data["cost"][BASE]["relative"] == 1.0
    entry = data["pairs"][0]["methods"]
    for name, cost in data["cost"].items():
        assert cost["seconds_per_step"] == entry[name]["seconds_per_step"] > 0
        assert cost["relative"] == pytest.approx(entry[name]["seconds_per_step"] / entry[BASE]["seconds_per_step"])
        assert entry[name]["seconds_per_image"] == pytest.approx(2 * entry[name]["seconds_per_step"])
    assert f"{COST}: seconds per image and sampler step" in text


def test_the_ziplora_merge_time_is_reported_apart(smoke):
    data = smoke.data
    merge = data["ziplora_merge"]
    assert (merge["merges"], merge["steps"]) == (1, 2) and merge["seconds_mean"] > 0
    assert data["pairs"][0]["ziplora_merge"]["seconds"] == merge["seconds_mean"]
    assert data["training"]["ziplora:heart:neon"]["seconds"] == merge["seconds_mean"]
    assert f"ZipLoRA's merge (2 steps, once per pair and seed) took {merge['seconds_mean']:.1f} s" in smoke.text
    assert "not in its cost column" in smoke.text


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


def _fake_result(pair: tuple[str, str], both: float, lora_steps: int = 300, lora_workers: int = 1, **how) -> dict:
    from craftstudio.demo.lab.benchmark import METRICS, summarize

    names = ["m1", "m2"]
    entry = {"content": pair[0], "style": pair[1],
             "methods": {n: {m: both * (i + 1) for m in METRICS} for i, n in enumerate(names)}}
    return {"config": {"pairs": [list(pair)], "lora_steps": lora_steps, "workdir": f"/w/{pair[0]}", "images": 2,
                       "refs": 1, "lora_workers": lora_workers, **how},
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
    # Nor do resuming, generating pairs side by side, the thread count or the compiled training
    # step; a setting a run predates counts as its default (an older run lacks `gen_workers`).
    older = _fake_result(("heart", "neon"), 0.2, reuse_loras=True)
    newer = _fake_result(("bolt", "mosaic"), 0.6, resume=True, gen_workers=4, threads=1, fast_training=True,
                         curves="paper")
    assert merge([older, newer])["config"]["pairs"] == [["heart", "neon"], ["bolt", "mosaic"]]
    with pytest.raises(ValueError, match="different settings"):
        merge([older, _fake_result(("bolt", "mosaic"), 0.6, curves="guidance-interval")])
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


def _seed_run(seed: int, both: float, base_s: float, m_s: float, merge_s: float) -> dict:
    """A run on two pairs at reference seed `seed`, with timings and a ZipLoRA merge per pair."""
    from craftstudio.demo.lab.benchmark import METRICS, summarize
    from craftstudio.demo.lab.benchmark_peers import cost_summary, ziplora_summary

    names = [BASE, "m1"]
    pairs = []
    for k, pair in enumerate((("heart", "neon"), ("bolt", "mosaic"))):
        methods = {BASE: {**{m: 0.0 for m in METRICS}, "seconds_per_step": base_s, "predictions": [["a", "b"]]},
                   "m1": {**{m: both + k for m in METRICS}, "seconds_per_step": m_s * (k + 1),
                          "predictions": [["c", "d"]]}}
        pairs.append({"content": pair[0], "style": pair[1], "seed": seed, "methods": methods,
                      "ziplora_merge": {"seconds": merge_s, "steps": 100, "final_loss": 0.1}})
    return {"config": {"pairs": [["heart", "neon"], ["bolt", "mosaic"]], "seed": seed, "images": 2, "refs": 1,
                       "lora_steps": 300, "workdir": f"/w/{seed}", "lora_workers": 1},
            "pairs": pairs, "summary": summarize(pairs, names), "cost": cost_summary(pairs, names),
            "ziplora_merge": ziplora_summary(pairs), "aliases": {BASE: BASE, "direct merge": "m1"}, "rows": [],
            "training": {"backbone": {"seconds": 1.0}},
            "timing": {"training_s": 1.0, "generation_s": 2.0, "total_s": 3.0, "seconds_per_image": 0.5}}


def test_merging_runs_of_two_reference_seeds_averages_each_pair_over_them():
    from craftstudio.demo.lab.benchmark import merge
    from craftstudio.demo.lab.benchmark_report import per_pair_table, report_text, table1

    merged = merge([_seed_run(0, 0.2, 0.01, 0.02, 4.0), _seed_run(1, 0.4, 0.01, 0.04, 6.0)])
    assert merged["config"]["ref_seeds"] == [0, 1]
    assert merged["config"]["pairs"] == [["heart", "neon"], ["bolt", "mosaic"]]
    heart, bolt = merged["pairs"]
    assert heart["seeds"] == [0, 1] and heart["methods"]["m1"]["both_acc"] == pytest.approx(0.3)
    assert bolt["methods"]["m1"]["both_acc"] == pytest.approx(1.3)
    assert len(heart["methods"]["m1"]["predictions"]) == 2  # both seeds' images
    assert merged["summary"]["m1"]["both_acc"]["mean"] == pytest.approx(0.8)  # mean over pairs of seed means
    assert merged["summary"]["m1"]["both_acc"]["std"] == pytest.approx(0.5)
    assert len(merged["runs"]) == 4 and merged["timing"]["total_s"] == 6.0
    # Cost: median over the 4 (pair, seed) runs of each run's ratio to its base: 2, 4, 4, 8.
    assert merged["cost"][BASE]["relative"] == 1.0 and merged["cost"]["m1"]["relative"] == pytest.approx(4.0)
    assert merged["ziplora_merge"]["merges"] == 4 and merged["ziplora_merge"]["seconds_mean"] == pytest.approx(5.0)
    assert [r[-1] for r in table1(merged)] == [COST, "1.00", "4.00"]
    assert per_pair_table(merged)[2] == ["direct merge", "0.30 (0.30 / 0.30)", "1.30 (1.30 / 1.30)"]
    text = report_text(merged)
    assert "reference seed(s) 0, 1 (each pair averaged over them)" in text and "took 5.0 s" in text
    with pytest.raises(ValueError, match="share pairs"):
        merge([_seed_run(0, 0.2, 0.01, 0.02, 4.0), _seed_run(0, 0.4, 0.01, 0.04, 6.0)])
    # A merged result merges again through its runs: a third seed joins the average.
    again = merge([merged, _seed_run(2, 0.6, 0.01, 0.02, 5.0)])
    assert again["config"]["ref_seeds"] == [0, 1, 2] and len(again["runs"]) == 6
    assert again["pairs"][0]["methods"]["m1"]["both_acc"] == pytest.approx(0.4)


def _fake_run(config, log=print):
    """What run_benchmark returns, without training: numbers from the config's seed."""
    result = _seed_run(config.seed, 0.2 + 0.2 * config.seed, 0.01, 0.02, 4.0)
    result["config"] = config.to_dict()
    return result


def test_ref_seeds_runs_once_per_seed_and_merges(tmp_path, monkeypatch, capsys):
    from craftstudio.demo.lab import benchmark
    from craftstudio.demo.lab.commands import main

    monkeypatch.setattr(benchmark, "run_benchmark", _fake_run)
    out = tmp_path / "t1.json"
    assert main(["benchmark", "--ref-seeds", "0,1", "--peers", "ziplora,k-lora", "--workdir", str(tmp_path / "w"),
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    runs = [json.loads((tmp_path / f"t1.seed{s}.json").read_text()) for s in (0, 1)]
    assert [r["config"]["seed"] for r in runs] == [0, 1]
    assert [r["config"]["workdir"] for r in runs] == [str(tmp_path / "w" / f"seed-{s}") for s in (0, 1)]
    assert runs[0]["config"]["peers"] == ["k-lora", "ziplora"]
    assert data["config"]["ref_seeds"] == [0, 1]
    assert data["pairs"][0]["methods"]["m1"]["both_acc"] == pytest.approx(0.3)
    assert "reference seed(s) 0, 1" in capsys.readouterr().out


def test_cuda_sizes_the_run_for_the_full_table_unless_told(monkeypatch):
    from craftstudio.demo.lab import benchmark
    from craftstudio.demo.lab.commands import main

    seen = []
    monkeypatch.setattr(benchmark, "run_benchmark", lambda config, log=print: seen.append(config) or _fake_run(config))
    assert main(["benchmark", "--device", "cuda", "--lora-steps", "700"]) == 0
    assert main(["benchmark"]) == 0
    cuda, cpu = seen
    assert (cuda.images, cuda.lora_steps, cuda.lora_rank, cuda.lora_workers, cuda.threads) == (16, 700, 16, 24, 1)
    assert (cpu.images, cpu.lora_steps, cpu.lora_rank, cpu.lora_workers, cpu.threads) == (8, 300, 8, 1, 2)
    assert cuda.peers == cpu.peers == ("k-lora", "switch", "composite", "ziplora", "b-lora")
    assert cuda.ziplora_steps == 100


@pytest.mark.parametrize(("args", "words"), [(["--peers", "k-lora,dora"], "unknown peer 'dora'"),
                                             (["--ref-seeds", "0,x"], "whole numbers"),
                                             (["--ref-seeds", "1,1"], "different seeds")])
def test_benchmark_refuses_bad_peers_or_seeds_before_training(tmp_path, capsys, args, words):
    from craftstudio.demo.lab.commands import main

    assert main(["benchmark", *args, "--workdir", str(tmp_path / "w")]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_parse_peers():
    from craftstudio.demo.lab.benchmark_peers import PEERS, parse_peers

    assert parse_peers("all") == PEERS and parse_peers("none") == parse_peers("") == ()
    assert parse_peers("b-lora, K-LoRA") == ("k-lora", "b-lora")


def test_auto_style_gamma_is_measured_per_pair_and_goes_into_the_prompt(smoke):
    from craftstudio.demo.lab.probes import auto_style_weight

    gammas = smoke.data["auto_style_gamma"]
    assert set(gammas) == {"heart:neon, W_init", "heart:neon, W0"}
    for measured in gammas.values():
        assert 1 / 5 <= measured["gamma"] <= 1
        assert measured["gamma"] == round(auto_style_weight(measured["ratio"], measured["cos"], 5.0), 2)
    setup = smoke.data["pairs"][0]["setup"]
    for name, key in (("CRAFT without backbone, γ_s = γ*", "heart:neon, W0"),
                      ("CRAFT (full), γ_s = γ*", "heart:neon, W_init")):
        assert setup[name]["prompt"].endswith(f"<s:{gammas[key]['gamma']:g}>")


def test_auto_style_weight_follows_the_unconditional_share():
    from craftstudio.demo.lab.probes import auto_style_weight

    assert auto_style_weight(0.0, 1.0, 5.0) == 1.0  # a change tied to the trigger keeps weight 1
    assert auto_style_weight(1.0, 1.0, 5.0) == pytest.approx(0.2)  # a prompt-free change: 1/s
    assert auto_style_weight(1.04, 0.77, 5.0) == pytest.approx(1 - 1.04 * 0.77 * 0.8)
    assert auto_style_weight(3.0, 1.0, 5.0) == pytest.approx(0.2)  # never below 1/s
    assert auto_style_weight(1.0, -0.5, 5.0) == 1.0  # nor above 1
    assert auto_style_weight(1.0, 1.0, 1.0) == 1.0  # no guidance, nothing to undo


def test_no_backbone_trains_only_w0_loras_and_keeps_the_rows_without_it(tmp_path):
    """`--no-backbone`: no backbone file, no LoRA on W_init, the 4 rows without the backbone; CRAFT
    on W0 (routing + asymmetric CFG) stands in for the full row in Table 1."""
    if MODEL is None or demo_oracle() is None:
        pytest.skip("demo model or oracle not installed")
    from craftstudio.demo.lab.commands import main

    out, work = tmp_path / "b.json", tmp_path / "work"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["benchmark", "--pair", "heart:mosaic", "--images", "1", "--steps", "2", "--refs", "2",
                     "--threads", "1", "--lora-steps", "2", "--peers", "none", "--no-backbone", "--style-gamma", "0.3",
                     "--peer-style-gamma", "0.3", "--workdir", str(work), "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["config"]["backbone"] is False
    assert not (work / "backbone.safetensors").exists() and not list(work.glob("*-bb-*.safetensors"))
    assert sorted(p.name for p in work.glob("*.safetensors")) == [
        "content-heart-w0-all.safetensors", "content-heart-w0-routed.safetensors",
        "style-mosaic-w0-all.safetensors", "style-mosaic-w0-routed.safetensors"]
    assert [r["backbone"] for r in data["rows"]] == [False] * 4
    assert [r[0] for r in data["tables"]["table1"]] == [
        "Method", BASE, "direct merge", "direct merge, style weight 0.3", "CRAFT without backbone",
        "CRAFT without backbone, γ_s = 0.3"]
    assert data["aliases"]["CRAFT without backbone"] == row_name((False, True, True))
    assert len(data["summary"]) == 1 + 4 + 1 + 1


def test_fast_training_and_reuse_reach_every_training_request(tmp_path, monkeypatch):
    """`--fast-training` reaches every training request (the B-LoRAs' too); ZipLoRA's merge has no
    compiled step. `--reuse-loras` lets the trainer keep files trained from the same request, which
    needs the resolution stated (a file records the resolved one). Without them, neither."""
    if MODEL is None or demo_oracle() is None:
        pytest.skip("demo model or oracle not installed")
    from craftstudio.demo.lab import benchmark
    from craftstudio.demo.lab.commands import main

    seen, reuse = [], []

    class Stop(Exception):
        pass

    def capture(requests, **kwargs):
        seen.append(dict(requests))
        reuse.append(kwargs["reuse"])
        raise Stop

    monkeypatch.setattr(benchmark, "train_many", capture)
    for extra in (["--fast-training", "--reuse-loras"], []):
        with pytest.raises(Stop):
            main(["benchmark", "--pair", "heart:neon", "--refs", "1", "--workdir", str(tmp_path / "w"), *extra])
    fast, plain = seen
    assert fast.keys() == plain.keys() and "backbone" in fast and "content-heart-w0-blora" in fast
    trained = [name for name in fast if not name.startswith("ziplora:")]
    assert len(trained) == 1 + 2 * 5 and all(fast[name].fast for name in trained)
    assert not any(getattr(request, "fast", False) for request in plain.values())
    assert reuse == [True, False]
    assert {fast[name].resolution for name in trained if name != "backbone"} == {64}


def test_resume_keeps_every_file_and_batch_and_workers_make_the_same_images(tmp_path):
    """A run made with pairs generated in worker processes, then `--resume`d in the same folder:
    nothing is trained or generated again, and the results are the same numbers (the cost
    column too: the seconds are the recorded ones). A batch whose record is gone is generated
    again, in this process, into the same picture the worker made."""
    if MODEL is None or demo_oracle() is None:
        pytest.skip("demo model or oracle not installed")
    from craftstudio.demo.lab.commands import main

    work = tmp_path / "work"
    args = ["benchmark", "--pairs", "2", "--images", "1", "--steps", "2", "--refs", "2", "--threads", "1",
            "--lora-steps", "2", "--backbone-steps", "2", "--backbone-keep", "0", "--peers", "none",
            "--workdir", str(work)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*args, "--gen-workers", "2", "--json", str(tmp_path / "a.json")]) == 0
    records = sorted((work / "samples").glob("*.json"))
    assert len(records) == 2 * (1 + len(ROWS))  # per pair: the base model and the 8 rows (direct = all off)
    gone = records[0]
    picture = gone.with_name(f"{gone.stem}-00.png")
    made_by_worker = picture.read_bytes()
    record = json.loads(gone.read_text())
    retimed = (record["pair"], record["method"])
    gone.unlink()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*args, "--resume", "--json", str(tmp_path / "b.json")]) == 0
    lines = printed.getvalue().splitlines()
    assert sum("kept" in line and ".safetensors" in line for line in lines) == 1 + 3 * 4  # backbone, 4 LoRAs a concept
    assert sum(line.split("] ", 1)[-1].startswith("kept ") and "pair" in line for line in lines) == len(records) - 1
    assert sum("] generated 1 x pair" in line for line in lines) == 1
    assert picture.read_bytes() == made_by_worker
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))
    for p, (first, second) in enumerate(zip(a["pairs"], b["pairs"], strict=True)):
        for name, method in first["methods"].items():
            kept = second["methods"][name]
            assert kept["predictions"] == method["predictions"]
            assert (kept["seconds_per_image"] == method["seconds_per_image"]) == ((p, name) != retimed)
