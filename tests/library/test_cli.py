"""`craftstudio library …` and `craftstudio bench library`, through the parsers they add."""

from __future__ import annotations

import argparse
import json

import pytest
from PIL import Image, PngImagePlugin

from craftstudio.cli.library import add_commands
from craftstudio.domain.errors import UserError
from craftstudio.library.bench import add_bench_command
from tests.library.conftest import make_lora


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="craftstudio")
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    bench = sub.add_parser("bench").add_subparsers(dest="bench_command")
    add_bench_command(bench)
    return parser


@pytest.fixture
def run(home, capsys):
    def call(*argv: str) -> tuple[int, str]:
        args = _parser().parse_args(["library", "--home", str(home), *argv])
        code = args.func(args)
        return code, capsys.readouterr().out
    return call


def test_scan_list_and_json(run, loras):
    (loras / "broken.safetensors").write_bytes(b"\0" * 3)
    code, out = run("scan", str(loras))
    assert code == 0 and "4 added" in out and "1 unreadable" in out and "broken.safetensors" in out
    code, out = run("list")
    assert code == 0 and "ink sketch" in out and "neon city" in out and "4 item(s)" in out
    assert out.splitlines()[0].split() == ["ID", "NAME", "KIND", "FAMILY", "ROLE", "RANK", "FORMAT", "TAGS",
                                           "TRIGGERS"]
    code, out = run("list", "--family", "sdxl", "--json")
    assert [i["name"] for i in json.loads(out)] == ["neon city"]
    code, out = run("--json", "list", "--role", "style", "--search", "water")
    assert [i["title"] for i in json.loads(out)] == ["Watercolour"]
    code, out = run("list", "--unreadable")
    assert "broken.safetensors" in out and "too short" in out
    code, out = run("list", "--search", "nothing-like-this")
    assert out.strip() == "Nothing found."


def test_import_info_tag_remove_restore(run, tmp_path, home):
    src = make_lora(tmp_path / "my ink.safetensors", metadata={"craft.role": "style"})
    code, out = run("import", str(src))
    assert code == 0 and out.startswith("Added ") and "copied to" in out
    code, out = run("--json", "import", str(src))
    item = json.loads(out)["item"]
    assert json.loads(out)["created"] is False
    code, out = run("info", item["id"][:10])
    assert "family:      SD 1.x" in out and "role:        style" in out and "cross-attention width 768" in out
    code, out = run("tag", item["id"][:10], "+Ink", "+bw", "-bw", "wash")
    assert code == 0 and "tags ink, wash" in out
    code, out = run("tag", item["id"][:10], "-wash", "--json")
    assert json.loads(out)["tags"] == ["ink"]
    code, out = run("edit", item["id"][:10], "--title", "Ink Wash", "--triggers", "ink wash, bold lines",
                    "--name", "inkwash")
    assert "Ink Wash" in out and "ink wash, bold lines" in out and "inkwash.safetensors" in out
    code, out = run("remove", "inkwash")
    assert "trash" in out and "restore" in out and not (home / "loras" / "inkwash.safetensors").exists()
    code, out = run("list", "--trash")
    assert "inkwash" in out
    code, out = run("restore", item["id"])
    assert code == 0 and (home / "loras" / "inkwash.safetensors").exists()


def test_import_in_place_and_remove_keeps_the_file(run, tmp_path):
    src = make_lora(tmp_path / "mine.safetensors")
    code, out = run("import", str(src), "--in-place")
    assert "registered where it is" in out
    code, out = run("remove", "mine")
    assert "left where it is" in out and src.exists()


def test_info_on_a_file_outside_the_library(run, tmp_path):
    src = make_lora(tmp_path / "xl.safetensors", "kohya-sdxl")
    code, out = run("info", str(src))
    assert code == 0 and "sdxl" in out and "not in the library" in out


def test_user_errors_are_user_errors(run, tmp_path):
    with pytest.raises(UserError, match="Nothing in the library matches"):
        run("info", "nope")
    with pytest.raises(UserError, match="does not exist"):
        run("import", str(tmp_path / "missing.safetensors"))
    with pytest.raises(UserError, match="does not exist"):
        run("scan", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="Name one or more folders"):
        run("scan")
    with pytest.raises(UserError, match=r"\+tag"):
        run("tag", "x")


def test_params(run, loras, tmp_path):
    run("scan", str(loras))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat <lora:cat:0.9>, <lora:ghost:1>\nNegative prompt: blur\n"
                                "Steps: 12, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 512x640, Clip skip: 2")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png", pnginfo=info)
    code, out = run("params", str(tmp_path / "a.png"))
    assert code == 0 and "prompt:       a cat\n" in out and "content LoRA:" in out and "@ 0.9" in out
    assert "not in library" in out and "not used: Clip skip" in out
    code, out = run("params", str(tmp_path / "a.png"), "--json")
    data = json.loads(out)
    assert data["request"]["content_lora"]["weight"] == 0.9 and data["source"] == "parameters"
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    code, out = run("params", str(tmp_path / "plain.png"))
    assert code == 1 and "holds no generation parameters" in out


def test_library_without_a_command_shows_help(run, capsys):
    code, out = run()
    assert code == 2 and "scan" in out and "params" in out


def test_bench_library_small(capsys, tmp_path):
    args = _parser().parse_args(["bench", "library", "--count", "24", "--dir", str(tmp_path / "b")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "24 synthetic LoRAs" in out and "| cold scan |" in out and "| re-scan, nothing changed |" in out
    args = _parser().parse_args(["bench", "library", "--count", "12", "--json", "--dir", str(tmp_path / "c")])
    args.func(args)
    result = json.loads(capsys.readouterr().out)
    assert result["cold_added"] == 12 and result["rescan_unchanged"] == 12 and result["catalogued"] == 12
