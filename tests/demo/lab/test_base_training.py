"""The demo base-model trainer, run for a few steps on the CPU with tiny networks: its folder
loads through the application's loader and generates a 64×64 picture."""

from __future__ import annotations

import json

import pytest
import torch

from craftstudio.demo.lab.autoencoder_training import AutoencoderPhase
from craftstudio.demo.lab.base_model import MODEL_CARD, ModelSizes, folder_report
from craftstudio.demo.lab.base_training import BaseTrainConfig, DiffusionPhase, TrainLog, train_base


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "shapesworld"
    config = BaseTrainConfig(
        device="cpu", vae_images=8, images=16, workers=1, log_every=1, check_images=0, recon_images=4,
        time_budget=0,
        autoencoder=AutoencoderPhase(steps=2, batch=2, warmup=1),
        diffusion=DiffusionPhase(steps=2, batch=2, warmup=1), sizes=ModelSizes.tiny(),
    )
    lines: list[str] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest (and immune to a busy machine)
    try:
        train_base(config, out, TrainLog(lines.append))
    finally:
        torch.set_num_threads(threads)
    return out, lines


def test_trainer_writes_a_complete_diffusers_folder(trained):
    out, lines = trained
    for part in ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler", MODEL_CARD):
        assert (out / part).exists(), part
    assert (out / "tokenizer" / "vocab.json").is_file() and (out / "tokenizer" / "merges.txt").is_file()
    record = json.loads((out / MODEL_CARD).read_text())
    assert record["split"]["heldout_shapes"] and record["config"]["seed"] == 0
    assert [r["step"] for r in record["log"] if r["phase"] == "diffusion"] == [1, 2]
    assert any("diffusion step 2/2" in line for line in lines)
    assert not out.with_name(out.name + ".partial").exists()
    report = folder_report(out)
    assert report["total_bytes"] < 40e6 and report["largest_bytes"] < 15e6


def test_trained_folder_loads_and_generates_a_64px_picture(trained):
    from craftstudio.domain.generation import GenerateRequest
    from craftstudio.engine.generation import generate
    from craftstudio.engine.loader import load_model

    out, _ = trained
    model = load_model(out, torch.device("cpu"), torch.float32)
    assert model.family.value == "sd1"
    assert model.pipeline.tokenizer.tokenize("a sks in stripes style")[1] == "sks</w>"
    result = generate(GenerateRequest(model=str(out), prompt="a star in stripes style", width=64, height=64,
                                      steps=2, device="cpu"))
    assert result.images[0].size == (64, 64)


def test_a_finer_latent_world_trains_loads_and_generates_at_64px(tmp_path):
    """`train-base --latent-size 32`: a two-level autoencoder, so the UNet works on 32² latents of
    the same 64² pictures, and the app generates with it like with the shipped model."""
    from craftstudio.domain.generation import GenerateRequest
    from craftstudio.engine.generation import generate
    from craftstudio.engine.loader import load_model

    sizes = ModelSizes.tiny().with_latent_size(32)
    assert len(sizes.vae_channels) == 2
    config = BaseTrainConfig(
        device="cpu", vae_images=8, images=16, workers=1, log_every=1, check_images=0, recon_images=4,
        time_budget=0, autoencoder=AutoencoderPhase(steps=1, batch=2, warmup=1),
        diffusion=DiffusionPhase(steps=1, batch=2, warmup=1), sizes=sizes,
    )
    lines: list[str] = []
    train_base(config, tmp_path / "fine", TrainLog(lines.append))
    assert any("latents (4, 32, 32)" in line for line in lines)
    model = load_model(tmp_path / "fine", torch.device("cpu"), torch.float32)
    assert model.pipeline.vae_scale_factor == 2 and model.unet.config.sample_size == 32
    result = generate(GenerateRequest(model=str(tmp_path / "fine"), prompt="a star in stripes style", width=64,
                                      height=64, steps=2, device="cpu"))
    assert result.images[0].size == (64, 64)


def test_latent_sizes_other_than_16_and_32_are_refused():
    assert ModelSizes().with_latent_size(16) == ModelSizes()
    for bad in (8, 24, 64):
        with pytest.raises(ValueError, match=f"latent size {bad} is not one of 16, 32"):
            ModelSizes().with_latent_size(bad)
