"""Synthetic LoRA files with real key layouts and tiny tensors (benchmark and tests).

The key names and shapes follow what the real tools write (kohya sd-scripts for A1111/civitai,
diffusers `save_lora_weights`, peft `get_peft_model_state_dict`), so identification sees the same
evidence as on real files. The tensors are zeros; by default (`full=False`) only the first
transformer block of the UNet and the first text-encoder layer are written, which keeps files
small (tens of KB) while keeping every family-deciding key and shape.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4}

# SD1/SD2 UNet transformer blocks in diffusers naming, with their widths.
_SD_BLOCKS = ([(f"down_blocks.{b}.attentions.{a}", w) for b, w in ((0, 320), (1, 640), (2, 1280)) for a in (0, 1)]
              + [("mid_block.attentions.0", 1280)]
              + [(f"up_blocks.{b}.attentions.{a}", w) for b, w in ((1, 1280), (2, 640), (3, 320)) for a in (0, 1, 2)])
# SDXL UNet transformer blocks: (diffusers name, SGM name, width, transformer depth).
_SDXL_BLOCKS = (
    [(f"down_blocks.1.attentions.{a}", f"input_blocks.{4 + a}.1", 640, 2) for a in (0, 1)]
    + [(f"down_blocks.2.attentions.{a}", f"input_blocks.{7 + a}.1", 1280, 10) for a in (0, 1)]
    + [("mid_block.attentions.0", "middle_block.1", 1280, 10)]
    + [(f"up_blocks.0.attentions.{a}", f"output_blocks.{a}.1", 1280, 10) for a in (0, 1, 2)]
    + [(f"up_blocks.1.attentions.{a}", f"output_blocks.{3 + a}.1", 640, 2) for a in (0, 1, 2)]
)
_TE_PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")


def write_safetensors(path: str | Path, tensors: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None,
                      *, dtype: str = "F16") -> Path:
    """A valid safetensors file of zero tensors with these shapes (no numpy or torch needed)."""
    path = Path(path)
    header: dict[str, object] = {}
    offset = 0
    for name, shape in tensors.items():
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format aligns the data to 8 bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.write(bytes(offset))
    return path


def _unet_modules(family: str, full: bool) -> list[tuple[str, int, int, str]]:
    """(diffusers module path, in_features, out_features, SGM module path) of attention projections."""
    cross = {"sd1": 768, "sd2": 1024, "sdxl": 2048}[family]
    out = []
    if family == "sdxl":
        blocks = [(d, s, w, depth) for d, s, w, depth in _SDXL_BLOCKS]
    else:
        blocks = [(d, d, w, 1) for d, w in _SD_BLOCKS]
    if not full:
        blocks = blocks[:1]
    for diff, sgm, width, depth in blocks:
        for t in range(depth if full else 1):
            for attn in ("attn1", "attn2"):
                for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                    d_in = cross if attn == "attn2" and proj in ("to_k", "to_v") else width
                    name = f"transformer_blocks.{t}.{attn}.{proj}"
                    out.append((f"{diff}.{name}", d_in, width, f"{sgm}.{name}"))
    return out


def _te_modules(width: int, layers: int, full: bool) -> list[tuple[str, int, int]]:
    return [(f"text_model.encoder.layers.{i}.self_attn.{p}", width, width)
            for i in range(layers if full else 1) for p in _TE_PROJ]


def kohya(family: str, rank: int = 4, *, full: bool = False, text_encoder: bool = True) -> dict[str, tuple[int, ...]]:
    """kohya sd-scripts keys: `lora_unet_…`, `lora_te_…` (SDXL: SGM names, `lora_te1_`/`lora_te2_`)."""
    tensors: dict[str, tuple[int, ...]] = {}

    def add(prefix: str, module: str, d_in: int, d_out: int) -> None:
        base = prefix + module.replace(".", "_")
        tensors[f"{base}.alpha"] = ()
        tensors[f"{base}.lora_down.weight"] = (rank, d_in)
        tensors[f"{base}.lora_up.weight"] = (d_out, rank)

    for diff, d_in, d_out, sgm in _unet_modules(family, full):
        add("lora_unet_", sgm if family == "sdxl" else diff, d_in, d_out)
    if text_encoder:
        if family == "sdxl":
            for module, d_in, d_out in _te_modules(768, 12, full):
                add("lora_te1_", module, d_in, d_out)
            for module, d_in, d_out in _te_modules(1280, 32, full):
                add("lora_te2_", module, d_in, d_out)
        else:
            width, layers = (768, 12) if family == "sd1" else (1024, 23)
            for module, d_in, d_out in _te_modules(width, layers, full):
                add("lora_te_", module, d_in, d_out)
    return tensors


def peft(family: str, rank: int = 4, *, prefix: str = "", full: bool = False,
         text_encoder: bool = False) -> dict[str, tuple[int, ...]]:
    """peft/diffusers keys `….lora_A.weight` (r, in) / `….lora_B.weight` (out, r). `prefix="unet."`
    gives the diffusers `save_lora_weights` layout; "" the raw peft state dict."""
    tensors: dict[str, tuple[int, ...]] = {}
    for diff, d_in, d_out, _ in _unet_modules(family, full):
        tensors[f"{prefix}{diff}.lora_A.weight"] = (rank, d_in)
        tensors[f"{prefix}{diff}.lora_B.weight"] = (d_out, rank)
    if text_encoder:
        encoders = [("text_encoder.", 768 if family != "sd2" else 1024, 12)]
        if family == "sdxl":
            encoders.append(("text_encoder_2.", 1280, 32))
        for te_prefix, width, layers in encoders:
            for module, d_in, d_out in _te_modules(width, layers, full):
                tensors[f"{te_prefix}{module}.lora_A.weight"] = (rank, d_in)
                tensors[f"{te_prefix}{module}.lora_B.weight"] = (d_out, rank)
    return tensors


def kohya_metadata(name: str, family: str, rank: int, tags: dict[str, int] | None = None) -> dict[str, str]:
    """The ss_* metadata kohya sd-scripts writes (a realistic subset)."""
    version = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}[family]
    return {
        "ss_output_name": name,
        "ss_base_model_version": version,
        "ss_v2": str(family == "sd2"),
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(rank / 2),
        "ss_learning_rate": "0.0001",
        "ss_num_train_images": "40",
        "ss_resolution": "(1024, 1024)" if family == "sdxl" else "(512, 512)",
        "ss_tag_frequency": json.dumps({"10_" + name: tags or {name: 40, "1girl": 31, "solo": 22}}),
        "ss_training_comment": "",
    }


LAYOUTS = {
    "kohya-sd1": lambda rank: kohya("sd1", rank),
    "kohya-sd2": lambda rank: kohya("sd2", rank),
    "kohya-sdxl": lambda rank: kohya("sdxl", rank),
    "diffusers-sd1": lambda rank: peft("sd1", rank, prefix="unet.", text_encoder=True),
    "diffusers-sdxl": lambda rank: peft("sdxl", rank, prefix="unet.", text_encoder=True),
    "peft-sd1": lambda rank: peft("sd1", rank),
}
