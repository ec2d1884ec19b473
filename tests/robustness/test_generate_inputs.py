"""`craftstudio generate` with bad files, numbers and outputs: exit 2, one line naming the culprit,
nothing written at --out, the catalog untouched. Every case here fails before a model loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.robustness.conftest import (
    BAD_FILE_KINDS,
    SPECIAL_KINDS,
    assert_one_line,
    bad_safetensors,
    raw_safetensors,
    run_cli,
    shown,
    special_path,
)


@pytest.fixture
def base(tiny_sd1, tmp_path) -> list[str]:
    return ["generate", "--model", str(tiny_sd1), "--prompt", "a red square", "--steps", "2", "--size", "64x64",
            "--device", "cpu", "--out", str(tmp_path / "out.png")]


def _refused(capsys, argv, tmp_path, unchanged, *names) -> str:
    rc, _, err = run_cli(capsys, argv)
    line = assert_one_line(rc, err, *names)
    assert not list(tmp_path.glob("out*.png"))
    unchanged()
    return line


# ---------- numbers


@pytest.mark.parametrize(("args", "names"), [
    (["--cfg", "nan"], ("CFG scale", "nan")),
    (["--cfg", "inf"], ("CFG scale", "inf")),
    (["--cfg=-inf"], ("CFG scale",)),
    (["--cfg", "1e999"], ("CFG scale",)),
    (["--cfg", "-1"], ("CFG scale", "-1")),
    (["--cfg", "101"], ("CFG scale", "101")),
    (["--steps", "0"], ("Steps", "0")),
    (["--steps", "1001"], ("Steps", "1001")),
    (["--seed", "-1"], ("Seed", "-1")),
    (["--batch", "0"], ("Batch count",)),
    (["--batch", "101"], ("Batch count",)),
    (["--size", "65x64"], ("width", "65")),
    (["--size", "64x0"], ("height", "0")),
    (["--size", "8192x64"], ("width", "8192")),
    (["--scheduler", "heun"], ("scheduler", "heun")),
], ids=lambda v: "_".join(v) if isinstance(v, list) else None)
def test_numbers_out_of_range(capsys, base, tmp_path, unchanged, args, names):
    _refused(capsys, [*base, *args], tmp_path, unchanged, *names)


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "99", "-5", "2.5", "1e400"])
def test_lora_weights_are_finite_and_in_range(capsys, base, tmp_path, unchanged, role, weight):
    lora = tmp_path / "l.safetensors"
    _refused(capsys, [*base, f"--{role}-lora", f"{lora}:{weight}"], tmp_path, unchanged, f"{role} LoRA weight")


@pytest.mark.parametrize("option", ["--prompt", "--negative"])
def test_text_that_is_not_utf8(capsys, base, tmp_path, unchanged, option):
    text = "a red \udcff square"  # how Python passes an argv byte that is not UTF-8
    _refused(capsys, [*base, option, text], tmp_path, unchanged, "not UTF-8")


def test_prompt_too_long(capsys, base, tmp_path, unchanged):
    _refused(capsys, [*base, "--prompt", "cat " * 20_000], tmp_path, unchanged, "prompt", "characters")


# ---------- files: model, LoRAs, backbone


FILE_OPTIONS = ["--model", "--content-lora", "--style-lora", "--backbone"]


@pytest.mark.parametrize("option", FILE_OPTIONS)
@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_broken_safetensors(capsys, base, tmp_path, unchanged, option, kind):
    path = bad_safetensors(tmp_path, kind)
    _refused(capsys, [*base, option, str(path)], tmp_path, unchanged, shown(path))


@pytest.mark.parametrize("option", FILE_OPTIONS)
@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_special_paths(capsys, base, tmp_path, unchanged, option, kind):
    path = special_path(tmp_path, kind)
    if kind == "folder" and option == "--model":
        expected = "model_index.json"  # a folder is a model only with model_index.json
    elif kind == "non-utf8" and option == "--model":
        expected = "not UTF-8"
    else:
        expected = shown(path) if kind != "non-utf8" else "not UTF-8"
    _refused(capsys, [*base, option, str(path)], tmp_path, unchanged, expected)


@pytest.fixture
def model_copy(tiny_sd1, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_sd1, tmp_path / "model"))


@pytest.mark.parametrize("fault", ["index-not-json", "index-list", "index-deep", "unet-header-offsets",
                                   "unet-header-dtype", "unet-truncated", "vae-metadata-list"])
def test_damaged_model_folder(capsys, base, tmp_path, unchanged, model_copy, fault):
    index = model_copy / "model_index.json"
    unet = next((model_copy / "unet").glob("*.safetensors"))
    vae = next((model_copy / "vae").glob("*.safetensors"))
    culprit = {"index-not-json": index, "index-list": index, "index-deep": index}.get(fault)
    if fault == "index-not-json":
        index.write_text("{ damaged")
    elif fault == "index-list":
        index.write_text("[]")
    elif fault == "index-deep":
        index.write_text("[" * 100_000 + "]" * 100_000)
    elif fault == "unet-header-offsets":
        raw_safetensors(unet, {"w": {"dtype": "F32", "shape": [2], "data_offsets": "xy"}}, bytes(8))
    elif fault == "unet-header-dtype":
        raw_safetensors(unet, {"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    elif fault == "unet-truncated":
        unet.write_bytes(unet.read_bytes()[:-64])
    else:
        raw_safetensors(vae, {"__metadata__": [1], "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                        bytes(8))
    culprit = culprit or (vae if fault.startswith("vae") else unet)
    argv = [a if a != base[2] else str(model_copy) for a in base]
    _refused(capsys, argv, tmp_path, unchanged, shown(culprit))


# ---------- curves


@pytest.mark.parametrize("fault", ["fifo", "missing", "not-json", "deep", "nan", "huge", "list", "unknown-preset"])
def test_bad_curves(capsys, base, tmp_path, unchanged, fault):
    path = tmp_path / "c.json"
    curve = {"interpolation": "linear", "points": [[0, 1], [1, 1]]}
    if fault == "fifo":
        import os

        os.mkfifo(path)
    elif fault == "not-json":
        path.write_text("{")
    elif fault == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif fault == "nan":
        path.write_text(json.dumps({"guidance": {"interpolation": "linear", "points": [[0, float("nan")]]},
                                    "content": curve, "style": curve}))
    elif fault == "huge":
        path.write_text(" " * 2_000_000 + "{}")
    elif fault == "list":
        path.write_text("[]")
    expected = shown(path)
    if fault == "unknown-preset":
        path, expected = "no-such-preset", "no-such-preset"
    _refused(capsys, [*base, "--curves", str(path)], tmp_path, unchanged, expected)


# ---------- outputs


def test_existing_output_is_not_replaced(capsys, base, tmp_path, unchanged):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    rc, _, err = run_cli(capsys, base)
    assert_one_line(rc, err, str(out), "--overwrite")
    assert out.read_bytes() == b"precious"
    unchanged()


def test_existing_batch_sibling_is_not_replaced(capsys, base, tmp_path, unchanged):
    sibling = tmp_path / "out-2.png"
    sibling.write_bytes(b"precious")
    rc, _, err = run_cli(capsys, [*base, "--batch", "3"])
    assert_one_line(rc, err, str(sibling))
    assert sibling.read_bytes() == b"precious" and not (tmp_path / "out-1.png").exists()
    unchanged()


@pytest.mark.parametrize("fault", ["parent-is-a-file", "out-is-a-folder", "not-png"])
def test_unwritable_outputs_fail_before_work(capsys, base, tmp_path, unchanged, fault):
    if fault == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        out, expected = tmp_path / "file" / "out.png", str(tmp_path / "file")
    elif fault == "out-is-a-folder":
        out = tmp_path / "out.png"
        out.mkdir()
        expected = str(out)
        base = [*base, "--overwrite"]
    else:
        out, expected = tmp_path / "out.jpg", str(tmp_path / "out.jpg")
    argv = base[:base.index("--out") + 1] + [str(out)] + base[base.index("--out") + 2:]
    rc, _, err = run_cli(capsys, argv)
    assert_one_line(rc, err, expected)
    assert not list(tmp_path.rglob("out*.png")) or out.is_dir()
    unchanged()


def test_read_only_output_folder_fails_before_work(capsys, base, tmp_path, unchanged, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    import craftstudio.domain.atomic_file as atomic_file

    def read_only(target):
        raise PermissionError(13, "Permission denied", str(target.parent))

    monkeypatch.setattr(atomic_file, "temp_file", read_only)
    argv = base[:base.index("--out") + 1] + [str(folder / "out.png")]
    rc, _, err = run_cli(capsys, argv)
    assert_one_line(rc, err, str(folder), "writable")
    assert not list(folder.iterdir())
    unchanged()
