"""Faults only a loaded model reveals: LoRA/backbone tensors holding NaN or Inf, latents that go
non-finite while sampling, trained weights that are not finite, a full disk, a name taken while
an image was written. Never a black PNG, never a non-finite file, never a replaced file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from craftstudio.domain.atomic_file import normal_mode
from craftstudio.domain.errors import NonFiniteOutput, UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.engine.backbone import FORMAT
from craftstudio.engine.loader import load_model
from craftstudio.library.png_params import read_request, save_png
from tests.kit.tiny_loras import random_backbone, random_lora, save_peft
from tests.robustness.conftest import assert_one_line, run_cli

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def files(tiny_sd1, tmp_path_factory) -> dict[str, Path]:
    """LoRAs and backbones for the tiny model whose values are not finite (or huge)."""
    folder = tmp_path_factory.mktemp("poisoned")
    unet = load_model(tiny_sd1, CPU, torch.float32).unet
    out = {}
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        lora = random_lora(unet, seed=1)
        first = next(iter(lora))
        lora[first][0][0, 0] = value
        out[f"lora-{name}"] = save_peft(lora, folder / f"lora-{name}.safetensors")
        bases = random_backbone(unet, seed=2)
        next(iter(bases.values()))[0, 0] = value
        path = folder / f"backbone-{name}.safetensors"
        save_file({f"{k}.q": v.contiguous() for k, v in bases.items()}, str(path),
                  metadata={"craft.format": FORMAT, "craft.family": "sd1"})
        out[f"backbone-{name}"] = path
    huge = {k: (a * 1e30, b * 1e30) for k, (a, b) in random_lora(unet, seed=3).items()}
    out["lora-huge"] = save_peft(huge, folder / "lora-huge.safetensors")
    return out


def _argv(tiny_sd1, out: Path, *extra: str) -> list[str]:
    return ["generate", "--model", str(tiny_sd1), "--prompt", "a red square", "--steps", "2", "--size", "64x64",
            "--device", "cpu", "--out", str(out), *extra]


@pytest.mark.parametrize(("option", "name"), [("--content-lora", "lora-nan"), ("--style-lora", "lora-inf"),
                                              ("--backbone", "backbone-nan"), ("--backbone", "backbone-inf")])
def test_non_finite_tensors_are_refused_by_name(capsys, tiny_sd1, files, tmp_path, option, name):
    out = tmp_path / "out.png"
    rc, _, err = run_cli(capsys, _argv(tiny_sd1, out, option, str(files[name])))
    assert "non-finite" in assert_one_line(rc, err, str(files[name]))
    assert not out.exists()


def test_sampling_that_goes_non_finite_stops_without_a_picture(capsys, tiny_sd1, files, tmp_path):
    out = tmp_path / "out.png"
    rc, _, err = run_cli(capsys, _argv(tiny_sd1, out, "--content-lora", str(files["lora-huge"])))
    # The work had started: the progress bar's lines come first, then the one line.
    err = "\n".join(line for line in err.splitlines() if not line.startswith("image 1/1"))
    line = assert_one_line(rc, err, "non-finite")
    assert "lower the CFG scale" in line and not out.exists()


def test_non_finite_trained_weights_are_never_written(tiny_sd1, tmp_path):
    from diffusers import StableDiffusionPipeline

    from craftstudio.domain.family import Family
    from craftstudio.engine.backbone import save_backbone
    from craftstudio.engine.training.lora_format import save_lora
    from craftstudio.engine.training.lora_training import add_lora

    unet = load_model(tiny_sd1, CPU, torch.float32).unet
    params = add_lora(unet, ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"], 2, 2.0, 0)
    with torch.no_grad():
        next(iter(params.values())).fill_(float("nan"))
    out = tmp_path / "lora.safetensors"
    with pytest.raises(NonFiniteOutput, match="not written"):
        save_lora(unet, "craft_train", StableDiffusionPipeline, out, {}, overwrite=False)
    bases = {"a": torch.full((4, 2), float("inf"))}
    with pytest.raises(NonFiniteOutput, match="not written"):
        save_backbone(tmp_path / "bb.safetensors", bases, fingerprint="x", family=Family.SD1, base_name="m",
                      r_max=2, r_min=2)
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".*.tmp"))


# ---------- writing PNGs


def _image() -> Image.Image:
    return Image.new("RGB", (8, 8), "red")


def test_saved_pngs_get_the_normal_mode(tmp_path):
    path = save_png(_image(), tmp_path / "a.png", GenerateRequest(model="m", prompt="p"), seed=1, model_name="m")
    assert stat.S_IMODE(path.stat().st_mode) == normal_mode()


def test_a_name_taken_while_writing_is_kept(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        save_png(_image(), path, GenerateRequest(model="m", prompt="p"), seed=1, model_name="m", overwrite=False)
    assert path.read_bytes() == b"precious" and not list(tmp_path.glob(".*.tmp"))


def test_the_gui_numbers_new_files_instead_of_replacing(tmp_path, monkeypatch):
    import craftstudio.workers.generate_job as generate_job

    taken = tmp_path / "fixed-1.png"
    taken.write_bytes(b"precious")
    calls = iter([taken, taken, tmp_path / "fixed-1-2.png"])  # as if the name was taken meanwhile
    monkeypatch.setattr(generate_job, "free_name", lambda folder, stem: next(calls))
    saved = generate_job.save_new_png(_image(), tmp_path, "fixed-1", GenerateRequest(model="m", prompt="p"), 1, "m")
    assert saved.name == "fixed-1-2.png" and taken.read_bytes() == b"precious"
    assert read_request(saved).prompt == "p"


def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError, match="disk space") as info:
        save_png(_image(), tmp_path / "a.png", GenerateRequest(model="m", prompt="p"), seed=1, model_name="m")
    assert str(tmp_path / "a.png") in str(info.value) and not list(tmp_path.iterdir())


def test_a_scan_onto_a_full_database_is_one_sentence(capsys, home, tmp_path, monkeypatch):
    from craftstudio.library import database
    from craftstudio.library.synthetic import LAYOUTS, write_safetensors

    folder = tmp_path / "scan"
    folder.mkdir()
    for i in range(40):
        write_safetensors(folder / f"l{i}.safetensors", LAYOUTS["kohya-sd1"](4 + i))
    real_init = database.Database.__init__

    def small_disk(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        pages = self.scalar("PRAGMA page_count")
        self.execute(f"PRAGMA max_page_count = {pages + 2}")

    monkeypatch.setattr(database.Database, "__init__", small_disk)
    rc, _, err = run_cli(capsys, ["library", "scan", str(folder)])
    assert "full" in assert_one_line(rc, err, "library.sqlite")
