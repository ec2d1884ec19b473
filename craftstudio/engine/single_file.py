"""Load single-file (original LDM layout) SD1.x/SD2.x/SDXL `.safetensors` checkpoints offline.

diffusers' `from_single_file` converts the weights, but it needs the diffusers configs of the
architecture, normally fetched from the Hub. We ship those configs (resources/model_configs) and
CLIP's BPE merges (resources/tokenizers), and lay them out as a temporary local config folder.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch

from craftstudio.domain.errors import ModelError
from craftstudio.domain.family import Family
from craftstudio.domain.resources import resources_dir
from craftstudio.engine.clip_bpe import bytes_to_unicode
from craftstudio.engine.loader import check_safetensors_file

_CLIP_MERGES = 49152 - 256 - 2  # as in CLIP's simple_tokenizer


def family_of_checkpoint(path: Path, header: dict[str, Any] | None = None) -> Family:
    """Tell the family of an LDM-layout checkpoint from its tensor names and shapes."""
    header = header or check_safetensors_file(path)
    keys = [k for k in header if k != "__metadata__"]
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        hint = " It looks like a LoRA: add it as a LoRA instead." if any("lora" in k for k in keys) else ""
        raise ModelError(f"{path} is not a Stable Diffusion checkpoint (no UNet weights).{hint}")
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return Family.SDXL
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return Family.SD2
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return Family.SD1
    raise ModelError(f"{path} is a checkpoint of an architecture CraftStudio does not know "
                     "(not SD1.x, SD2.x or SDXL).")


def family_config(family: Family) -> dict[str, Any]:
    return json.loads((resources_dir() / "model_configs" / f"{family.value}.json").read_text())




@cache
def _clip_vocab_and_merges() -> tuple[str, str]:
    path = resources_dir() / "tokenizers" / "clip_bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")[1:_CLIP_MERGES + 1]
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in lines]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return json.dumps({tok: i for i, tok in enumerate(vocab)}), "#version: 0.2\n" + "\n".join(lines) + "\n"


def write_clip_tokenizer(folder: Path, pad_token: str) -> None:
    vocab, merges = _clip_vocab_and_merges()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(vocab, encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }))


def unet_in_channels(header: dict[str, Any]) -> int | None:
    """The UNet's input channels from an LDM checkpoint's first convolution (9 = inpainting)."""
    conv = header.get("model.diffusion_model.input_blocks.0.0.weight")
    shape = conv.get("shape") if isinstance(conv, dict) else None
    return int(shape[1]) if isinstance(shape, list) and len(shape) == 4 else None


def write_config_folder(family: Family, folder: Path, in_channels: int | None = None) -> None:
    """Lay out a diffusers config folder (configs and tokenizers, no weights) for `family`;
    `in_channels` overrides the UNet's (inpainting checkpoints take 9)."""
    cfg = family_config(family)
    if in_channels is not None:
        cfg["unet"] = {**cfg["unet"], "in_channels": in_channels}
    index: dict[str, Any] = {"_class_name": cfg["pipeline"], "_diffusers_version": "0.42.1",
                             "unet": ["diffusers", "UNet2DConditionModel"],
                             "vae": ["diffusers", "AutoencoderKL"],
                             "scheduler": ["diffusers", cfg["scheduler"]["_class_name"]]}
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if name in cfg:
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / "config.json").write_text(json.dumps(cfg[name]))
    for name in ("text_encoder", "text_encoder_2"):
        if name in cfg:
            index[name] = ["transformers", cfg[name]["architectures"][0]]
    for name in ("tokenizer", "tokenizer_2"):
        if name in cfg:
            index[name] = ["transformers", "CLIPTokenizer"]
            write_clip_tokenizer(folder / name, cfg[name]["pad_token"])
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(cfg["scheduler"]))
    if cfg["pipeline"] == "StableDiffusionPipeline":
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    else:
        index.update(force_zeros_for_empty_prompt=True)
    (folder / "model_index.json").write_text(json.dumps(index))


_COMPONENTS = {"unet": "UNet", "vae": "VAE", "text_encoder": "text encoder",
               "text_encoder_2": "second text encoder"}
_CLASS_COMPONENTS = {"UNet2DConditionModel": "unet", "AutoencoderKL": "vae", "CLIPTextModel": "text_encoder",
                     "CLIPTextModelWithProjection": "text_encoder_2"}


def load_single_file(path: Path, dtype: torch.dtype, config_dir: Path | None = None):
    """Load an LDM-layout checkpoint as a diffusers pipeline; raise `ModelError` if it is incomplete.

    `config_dir` replaces the shipped full-size configs with another diffusers config folder
    (model_index.json, component configs, tokenizers): tests load tiny checkpoints this way. It
    must hold no weights, or diffusers would quietly take a component missing from the checkpoint
    from there.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    header = check_safetensors_file(path)
    family = family_of_checkpoint(path, header)
    cls = StableDiffusionXLPipeline if family is Family.SDXL else StableDiffusionPipeline
    kwargs: dict[str, Any] = {}
    if cls is StableDiffusionPipeline:
        kwargs = {"safety_checker": None, "requires_safety_checker": False}
    if config_dir is not None and any(Path(config_dir).rglob("*.safetensors")):
        raise ValueError(f"config folder {config_dir} holds weights; give configs and tokenizers only")
    with tempfile.TemporaryDirectory(prefix="craftstudio-config-") as tmp:
        if config_dir is None:
            config_dir = Path(tmp)
            write_config_folder(family, config_dir, unet_in_channels(header))
        try:
            pipeline = cls.from_single_file(str(path), config=str(config_dir), local_files_only=True,
                                            dtype=dtype, **kwargs)
        except SingleFileComponentError as exc:
            # "Failed to load AutoencoderKL. Weights for this component appear to be missing ..."
            name = next((n for c, n in _CLASS_COMPONENTS.items() if f"load {c}." in str(exc)), "")
            what = f"its {_COMPONENTS[name]} weights" if name else "the weights of a component"
            raise ModelError(f"{path} is incomplete: {what} are missing (not a full "
                             f"{family.label} checkpoint).") from exc
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            if "meta tensor" in str(exc):  # weights that the checkpoint lacks stay unallocated
                raise ModelError(f"{path} is incomplete: some weights are missing (not a full "
                                 f"{family.label} checkpoint).") from exc
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{path} could not be loaded as an {family.label} checkpoint ({detail}).") from exc
    for name, label in _COMPONENTS.items():
        module = getattr(pipeline, name, None)
        if module is not None and any(t.is_meta for t in (*module.parameters(), *module.buffers())):
            raise ModelError(f"{path} is incomplete: some of its {label} weights are missing (not a full "
                             f"{family.label} checkpoint).")
    return pipeline
