"""Export a diffusers pipeline folder as one original-layout (LDM/SGM) `.safetensors` checkpoint.

The inverse of diffusers' single-file conversion (`convert_ldm_unet_checkpoint`,
`convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`, `convert_open_clip_checkpoint`), so
tests can build tiny single-file checkpoints and load them through the project's loader. The
exact-name tables come from diffusers itself (`DIFFUSERS_TO_LDM_MAPPING`); the block numbering is
derived from the weights present (which blocks have attentions, down/upsamplers), not from a
fixed SD layout. Run `python -m tests.kit.ldm_export FOLDER OUT.safetensors` for manual use.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch

StateDict = dict[str, torch.Tensor]

# diffusers ResnetBlock2D names -> LDM ResBlock names (UNet).
_UNET_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
                ("conv_shortcut", "skip_connection"))
# diffusers VAE mid-block Attention names -> LDM AttnBlock names (1x1 convs there).
_VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
             ("to_out.0.", "proj_out."))


def _mapping(section: str) -> dict[str, str]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    return DIFFUSERS_TO_LDM_MAPPING[section]


def _load(folder: Path, component: str) -> StateDict:
    from safetensors.torch import load_file

    state: StateDict = {}
    for weights in sorted((folder / component).glob("*.safetensors")):
        state.update(load_file(weights))
    if not state:
        raise FileNotFoundError(f"{folder / component} holds no safetensors weights")
    return state


def _rename(state: StateDict, exact: dict[str, str],
            prefixes: list[tuple[str, str, Callable[[str], str]]]) -> StateDict:
    """Map each key by `exact`, else by its longest matching prefix (then the suffix hook)."""
    out: StateDict = {}
    for key, value in state.items():
        if key in exact:
            out[exact[key]] = value
            continue
        match = max((p for p in prefixes if key.startswith(p[0])), key=lambda p: len(p[0]), default=None)
        if match is None:
            raise KeyError(f"no LDM name for {key!r}")
        old, new, suffix = match
        out[new + suffix(key[len(old):])] = value
    return out


def _replace_all(pairs: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        for old, new in pairs:
            text = text.replace(old, new)
        return text
    return apply


def _count(state: StateDict, pattern: str) -> int:
    return len({m[1] for k in state if (m := re.match(pattern, k))})


def unet_to_ldm(state: StateDict, layers_per_block: int) -> StateDict:
    """diffusers UNet2DConditionModel weights -> LDM `model.diffusion_model.*` names (no prefix)."""
    exact = {**_mapping("unet")["layers"], **_mapping("unet")["addition_embed_type"]}
    same, resnet = (lambda s: s), _replace_all(_UNET_RESNET)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in state)

    pairs: list[tuple[str, str, Callable[[str], str]]] = []
    n = 1  # input_blocks.0 is conv_in
    for b in range(_count(state, r"down_blocks\.(\d+)\.")):
        for j in range(layers_per_block):
            pairs += [(f"down_blocks.{b}.resnets.{j}.", f"input_blocks.{n}.0.", resnet),
                      (f"down_blocks.{b}.attentions.{j}.", f"input_blocks.{n}.1.", same)]
            n += 1
        if has(f"down_blocks.{b}.downsamplers."):
            pairs.append((f"down_blocks.{b}.downsamplers.0.conv.", f"input_blocks.{n}.0.op.", same))
            n += 1
    pairs += [("mid_block.resnets.0.", "middle_block.0.", resnet),
              ("mid_block.attentions.0.", "middle_block.1.", same),
              ("mid_block.resnets.1.", "middle_block.2.", resnet)]
    n = 0
    for b in range(_count(state, r"up_blocks\.(\d+)\.")):
        for j in range(layers_per_block + 1):
            pairs += [(f"up_blocks.{b}.resnets.{j}.", f"output_blocks.{n}.0.", resnet),
                      (f"up_blocks.{b}.attentions.{j}.", f"output_blocks.{n}.1.", same)]
            n += 1
        if has(f"up_blocks.{b}.upsamplers."):
            # The upsampler follows the last layer's resnet (.0) and attention (.1) if any.
            slot = 2 if has(f"up_blocks.{b}.attentions.") else 1
            pairs.append((f"up_blocks.{b}.upsamplers.0.", f"output_blocks.{n - 1}.{slot}.", same))
    return _rename(state, exact, pairs)


def vae_to_ldm(state: StateDict) -> StateDict:
    """diffusers AutoencoderKL weights -> LDM `first_stage_model.*` names (no prefix)."""
    resnet = _replace_all((("conv_shortcut", "nin_shortcut"),))
    attn = _replace_all(_VAE_ATTN)
    ups = _count(state, r"decoder\.up_blocks\.(\d+)\.")
    pairs: list[tuple[str, str, Callable[[str], str]]] = []
    for part in ("encoder", "decoder"):
        pairs += [(f"{part}.mid_block.resnets.{i}.", f"{part}.mid.block_{i + 1}.", resnet) for i in range(2)]
        pairs.append((f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", attn))
    for i in range(_count(state, r"encoder\.down_blocks\.(\d+)\.")):
        pairs += [(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.", resnet),
                  (f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.", resnet)]
    for i in range(ups):  # LDM numbers decoder levels from the lowest resolution up
        pairs += [(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{ups - 1 - i}.block.", resnet),
                  (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{ups - 1 - i}.upsample.", resnet)]
    out = _rename(state, _mapping("vae"), pairs)
    for key, value in out.items():
        # diffusers keeps the mid-block attention as Linear layers; LDM has 1x1 convolutions.
        if ".mid.attn_1." in key and key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            out[key] = value.reshape(*value.shape, 1, 1)
    return out


def clip_to_ldm(state: StateDict) -> StateDict:
    """transformers CLIPTextModel weights -> LDM `*.transformer.text_model.*` names (no prefix)."""
    return {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in state.items()
            if not k.endswith("position_ids")}


def clip_to_open_clip(state: StateDict) -> StateDict:
    """transformers CLIPTextModelWithProjection weights -> OpenCLIP names (SDXL's second encoder)."""
    exact = _mapping("openclip")["layers"]
    layer_names = [(d, o) for d, o in _mapping("openclip")["transformer"].items()
                   if not d.startswith("transformer.")]  # those only matter for SD2's layout
    out: StateDict = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key in exact:
            out[exact[key]] = value.T.contiguous() if key == "text_projection.weight" else value
            continue
        if not key.startswith("text_model.encoder.layers."):
            raise KeyError(f"no OpenCLIP name for {key!r}")
        name = key
        for diffusers_part, open_clip_part in layer_names:
            name = name.replace(diffusers_part, open_clip_part)
        if m := re.fullmatch(r"(.*\.attn)\.([qkv])_proj\.(weight|bias)", name):
            fused.setdefault(f"transformer.{m[1]}.in_proj_{m[3]}", {})[m[2]] = value
        else:
            out[f"transformer.{name}"] = value
    for key, parts in fused.items():  # OpenCLIP's nn.MultiheadAttention stores q, k, v stacked
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def _prefixed(prefix: str, state: StateDict) -> StateDict:
    return {prefix + k: v for k, v in state.items()}


def ldm_state_dict(folder: Path) -> StateDict:
    """The whole pipeline folder as one LDM-layout state dict (SD1.x/SD2-style CLIP or SDXL)."""
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text())
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    state = _prefixed("model.diffusion_model.",
                      unet_to_ldm(_load(folder, "unet"), unet_config["layers_per_block"]))
    state |= _prefixed("first_stage_model.", vae_to_ldm(_load(folder, "vae")))
    if "text_encoder_2" in index:
        state |= _prefixed("conditioner.embedders.0.transformer.", clip_to_ldm(_load(folder, "text_encoder")))
        state |= _prefixed("conditioner.embedders.1.model.", clip_to_open_clip(_load(folder, "text_encoder_2")))
    else:
        state |= _prefixed("cond_stage_model.transformer.", clip_to_ldm(_load(folder, "text_encoder")))
    return state


def export_checkpoint(folder: Path, out: Path, drop: str | None = None) -> Path:
    """Write `folder` as a single LDM-layout `.safetensors` file; `drop` cuts keys with that prefix."""
    from safetensors.torch import save_file

    state = ldm_state_dict(folder)
    if drop:
        state = {k: v for k, v in state.items() if not k.startswith(drop)}
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return Path(out)


def widen_text_encoder_2(folder: Path, hidden: int = 48, seed: int = 1) -> Path:
    """Rebuild a tiny SDXL folder's second text encoder wider than the first (UNet widened to match).

    diffusers tells SDXL's two encoders apart in a single file by width (768 vs 1280 in real SDXL):
    with equal widths it fills text_encoder_2 from the first encoder's weights. Edits in place.
    """
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModelWithProjection

    from tests.kit.tiny_models import _text_config, _vocab_size

    folder = Path(folder)
    first = json.loads((folder / "text_encoder" / "config.json").read_text())["hidden_size"]
    projection = json.loads((folder / "text_encoder_2" / "config.json").read_text())["projection_dim"]
    torch.manual_seed(seed)
    encoder = CLIPTextModelWithProjection(_text_config(_vocab_size(folder / "tokenizer_2"), hidden, projection))
    unet = UNet2DConditionModel.from_config({**UNet2DConditionModel.load_config(folder / "unet"),
                                             "cross_attention_dim": first + hidden})
    encoder.save_pretrained(folder / "text_encoder_2", safe_serialization=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    return folder


if __name__ == "__main__":
    print(export_checkpoint(Path(sys.argv[1]), Path(sys.argv[2])))
