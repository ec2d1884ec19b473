"""The rank-constrained backbone W_init (Eq. 1–4): file format and application.

A backbone file holds, per target module l, the merged orthonormal basis Q_l (d_in × r_l) as
`<module>.q` tensors, with metadata naming the base model fingerprint (`craft.base_model_hash`) and family, r_max, r_min
and the training request. Applying it sets W_l ← W_l − (W_l Q_l) Q_lᵀ in place (computed in
float32), which removes the merged content/style subspace from every target projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from craftstudio.domain.errors import LoraError, NonFiniteOutput
from craftstudio.domain.family import Family
from craftstudio.engine.fingerprint import file_sha256
from craftstudio.engine.inputs import check_finite, regular_safetensors
from craftstudio.engine.loader import check_safetensors_file

FORMAT = "craft-backbone"
FORMAT_VERSION = "1"


@dataclass
class Backbone:
    path: Path | None
    bases: dict[str, torch.Tensor]  # module name → Q (d_in × r), orthonormal columns
    metadata: dict[str, str]

    @property
    def fingerprint(self) -> str:
        return self.metadata.get("craft.base_model_hash", "")

    @property
    def family(self) -> Family:
        return Family(self.metadata.get("craft.family", "unknown"))


def save_backbone(path: str | Path, bases: dict[str, torch.Tensor], *, fingerprint: str, family: Family,
                  base_name: str, r_max: int, r_min: int, extra: dict[str, str] | None = None) -> Path:
    """Write a backbone file atomically (temp file, then rename)."""
    from safetensors.torch import save_file

    from craftstudio.engine.atomic import atomic_path

    metadata = {
        "craft.format": FORMAT, "craft.format_version": FORMAT_VERSION, "craft.kind": "backbone",
        "craft.base_model_hash": fingerprint, "craft.family": family.value,
        "craft.base_name": base_name, "craft.r_max": str(r_max), "craft.r_min": str(r_min),
        **(extra or {}),
    }
    tensors = {f"{name}.q": q.detach().to("cpu", torch.float32).contiguous() for name, q in bases.items()}
    bad = next((name for name, q in tensors.items() if not bool(torch.isfinite(q).all())), None)
    if bad is not None:
        raise NonFiniteOutput(f"The trained backbone holds non-finite values (NaN or Inf) in {bad}, so "
                              f"{path} was not written: lower the learning rate and train again.")
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def load_backbone(path: str | Path) -> Backbone:
    from safetensors import safe_open

    path = regular_safetensors(path, "Backbone file", LoraError)
    metadata = check_safetensors_file(path)["__metadata__"]
    if metadata.get("craft.format") != FORMAT:
        raise LoraError(f"{path} is not a CraftStudio backbone file (it may be a LoRA or a model).")
    bases = {}
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
            if key.endswith(".q"):
                bases[key[:-2]] = fh.get_tensor(key)
    check_finite(file_sha256(path), path, lambda: bases.items(), "Backbone file")
    for name, q in bases.items():
        if q.ndim != 2:
            raise LoraError(f"Backbone file {path} is damaged: the basis of {name} has shape {tuple(q.shape)}, "
                            "not a matrix; train it again or turn the backbone off.")
    return Backbone(path=path, bases=bases, metadata=dict(metadata))


def check_fits(backbone: Backbone, *, fingerprint: str, family: Family, model_name: str) -> None:
    if backbone.family is not family or (backbone.fingerprint and backbone.fingerprint != fingerprint):
        made_for = backbone.metadata.get("craft.base_name", "another model")
        raise LoraError(f"Backbone {backbone.path.name if backbone.path else ''} was trained for the base "
                        f"model {made_for} ({backbone.family.label}), not for {model_name}: train a "
                        "backbone for this model or turn the backbone off.")


@torch.no_grad()
def apply_backbone(unet: torch.nn.Module, bases: dict[str, torch.Tensor]) -> int:
    """W ← W − (W Q) Qᵀ for every module in `bases`; returns how many modules changed."""
    for name, q in bases.items():
        try:
            layer = unet.get_submodule(name)
        except AttributeError as exc:
            raise LoraError(f"The backbone names a layer the model does not have ({name}).") from exc
        w = layer.weight
        if w.shape[1] != q.shape[0]:
            raise LoraError(f"The backbone's basis for {name} has {q.shape[0]} rows but the layer takes "
                            f"{w.shape[1]} inputs: it was made for another base model.")
        w32 = w.float()
        q32 = q.to(w.device, torch.float32)
        w.copy_((w32 - (w32 @ q32) @ q32.T).to(w.dtype))
    return len(bases)
