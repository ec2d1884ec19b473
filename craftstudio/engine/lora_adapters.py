"""Read LoRA files (diffusers/peft and kohya/A1111/civitai layouts) into per-module deltas.

diffusers does the format work: `lora_state_dict` converts kohya and SGM names, and
`load_lora_into_unet` interprets ranks, alphas and metadata exactly as stock diffusers does. We
load a file as a temporary peft adapter, copy each layer's `lora_A`/`lora_B` modules and scaling,
then remove the adapter, so the UNet is left as it was. Only UNet weights are used: CRAFT routes
UNet layers, and a text-encoder part cannot be confined to one branch (reported, not applied).
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from craftstudio.domain.errors import LoraError
from craftstudio.domain.family import Family
from craftstudio.engine.fingerprint import file_sha256
from craftstudio.engine.inputs import check_finite, regular_safetensors
from craftstudio.engine.loader import LoadedModel, check_safetensors_file

log = logging.getLogger(__name__)

_CROSS_WIDTH = {768: Family.SD1, 1024: Family.SD2, 2048: Family.SDXL}
_TO_K = re.compile(r"attn2.*to_k.*(lora_A|lora\.down|lora_down|\.down)\.weight$")


@dataclass
class ModuleDelta:
    """ΔW of one UNet module: up(down(x)) · scale."""

    down: nn.Module
    up: nn.Module
    scale: float


@dataclass
class LoraWeights:
    path: Path
    sha256: str
    family: Family
    deltas: dict[str, ModuleDelta]  # UNet module name → delta
    text_encoder_keys: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem


def family_of_lora(state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Family:
    """Family from cross-attention key widths (768 SD1, 1024 SD2, 2048 SDXL) or the metadata."""
    for key, tensor in state_dict.items():
        if _TO_K.search(key) and tensor.ndim == 2:
            return _CROSS_WIDTH.get(int(tensor.shape[1]), Family.UNKNOWN)
    if any(k.startswith(("text_encoder_2.", "lora_te2_")) for k in state_dict):
        return Family.SDXL
    arch = (metadata or {}).get("modelspec.architecture", "")
    if arch.startswith("stable-diffusion-xl"):
        return Family.SDXL
    if arch.startswith("stable-diffusion-v2"):
        return Family.SD2
    if arch.startswith("stable-diffusion-v1"):
        return Family.SD1
    return Family.UNKNOWN


def _read(path: Path, model: LoadedModel):
    regular_safetensors(path, "LoRA file", LoraError)
    try:
        out = type(model.pipeline).lora_state_dict(str(path), return_lora_metadata=True)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise LoraError(f"{path} is not a LoRA CraftStudio can read ({exc}).") from exc
    state_dict, alphas = out[0], out[1]
    metadata = out[2] if len(out) > 2 else None
    return state_dict, alphas, metadata


def _file_metadata(path: Path) -> dict[str, str]:
    header = check_safetensors_file(path)
    meta = header.get("__metadata__") or {}
    return {k: v for k, v in meta.items() if isinstance(v, str)}


def load_lora(path: str | Path, model: LoadedModel, adapter_name: str = "craft_tmp") -> LoraWeights:
    """Read `path` into per-module deltas for `model`'s UNet; raise `LoraError` if it does not fit."""
    path = Path(path).expanduser()
    state_dict, alphas, metadata = _read(path, model)
    sha256 = file_sha256(path)
    check_finite(sha256, path, lambda: state_dict.items(), "LoRA file")
    file_meta = _file_metadata(path)
    unet_sd = {k: v for k, v in state_dict.items() if k.startswith("unet.")}
    _check_pairs(path, unet_sd)
    te_keys = sum(1 for k in state_dict if k.startswith("text_encoder"))
    # UNKNOWN (e.g. no cross-attention layers in the file): the shape check while loading decides.
    family = family_of_lora(state_dict, file_meta)
    if family is not model.family and family is not Family.UNKNOWN:
        raise LoraError(f"{path.name} is a LoRA for {family.label} models, but the loaded base model "
                        f"{model.name} is {model.family.label}: choose a LoRA made for {model.family.label}.")
    if not unet_sd:
        raise LoraError(f"{path.name} holds no UNet weights (only text-encoder weights): CRAFT needs "
                        "UNet LoRA layers.")
    unet = model.unet
    unet_alphas = {k: v for k, v in (alphas or {}).items() if k.startswith("unet.")} or None
    try:
        type(model.pipeline).load_lora_into_unet(
            unet_sd, unet_alphas, unet, adapter_name=adapter_name, metadata=metadata,
        )
        deltas = _extract(unet, adapter_name)
    except (RuntimeError, ValueError, KeyError, IndexError) as exc:
        raise LoraError(f"{path.name} does not fit the base model {model.name} ({model.family.label}): "
                        f"its layers have other names or shapes ({_first_line(exc)}). It was probably made "
                        f"for another base model.") from exc
    finally:
        _remove_adapter(unet, adapter_name)
    expected = len({k.split(".lora")[0].split(".processor")[0] for k in unet_sd})
    if len(deltas) < expected:
        raise LoraError(f"{path.name} has {expected} UNet layers but only {len(deltas)} exist in "
                        f"{model.name}: it was made for another base model.")
    if te_keys:
        log.info("%s: %d text-encoder tensors are not used (CRAFT routes UNet layers)", path.name, te_keys)
    return LoraWeights(path=path, sha256=sha256, family=model.family, deltas=deltas,
                       text_encoder_keys=te_keys, metadata=file_meta)


def _check_pairs(path: Path, unet_sd: dict[str, torch.Tensor]) -> None:
    """Every LoRA layer needs both its down (A) and up (B) matrix."""
    downs, ups = set(), set()
    for key in unet_sd:
        stem = re.sub(r"\.(lora_A|lora_B|lora\.down|lora\.up|down|up)\.weight$", "", key)
        if re.search(r"(lora_A|lora\.down|\.down)\.weight$", key):
            downs.add(stem)
        elif re.search(r"(lora_B|lora\.up|\.up)\.weight$", key):
            ups.add(stem)
    missing = sorted(downs ^ ups)
    if missing:
        raise LoraError(f"{path.name} is incomplete: {len(missing)} layer(s) lack their down or up matrix "
                        f"(e.g. {missing[0]}); download or export the LoRA again.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _extract(unet, adapter_name: str) -> dict[str, ModuleDelta]:
    from peft.tuners.lora import LoraLayer

    deltas: dict[str, ModuleDelta] = {}
    for name, module in unet.named_modules():
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
            deltas[name] = ModuleDelta(
                down=copy.deepcopy(module.lora_A[adapter_name]).requires_grad_(False),
                up=copy.deepcopy(module.lora_B[adapter_name]).requires_grad_(False),
                scale=float(module.scaling[adapter_name]),
            )
    return deltas


def _remove_adapter(unet, adapter_name: str) -> None:
    """Leave the UNet as it was, also after a load that failed half-way."""
    from peft.tuners.lora import LoraLayer

    config = getattr(unet, "peft_config", None) or {}
    if set(config) - {adapter_name}:
        unet.delete_adapters(adapter_name)
    elif config or any(isinstance(m, LoraLayer) for m in unet.modules()):
        unet.unload_lora()  # puts the plain modules back
