"""LoRA and backbone files for the tiny test models, in peft/diffusers and kohya layouts."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from craftstudio.engine.routing import target_modules


def random_lora(unet, modules: list[str] | None = None, rank: int = 4, seed: int = 0,
                strength: float = 0.3) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module: (A (r×in), B (out×r))} with deltas large enough to change images visibly."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in modules or target_modules(unet):
        layer = unet.get_submodule(name)
        d_out, d_in = layer.weight.shape
        a = torch.randn(rank, d_in, generator=gen) * strength
        b = torch.randn(d_out, rank, generator=gen) * strength
        out[name] = (a, b)
    return out


def save_peft(lora, path: Path) -> Path:
    """diffusers/peft layout (`unet.<module>.lora_A.weight`); no alpha → scale 1."""
    tensors = {}
    for name, (a, b) in lora.items():
        tensors[f"unet.{name}.lora_A.weight"] = a.contiguous()
        tensors[f"unet.{name}.lora_B.weight"] = b.contiguous()
    save_file(tensors, str(path))
    return path


def save_kohya(lora, path: Path, alpha_ratio: float = 0.5) -> Path:
    """kohya/A1111 layout with alpha = ratio·rank; lora_up is rescaled so ΔW is unchanged."""
    tensors = {}
    for name, (a, b) in lora.items():
        key = "lora_unet_" + name.replace(".", "_")
        rank = a.shape[0]
        tensors[f"{key}.lora_down.weight"] = a.contiguous()
        tensors[f"{key}.lora_up.weight"] = (b / alpha_ratio).contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(float(rank * alpha_ratio))
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def random_backbone(unet, rank: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """An orthonormal basis Q (d_in × r) per target module."""
    gen = torch.Generator().manual_seed(seed)
    bases = {}
    for name in target_modules(unet):
        d_in = unet.get_submodule(name).weight.shape[1]
        q, _ = torch.linalg.qr(torch.randn(d_in, min(rank, d_in), generator=gen))
        bases[name] = q
    return bases
