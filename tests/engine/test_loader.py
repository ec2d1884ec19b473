"""Loading base models: folders, single files, family detection and every bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from craftstudio.domain.errors import ModelError
from craftstudio.domain.family import Family
from craftstudio.engine.loader import load_model
from craftstudio.engine.single_file import family_of_checkpoint, write_config_folder

CPU = torch.device("cpu")


def test_loads_sd1_and_sdxl_folders(tiny_sd1, tiny_sdxl):
    assert load_model(tiny_sd1, CPU, torch.float32).family is Family.SD1
    model = load_model(tiny_sdxl, CPU, torch.float32)
    assert model.family is Family.SDXL and model.name == "tiny-sdxl"


def _bad(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("not_a_model_folder", "not a diffusers model folder"),
    ("pickle", "pickle checkpoint"),
    ("text_renamed", "not a valid .safetensors file"),
    ("truncated", "truncated"),
    ("empty", "the file is empty"),
    ("bin_only_folder", "only pickle weights"),
])
def test_bad_inputs_name_the_file(tmp_path, tiny_sd1, case, expected):
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "not_a_model_folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif case == "pickle":
        path = _bad(tmp_path, "model.ckpt", b"\x80\x04not really")
    elif case == "text_renamed":
        path = _bad(tmp_path, "notes.safetensors", b"hello, this is a text file, not a model\n")
    elif case == "empty":
        path = _bad(tmp_path, "empty.safetensors", b"")
    elif case == "truncated":
        header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode()
        path = _bad(tmp_path, "cut.safetensors", len(header).to_bytes(8, "little") + header + b"\0" * 10)
    else:
        path = tmp_path / "binmodel"
        shutil.copytree(tiny_sd1, path)
        for weights in (path / "unet").glob("*.safetensors"):
            weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelError) as info:
        load_model(path, CPU, torch.float32)
    message = str(info.value)
    assert expected in message and str(path) in message
    assert "\n" not in message


def test_truncated_weights_inside_a_folder(tmp_path, tiny_sd1):
    path = tmp_path / "cut-model"
    shutil.copytree(tiny_sd1, path)
    weights = next((path / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_model(path, CPU, torch.float32)


def test_a_lora_file_is_not_taken_for_a_checkpoint(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, path)
    with pytest.raises(ModelError, match="looks like a LoRA"):
        load_model(path, CPU, torch.float32)


@pytest.mark.parametrize("prefix, family", [
    ("cond_stage_model.transformer.text_model.", Family.SD1),
    ("cond_stage_model.model.transformer.", Family.SD2),
    ("conditioner.embedders.1.model.", Family.SDXL),
])
def test_checkpoint_family_from_key_layout(tmp_path, prefix, family):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
               prefix + "x.weight": torch.zeros(1)}, path)
    assert family_of_checkpoint(path) is family


@pytest.mark.parametrize("family", [Family.SD1, Family.SD2, Family.SDXL])
def test_shipped_configs_build_a_loadable_config_folder(tmp_path, family):
    """The offline config folder for single files has a working full CLIP tokenizer."""
    from transformers import CLIPTokenizer

    write_config_folder(family, tmp_path)
    tok = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert len(tok) == 49408
    # Known ids of the real CLIP vocabulary.
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert ("text_encoder_2" in index) == (family is Family.SDXL)
