"""Load a base model (diffusers folder or single-file `.safetensors`) with local files only.

Pickle formats are refused before anything is read: a `.ckpt`/`.pt`/`.bin`/`.pth` file can run
arbitrary code when unpickled. Family detection: SDXL if the pipeline has a second text encoder,
else SD2.x when the UNet's cross-attention width is 1024, else SD1.x.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from craftstudio.domain.errors import ModelError
from craftstudio.domain.family import Family
from craftstudio.domain.safetensors_header import UnreadableFile, read_header
from craftstudio.engine.devices import is_out_of_memory
from craftstudio.engine.inputs import check_model, read_model_index

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}


@dataclass
class LoadedModel:
    """A loaded base model: the diffusers pipeline (its components) plus what we know of it."""

    pipeline: Any
    family: Family
    name: str
    path: Path
    device: torch.device
    dtype: torch.dtype
    backbone: Any = None  # the applied `Backbone`, if any (W_init baked into the weights)

    @property
    def unet(self):
        return self.pipeline.unet

    @property
    def vae(self):
        return self.pipeline.vae


def family_of(pipeline: Any) -> Family:
    if getattr(pipeline, "text_encoder_2", None) is not None:
        return Family.SDXL
    return Family.SD2 if pipeline.unet.config.cross_attention_dim == 1024 else Family.SD1


def check_safetensors_file(path: Path) -> dict[str, Any]:
    """Read and judge a safetensors header (`domain/safetensors_header.py`, the same rules as the
    library's); raise `ModelError` naming the file if it is broken. Returns the header as JSON
    data: tensor name → {"dtype", "shape"}, plus "__metadata__" (text → text)."""
    try:
        header = read_header(path)
    except UnreadableFile as exc:
        raise ModelError(f"{path} is not a valid .safetensors file ({exc.reason}): download or copy it "
                         "again.") from exc
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    data: dict[str, Any] = {name: {"dtype": t.dtype, "shape": list(t.shape)} for name, t in header.tensors.items()}
    data["__metadata__"] = dict(header.metadata)
    return data


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(f"{path} is a pickle checkpoint ({path.suffix}), which can run code when loaded; "
                         "CraftStudio only loads .safetensors files or diffusers folders with "
                         "safetensors weights: convert it to .safetensors first.")


def check_folder(path: Path) -> None:
    """A diffusers folder: a model_index.json object, unet/ and vae/ with sound safetensors headers."""
    if not (path / "model_index.json").is_file():
        raise ModelError(f"{path} is not a diffusers model folder (no model_index.json): choose the "
                         "folder that holds model_index.json, unet/ and vae/, or a .safetensors file.")
    read_model_index(path)
    for component in ("unet", "vae"):
        sub = path / component
        if not sub.is_dir():
            raise ModelError(f"{path} is missing its {component}/ folder: the model is incomplete.")
        weights = list(sub.glob("*.safetensors"))
        if not weights:
            if any(sub.glob("*.bin")):
                raise ModelError(f"{sub} holds only pickle weights (.bin); CraftStudio loads safetensors "
                                 "only: convert the model to safetensors first.")
            raise ModelError(f"{sub} holds no weights: the model is incomplete.")
        for weight in weights:
            check_safetensors_file(weight)


def _pipeline_class(path: Path):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    index = read_model_index(path)
    if "text_encoder_2" in index or "XL" in index.get("_class_name", ""):
        return StableDiffusionXLPipeline
    return StableDiffusionPipeline


class _NoTorchvisionNotice(logging.Filter):
    """Drops transformers' notice that an image processor falls back to its PIL version: we never
    use image processors (and torchvision is deliberately absent), yet diffusers' pipeline imports
    print it twice on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


def _quiet_libraries() -> None:
    # Their tqdm bars would clutter the CLI's own progress bar and the GUI's log.
    notices = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _NoTorchvisionNotice) for f in notices.filters):
        notices.addFilter(_NoTorchvisionNotice())
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def load_model(path: str | Path, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """Load a base model from a diffusers folder or a single `.safetensors` checkpoint."""
    _quiet_libraries()
    path = Path(path).expanduser()
    refuse_pickle(path)
    check_model(path)
    if path.is_dir():
        cls = _pipeline_class(path)
        kwargs: dict[str, Any] = {}
        if cls.__name__ == "StableDiffusionPipeline":
            kwargs = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        try:
            pipeline = cls.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                           dtype=dtype, **kwargs)
        except Exception as exc:  # a damaged config or weight file: any library error, one sentence
            if is_out_of_memory(exc):
                raise
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelError(f"{path} could not be loaded as a diffusers model ({detail}).") from exc
    elif path.suffix.lower() == ".safetensors":
        from craftstudio.engine.single_file import load_single_file

        check_safetensors_file(path)
        pipeline = load_single_file(path, dtype)
    else:
        raise ModelError(f"{path} is not a model: choose a diffusers folder or a .safetensors checkpoint.")
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device)
    family = family_of(pipeline)
    log.info("loaded %s (%s) on %s as %s", path, family.label, device, dtype)
    name = path.stem if path.is_file() else path.name
    return LoadedModel(pipeline=pipeline, family=family, name=name, path=path, device=device, dtype=dtype)
