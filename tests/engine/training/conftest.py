"""Shared training fixtures: small reference images, and a backbone and LoRAs trained once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from craftstudio.domain.training import BackboneTrainRequest, LoraTrainRequest

RES = 32


def unet_out(unet, timestep: int, seed: int = 0):
    """The UNet's output on a fixed random input (for comparing two weight set-ups)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=gen)
    states = torch.randn(1, 77, unet.config.cross_attention_dim, generator=gen)
    with torch.no_grad():
        return unet(x, torch.tensor([timestep]), encoder_hidden_states=states).sample


def write_image(path: Path, seed: int, size: tuple[int, int] = (40, 48)) -> Path:
    """A structured image (gradient + blob + noise), so the VAE sees more than noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([x, y, 1 - x], axis=-1) * 200
    cx, cy = rng.uniform(0.3, 0.7, 2)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.02)[..., None] * rng.uniform(0, 255, 3)
    pixels = np.clip(base + blob * 0.5 + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def refs(tmp_path_factory) -> dict[str, Path]:
    """content/ (3 images and a text file), style/ (2 images), small/ (an image below RES)."""
    root = tmp_path_factory.mktemp("refs")
    for sub, count, offset in (("content", 3, 0), ("style", 2, 100)):
        (root / sub).mkdir()
        for i in range(count):
            write_image(root / sub / f"{sub}-{i}.png", offset + i)
    (root / "content" / "notes.txt").write_text("not an image")
    (root / "small").mkdir()
    write_image(root / "small" / "tiny.png", 7, size=(20, 24))
    return {"root": root, "content": root / "content", "style": root / "style", "small": root / "small"}


def backbone_request(model: Path, refs, out: Path, **kw) -> BackboneTrainRequest:
    base = dict(model=str(model), content_dir=str(refs["content"]), style_dir=str(refs["style"]), out=str(out),
                r_max=4, r_min=2, steps=4, resolution=RES, device="cpu", checkpoint_every=0, learning_rate=1e-2)
    base.update(kw)
    return BackboneTrainRequest(**base)


def lora_request(model: Path, refs, out: Path, role: str = "content", **kw) -> LoraTrainRequest:
    images = (str(refs["content"]),) if role == "content" else (str(refs["style"]),)
    base = dict(role=role, model=str(model), images=images, trigger="sks cat" if role == "content" else "ohwx",
                out=str(out), rank=2, steps=3, resolution=RES, device="cpu", checkpoint_every=0,
                learning_rate=1e-2, gradient_checkpointing=False)
    base.update(kw)
    return LoraTrainRequest(**base)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_sd1, refs):
    """A backbone and a content and a style LoRA trained on it (tiny SD1.x), with their results."""
    from craftstudio.engine.training.backbone_training import train_backbone
    from craftstudio.engine.training.lora_training import train_lora

    folder = tmp_path_factory.mktemp("trained")
    backbone = train_backbone(backbone_request(tiny_sd1, refs, folder / "backbone.safetensors"))
    content = train_lora(lora_request(tiny_sd1, refs, folder / "content.safetensors", "content",
                                      backbone=backbone.out))
    style = train_lora(lora_request(tiny_sd1, refs, folder / "style.safetensors", "style",
                                    backbone=backbone.out))
    return {"model": tiny_sd1, "backbone": backbone, "content": content, "style": style}
