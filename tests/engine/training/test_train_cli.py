"""`train backbone`, `train lora` and `bench train` through their argparse commands, end to end
with the generate command of the main CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from craftstudio.cli import train as train_cli
from craftstudio.domain.cancel import Cancelled
from craftstudio.domain.errors import UserError
from craftstudio.engine.backbone import load_backbone
from tests.engine.training.conftest import write_image


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="craftstudio")
    sub = parser.add_subparsers(dest="command")
    train_cli.add_commands(sub)
    bench = sub.add_parser("bench")
    train_cli.add_bench_command(bench.add_subparsers(dest="bench"))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_train_backbone_then_loras_then_generate(tmp_path, tiny_sd1, refs, capsys):
    from craftstudio.cli import main

    backbone, content, style = (tmp_path / f"{n}.safetensors" for n in ("backbone", "content", "style"))
    common = ["--model", str(tiny_sd1), "--device", "cpu", "--resolution", "32", "--steps", "2"]
    assert _run(["train", "backbone", *common, "--content-dir", str(refs["content"]), "--style-dir",
                 str(refs["style"]), "--out", str(backbone), "--r-max", "4", "--r-min", "2",
                 "--keep-dir", str(refs["style"])]) == 0
    assert load_backbone(backbone).metadata["craft.steps"] == "2"
    assert load_backbone(backbone).metadata["craft.keep_weight"] == "1000.0"  # the default κ
    assert load_backbone(backbone).metadata["craft.init"] == "minor"
    assert _run(["train", "lora", *common, "--role", "content", "--images", str(refs["content"]), "--trigger",
                 "sks cat", "--backbone", str(backbone), "--rank", "2", "--out", str(content),
                 "--sample-every", "2", "--sample-steps", "2"]) == 0
    assert (tmp_path / "content.safetensors.samples" / "step-000002.png").is_file()
    files = [str(p) for p in sorted(refs["style"].iterdir())]
    assert _run(["train", "lora", *common, "--role", "style", "--images", *files, "--trigger", "ohwx",
                 "--backbone", str(backbone), "--rank", "2", "--out", str(style)]) == 0
    captured = capsys.readouterr()
    assert str(style) in captured.out and "skipped" in captured.err and "notes.txt" in captured.err
    png = tmp_path / "out.png"
    assert main(["generate", "--model", str(tiny_sd1), "--prompt", "a sks cat <c> in ohwx style <s>",
                 "--steps", "3", "--size", "32x32", "--device", "cpu", "--backbone", str(backbone),
                 "--content-lora", str(content), "--style-lora", f"{style}:0.8", "--out", str(png)]) == 0
    assert png.is_file()


def test_user_errors_are_raised_for_the_main_to_print(tmp_path, tiny_sd1, refs):
    out = tmp_path / "c.safetensors"
    out.write_bytes(b"x")
    with pytest.raises(UserError, match="already exists"):
        _run(["train", "lora", "--role", "content", "--model", str(tiny_sd1), "--images", str(refs["content"]),
              "--trigger", "sks", "--out", str(out), "--device", "cpu"])
    with pytest.raises(UserError, match="BLOCK=ROLE"):
        _run(["train", "lora", "--role", "style", "--model", str(tiny_sd1), "--images", str(refs["style"]),
              "--trigger", "sks", "--out", str(tmp_path / "s.safetensors"), "--route", "up_blocks.1"])
    write_image(tmp_path / "small.png", 3, size=(16, 16))
    with pytest.raises(UserError, match="--upscale"):
        _run(["train", "lora", "--role", "style", "--model", str(tiny_sd1), "--images", str(tmp_path / "small.png"),
              "--trigger", "sks", "--out", str(tmp_path / "s.safetensors"), "--device", "cpu", "--resolution", "32"])


def test_a_cancelled_run_exits_130_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import craftstudio.engine.training as training

    def cancelled(*args, **kwargs):
        raise Cancelled("cancelled by the user")

    monkeypatch.setattr(training, "train", cancelled)
    rc = _run(["train", "backbone", "--model", "m", "--content-dir", "c", "--style-dir", "s", "--out",
               str(tmp_path / "b.safetensors")])
    assert rc == train_cli.EXIT_CANCELLED and "--resume" in capsys.readouterr().err


def test_bench_train_runs_reduced_on_the_cpu(tmp_path, capsys):
    report_file = tmp_path / "bench.json"
    assert _run(["bench", "train", "--family", "sd15", "--size", "32", "--steps", "1", "--warmup", "0",
                 "--rank", "4", "--device", "cpu", "--json", str(report_file)]) == 0
    text = capsys.readouterr().out
    assert "card: CPU" in text and "(c) Rank-FT backbone step" in text and "n/a" in text and "b/a" in text
    report = json.loads(report_file.read_text())
    assert [r["config"] for r in report["rows"]] == ["a", "b", "c"]
    assert report["rows"][1]["layers"] < report["rows"][0]["layers"] == report["rows"][2]["layers"]
    assert set(report["ratios"]["sd15"]) >= {"b/a", "c/a"}


@pytest.mark.parametrize("flags, expected", [
    (["--gpus", "0,1", "--batch", "4"], (2, (0, 1))),
    (["--num-processes", "2", "--batch", "2", "--device", "cpu"], (2, ())),
    ([], (1, ())),
])
def test_gpus_and_processes_reach_the_request(tmp_path, monkeypatch, flags, expected):
    import craftstudio.engine.training as training

    seen = []

    def record(request, **kwargs):
        seen.append(request)
        raise Cancelled("cancelled by the user")

    monkeypatch.setattr(training, "train", record)
    _run(["train", "lora", "--role", "content", "--model", "m", "--images", "i", "--trigger", "sks",
          "--out", str(tmp_path / "l.safetensors"), *flags])
    assert (seen[0].num_processes, seen[0].gpus) == expected


def test_a_batch_that_does_not_split_over_the_gpus_is_refused(tmp_path):
    with pytest.raises(UserError, match="batch size 1 does not split evenly over 2 processes"):
        _run(["train", "lora", "--role", "content", "--model", "m", "--images", "i", "--trigger", "sks",
              "--out", str(tmp_path / "l.safetensors"), "--gpus", "0,1"])


def test_bench_train_scales_over_two_cpu_processes_with_one_bucket(tmp_path, capsys):
    """The scaling benchmark end to end: one process, then two under DDP (gloo) with every
    gradient in one bucket; the table compares them."""
    report_file = tmp_path / "scaling.json"
    assert _run(["bench", "train", "--num-processes", "2", "--one-bucket", "--device", "cpu", "--preset", "small",
                 "--family", "sd15", "--size", "64", "--which", "b", "--batch", "2", "--steps", "1", "--warmup", "0",
                 "--rank", "4", "--json", str(report_file)]) == 0
    text = capsys.readouterr().out
    assert "one DDP bucket" in text and "speed-up" in text and "(b) routed content LoRA" in text
    report = json.loads(report_file.read_text())
    assert report["compared"] and report["one_bucket"] and report["processes"] == 2
    [row] = report["rows"]
    assert row["step"] == "b" and len(row["devices"]) == 2 and row["speedup"] > 0


@pytest.mark.parametrize("flags, launched", [
    (["--num-processes", "2"], [1, 2]),
    (["--num-processes", "2", "--no-baseline"], [2]),
    (["--num-processes", "1"], [1]),
])
def test_bench_train_launches_the_halves_asked_for(monkeypatch, capsys, flags, launched):
    from craftstudio.engine.training import launcher

    counts = []

    def fake(payload, *, processes, **kwargs):
        counts.append(processes)
        rows = [{"family": "sd15", "size": 64, "step": "b", "label": "(b) routed content LoRA",
                 "ms_per_step": 100.0 / processes, "samples_per_s": 2 / (0.1 / processes),
                 "peak_mib": [None] * processes, "devices": ["cpu"] * processes}]
        return {"device": "CPU", "precision": "fp32", "rows": rows}

    monkeypatch.setattr(launcher, "run_launched", fake)
    assert _run(["bench", "train", "--device", "cpu", "--which", "b", "--batch", "2", *flags]) == 0
    assert counts == launched
    assert ("2.00×" in capsys.readouterr().out) == (launched == [1, 2])  # a speed-up only beside its baseline


def test_bench_train_refuses_a_batch_the_processes_cannot_split():
    with pytest.raises(UserError, match="1 or more processes that split the batch 3 evenly, not 2"):
        _run(["bench", "train", "--device", "cpu", "--num-processes", "2", "--batch", "3"])
