"""Single-file (LDM-layout) checkpoints: tiny SD1.x/SDXL pipelines exported and loaded back.

The tiny folders are exported with tests/kit/ldm_export.py, then loaded through
`load_single_file` with a config folder made from the tiny folder itself (minus its weights),
so every weight in the loaded pipeline comes from the single file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from craftstudio.domain.errors import ModelError
from craftstudio.domain.family import Family
from craftstudio.engine.loader import family_of, load_model
from craftstudio.engine.single_file import family_of_checkpoint, load_single_file
from tests.kit.ldm_export import export_checkpoint, widen_text_encoder_2

CPU = torch.device("cpu")
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


class Exported:
    def __init__(self, root: Path, source: Path):
        self.folder = root / "model"
        shutil.copytree(source, self.folder)
        self.config = root / "config"  # the same folder without weights: configs and tokenizers only
        shutil.copytree(source, self.config, ignore=shutil.ignore_patterns("*.safetensors"))
        self.checkpoint = export_checkpoint(self.folder, root / f"{source.name}.safetensors")

    def cut(self, prefix: str, tmp_path: Path) -> Path:
        """The checkpoint without the tensors whose names start with `prefix`."""
        return export_checkpoint(self.folder, tmp_path / "cut.safetensors", drop=prefix)


@pytest.fixture(scope="module")
def sd1(tmp_path_factory, tiny_sd1) -> Exported:
    return Exported(tmp_path_factory.mktemp("single-sd1"), tiny_sd1)


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory, tiny_sdxl) -> Exported:
    root = tmp_path_factory.mktemp("single-sdxl")
    widened = widen_text_encoder_2(shutil.copytree(tiny_sdxl, root / "source" / tiny_sdxl.name))
    return Exported(root, widened)


@pytest.fixture(params=["sd1", "sdxl"])
def exported(request) -> Exported:
    return request.getfixturevalue(request.param)


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in module.state_dict().items() if not k.endswith("position_ids")}


def test_family_of_exported_checkpoints(sd1, sdxl):
    assert family_of_checkpoint(sd1.checkpoint) is Family.SD1
    assert family_of_checkpoint(sdxl.checkpoint) is Family.SDXL


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}  # noqa: SIM118 (not a dict)


def test_export_uses_the_original_layout(sd1, sdxl):
    """Names and shapes as in original SD1.x/SDXL checkpoints (one resnet a level, so 2 input blocks each)."""
    shapes = _shapes(sd1.checkpoint)
    assert shapes["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"] == (32, 32)
    assert shapes["model.diffusion_model.input_blocks.2.0.op.weight"] == (32, 32, 3, 3)
    assert shapes["model.diffusion_model.output_blocks.1.1.conv.weight"] == (64, 64, 3, 3)
    assert shapes["model.diffusion_model.out.2.weight"] == (4, 32, 3, 3)
    assert shapes["first_stage_model.decoder.up.1.upsample.conv.weight"] == (16, 16, 3, 3)
    assert shapes["first_stage_model.encoder.down.1.block.0.nin_shortcut.weight"] == (16, 8, 1, 1)
    assert shapes["first_stage_model.decoder.mid.attn_1.q.weight"] == (16, 16, 1, 1)  # 1x1 conv there
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in shapes
    shapes = _shapes(sdxl.checkpoint)
    assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (128, 80)
    assert shapes["model.diffusion_model.output_blocks.1.2.conv.weight"] == (64, 64, 3, 3)
    assert "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight" in shapes
    open_clip = "conditioner.embedders.1.model."
    assert shapes[open_clip + "transformer.resblocks.1.attn.in_proj_weight"] == (3 * 48, 48)
    assert shapes[open_clip + "transformer.resblocks.1.mlp.c_fc.weight"] == (96, 48)
    assert shapes[open_clip + "text_projection"] == (48, 32)  # transposed against transformers' Linear
    assert shapes[open_clip + "positional_embedding"] == (77, 48)
    assert open_clip + "ln_final.weight" in shapes


def test_single_file_loads_every_weight_of_the_folder(exported):
    reference = load_model(exported.folder, CPU, torch.float32).pipeline
    loaded = load_single_file(exported.checkpoint, torch.float32, config_dir=exported.config)
    assert family_of(loaded) is family_of(reference)
    compared = 0
    for name in COMPONENTS:
        ref = getattr(reference, name, None)
        if ref is None:
            assert getattr(loaded, name, None) is None
            continue
        ours, theirs = _state(getattr(loaded, name)), _state(ref)
        assert ours.keys() == theirs.keys(), name
        different = [k for k in theirs if ours[k].is_meta or not torch.equal(ours[k], theirs[k])]
        assert not different, f"{name}: {different[:5]}"
        compared += len(theirs)
    assert compared > 300


def _own_memory(pipe):
    """Copy the weights out of the memory-mapped files into fresh (64-byte aligned) memory.

    Tensors mapped straight from a .safetensors file sit at whatever offset the file gives them,
    and CPU kernels pick a different (last-bit different) path for unaligned data; with the same
    alignment on both sides equal weights give bit-identical images.
    """
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            for param in module.parameters():
                param.data = param.data.clone()
    return pipe


def test_single_file_gives_the_same_image(exported):
    def image(pipe):
        _own_memory(pipe).set_progress_bar_config(disable=True)
        return pipe("a red cat", negative_prompt="blue dog", num_inference_steps=2, guidance_scale=5.0,
                    width=64, height=64, generator=torch.Generator("cpu").manual_seed(3),
                    output_type="np").images[0]

    from_folder = image(load_model(exported.folder, CPU, torch.float32).pipeline)
    from_file = image(load_single_file(exported.checkpoint, torch.float32, config_dir=exported.config))
    assert from_folder.std() > 0.01  # a real picture, not a constant
    assert np.array_equal(from_folder, from_file)


def test_single_file_loads_in_half_precision(sd1):
    reference = load_model(sd1.folder, CPU, torch.float32).unet.state_dict()
    unet = load_single_file(sd1.checkpoint, torch.float16, config_dir=sd1.config).unet
    assert unet.dtype == torch.float16
    assert all(torch.equal(v, reference[k].half()) for k, v in unet.state_dict().items())


def test_checkpoint_without_unet_is_refused(sd1, tmp_path):
    path = sd1.cut("model.diffusion_model.", tmp_path)
    for load in (lambda: load_single_file(path, torch.float32, config_dir=sd1.config),
                 lambda: load_model(path, CPU, torch.float32)):
        with pytest.raises(ModelError, match="not a Stable Diffusion checkpoint \\(no UNet weights\\)") as info:
            load()
        assert str(path) in str(info.value)


@pytest.mark.parametrize("family, prefix, expected", [
    ("sd1", "model.diffusion_model.output_blocks.", "some weights are missing"),
    ("sd1", "first_stage_model.", "its VAE weights are missing"),
    ("sdxl", "first_stage_model.decoder.", "is incomplete"),
    ("sdxl", "conditioner.embedders.1.model.text_projection", "second text encoder weights are missing"),
])
def test_incomplete_checkpoint_is_a_clear_model_error(request, tmp_path, family, prefix, expected):
    model = request.getfixturevalue(family)
    path = model.cut(prefix, tmp_path)
    with pytest.raises(ModelError) as info:
        load_single_file(path, torch.float32, config_dir=model.config)
    message = str(info.value)
    assert expected in message and str(path) in message and "incomplete" in message
    assert "\n" not in message


def test_config_folder_with_weights_is_refused(sd1):
    with pytest.raises(ValueError, match="holds weights"):
        load_single_file(sd1.checkpoint, torch.float32, config_dir=sd1.folder)
