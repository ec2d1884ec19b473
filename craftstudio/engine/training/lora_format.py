"""Writing trained LoRAs: stock-diffusers layout plus ModelSpec and `craft.*` metadata.

The tensors and the adapter config are written by diffusers itself, following stack-notes: the
raw peft state dict (`get_peft_model_state_dict(unet, adapter_name=...)`, never converted) via
`save_lora_weights(..., unet_lora_adapter_metadata=peft_config.to_dict())`, so stock
`load_lora_weights` reads every layer and its `lora_alpha`. diffusers writes into a folder, so
it writes into a temporary folder beside the output; we then add our metadata and write the
final file through a temporary file renamed into place: a failure (disk full, cancel) leaves no
partial file and an existing file untouched.

Metadata (all str → str, as safetensors requires): ModelSpec (`modelspec.sai_model_spec`,
`architecture`, `implementation`, `title`, `trigger_phrase`, `category` = the role, `date`,
`resolution`, `description`) and `craft.kind` = lora, `craft.role`, `craft.layers` (JSON list of
the attention blocks trained), `craft.backbone` (sha256 of the backbone file, "" for none),
`craft.base_fingerprint`, `craft.base_family`, `craft.request` (JSON of the resolved request).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import torch

from craftstudio.domain.errors import NonFiniteOutput, UserError
from craftstudio.domain.family import Family
from craftstudio.domain.training import LoraTrainRequest
from craftstudio.engine.atomic import atomic_path
from craftstudio.engine.training.loop import check_output

WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def modelspec_architecture(family: Family, prediction_type: str = "epsilon") -> str:
    if family is Family.SDXL:
        return "stable-diffusion-xl-v1-base/lora"
    if family is Family.SD2:
        return "stable-diffusion-v2-768-v/lora" if prediction_type == "v_prediction" else \
            "stable-diffusion-v2-512/lora"
    return "stable-diffusion-v1/lora"


def trained_blocks(module_names: list[str]) -> list[str]:
    """The attention blocks (e.g. `down_blocks.1.attentions.0`) that the trained modules belong to."""
    blocks: list[str] = []
    for name in module_names:
        block = re.sub(r"\.transformer_blocks\..*$", "", name)
        if block not in blocks:
            blocks.append(block)
    return blocks


def lora_metadata(request: LoraTrainRequest, *, family: Family, prediction_type: str, resolution: int,
                  module_names: list[str], backbone_sha256: str, base_fingerprint: str) -> dict[str, str]:
    out = Path(request.out)
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": modelspec_architecture(family, prediction_type),
        "modelspec.implementation": "diffusers",
        "modelspec.title": request.title or out.stem,
        "modelspec.trigger_phrase": request.trigger,
        "modelspec.category": request.role,
        "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.description": f"CRAFT {request.role} LoRA trained by CraftStudio on "
                                 f"{len(module_names)} {request.role}-set layers",
        "craft.kind": "lora",
        "craft.role": request.role,
        "craft.layers": json.dumps(trained_blocks(module_names)),
        "craft.backbone": backbone_sha256,
        "craft.base_fingerprint": base_fingerprint,
        "craft.base_family": family.value,
        "craft.request": json.dumps(request.to_dict()),
    }


def save_lora(unet: torch.nn.Module, adapter_name: str, pipeline_class: type, out: Path,
              metadata: dict[str, str], *, overwrite: bool) -> Path:
    """Write the adapter `adapter_name` of `unet` to `out` in the stock diffusers layout."""
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in get_peft_model_state_dict(unet, adapter_name=adapter_name).items()}
    bad = next((name for name, t in state.items() if not bool(torch.isfinite(t).all())), None)
    if bad is not None:
        raise NonFiniteOutput(f"The trained LoRA holds non-finite values (NaN or Inf) in {bad}, so {out} was "
                              "not written: lower the learning rate or use float32, and train again.")
    config = unet.peft_config[adapter_name].to_dict()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as folder:
            pipeline_class.save_lora_weights(folder, unet_lora_layers=state, weight_name=WEIGHT_NAME,
                                             unet_lora_adapter_metadata=config)
            written = Path(folder) / WEIGHT_NAME
            with safe_open(str(written), framework="pt") as fh:
                tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
                stock = dict(fh.metadata() or {})
            check_output(out, overwrite)
            with atomic_path(out) as tmp:
                save_file(tensors, str(tmp), metadata={**stock, **metadata})
    except OSError as exc:  # the staging folder failed (atomic_path words its own failures)
        raise UserError(f"Could not write {out}: {exc.strerror or exc}; free some disk space or choose "
                        "another folder.") from exc
    return out
