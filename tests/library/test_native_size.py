"""The native size of a model, from its config files or its safetensors header (no torch)."""

from __future__ import annotations

import json

import pytest

from craftstudio.demo import assets
from craftstudio.library import synthetic
from craftstudio.library.native_size import FALLBACK_SIZE, native_size, native_size_or_default


def _folder(tmp_path, sample_size, vae_blocks=(128, 256, 512, 512)):
    folder = tmp_path / "model"
    for sub, config in (("unet", {"sample_size": sample_size}), ("vae", {"block_out_channels": list(vae_blocks)})):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(("sample", "blocks", "size"), [
    (64, (128, 256, 512, 512), (512, 512)),  # SD1.x
    (96, (128, 256, 512, 512), (768, 768)),  # SD2.x 768-v
    (128, (128, 256, 512, 512), (1024, 1024)),  # SDXL
    ([96, 64], (128, 256, 512, 512), (512, 768)),  # (height, width) in latents
    (16, (32, 64, 128), (64, 64)),  # three VAE blocks: a scale of 4
])
def test_a_diffusers_folder_gives_unet_sample_size_times_the_vae_scale(tmp_path, sample, blocks, size):
    assert native_size(_folder(tmp_path, sample, blocks)) == size


def test_the_demo_model_draws_64_pixels():
    if assets.demo_model_dir() is None:
        pytest.skip("the demo model is not installed")
    assert native_size(assets.demo_model_dir()) == (64, 64)


def _checkpoint(tmp_path, keys, metadata=None):
    return synthetic.write_safetensors(tmp_path / "model.safetensors", dict.fromkeys(keys, (4, 4)), metadata)


def test_a_checkpoint_uses_its_modelspec_resolution_first(tmp_path):
    path = _checkpoint(tmp_path, ["model.diffusion_model.input_blocks.0.0.weight"],
                       {"modelspec.resolution": "832x1216"})
    assert native_size(path) == (832, 1216)


def test_a_checkpoint_without_resolution_uses_its_family(tmp_path):
    sdxl = _checkpoint(tmp_path, ["model.diffusion_model.input_blocks.0.0.weight",
                                  "conditioner.embedders.1.model.ln_final.weight"])
    assert native_size(sdxl) == (1024, 1024)


def test_unknown_files_give_none_and_callers_fall_back(tmp_path):
    lora = synthetic.write_safetensors(tmp_path / "lora.safetensors", synthetic.LAYOUTS["kohya-sd1"](4))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    for path in (lora, broken, tmp_path / "missing", _folder(tmp_path, None)):
        assert native_size(path) is None
        assert native_size_or_default(path) == FALLBACK_SIZE
