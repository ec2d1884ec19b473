"""Prompt routing's layer sets (Eq. 7): which UNet blocks a content and a style LoRA may touch.

I_c holds the shallow and middle layers (structure, identity), I_s the deep decoder layers
(texture, rendering). The maps are data, one per architecture family, matched by block prefix;
users may override any block. For SDXL the reference code names blocks that do not exist; we use
DESIGN.md's sets. SD1.x/SD2.x get the analogous split of their block structure: every encoder
block, the mid block and the first attention of the lowest-resolution decoder block with
attention (`up_blocks.1`) are content; the rest of the decoder is style.

Target modules (for the backbone and LoRA training) are the attention projections `to_q`,
`to_k`, `to_v`, `to_out.0` of every UNet attention, listed in depth order (down → mid → up).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from craftstudio.domain.errors import RequestError
from craftstudio.domain.family import Family

CONTENT, STYLE, NONE = "content", "style", "none"
ROLES = (CONTENT, STYLE, NONE)

LAYER_MAPS: dict[str, dict[str, tuple[str, ...]]] = {
    "sd": {
        CONTENT: ("down_blocks", "mid_block", "up_blocks.0", "up_blocks.1.attentions.0"),
        STYLE: ("up_blocks.1.attentions.1", "up_blocks.1.attentions.2", "up_blocks.2", "up_blocks.3"),
    },
    "sdxl": {
        CONTENT: ("down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.0.attentions.0"),
        STYLE: ("up_blocks.0.attentions.1", "up_blocks.0.attentions.2", "up_blocks.1"),
    },
}
# B-LoRA (Frenkel et al., arXiv 2403.14572): content and style each in ONE transformer block of
# SDXL's first decoder stage, `up_blocks.0.attentions.0` and `.1`, nothing elsewhere. *Decision:*
# SD1.x/SD2.x get the analogous pair, the first two attentions of their lowest-resolution decoder
# block with attention (`up_blocks.1`).
B_LORA_MAPS: dict[str, dict[str, tuple[str, ...]]] = {
    "sd": {CONTENT: ("up_blocks.1.attentions.0",), STYLE: ("up_blocks.1.attentions.1",)},
    "sdxl": {CONTENT: ("up_blocks.0.attentions.0",), STYLE: ("up_blocks.0.attentions.1",)},
}
PRESET_MAPS = {"craft": LAYER_MAPS, "b-lora": B_LORA_MAPS}
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
_SECTION = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


def map_for(family: Family | str, preset: str = "craft") -> dict[str, tuple[str, ...]]:
    maps = PRESET_MAPS.get(preset)
    if maps is None:
        raise RequestError(f"Unknown routing preset {preset!r}: choose one of {', '.join(PRESET_MAPS)}.")
    return maps["sdxl" if Family(family) is Family.SDXL else "sd"]


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class LayerSets:
    """Block prefixes per role; the longest matching prefix decides, overrides first."""

    content: tuple[str, ...]
    style: tuple[str, ...]
    overrides: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_family(cls, family: Family | str, overrides: Mapping[str, str] | None = None,
                   preset: str = "craft") -> LayerSets:
        base = map_for(family, preset)
        for block, role in (overrides or {}).items():
            if role not in ROLES:
                raise RequestError(f"Routing override for {block!r} must be one of {', '.join(ROLES)}, "
                                   f"not {role!r}.")
        return cls(base[CONTENT], base[STYLE], tuple(sorted((overrides or {}).items())))

    def role_of(self, module_name: str) -> str:
        best, role = -1, NONE
        for prefixes, candidate in ((self.content, CONTENT), (self.style, STYLE)):
            for prefix in prefixes:
                if _matches(module_name, prefix) and len(prefix) > best:
                    best, role = len(prefix), candidate
        best_override = -1
        for prefix, candidate in self.overrides:
            if _matches(module_name, prefix) and len(prefix) > best_override:
                best_override, role = len(prefix), candidate
        return role


def depth_key(name: str) -> tuple:
    """Sort key for forward (depth) order: down blocks, mid block, up blocks, then by index."""
    parts = name.split(".")
    section = _SECTION.get(parts[0], 3)
    numbers = tuple(int(p) if p.isdigit() else -1 for p in parts[1:4])
    return (section, *numbers)


def attention_modules(unet) -> list[str]:
    """Names of every attention module (diffusers `Attention`) of the UNet, in depth order."""
    from diffusers.models.attention_processor import Attention

    names = [n for n, m in unet.named_modules() if isinstance(m, Attention)]
    return sorted(names, key=depth_key)  # sorted() is stable: registration order within a block


def target_modules(unet) -> list[str]:
    """The projection modules of every attention, depth order, 4 per attention (same depth l)."""
    return [f"{attn}.{proj}" for attn in attention_modules(unet) for proj in PROJECTIONS]


def modules_by_role(names: Iterable[str], sets: LayerSets) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {CONTENT: [], STYLE: [], NONE: []}
    for name in names:
        out[sets.role_of(name)].append(name)
    return out


def describe(unet, family: Family | str, overrides: Mapping[str, str] | None = None,
             preset: str = "craft") -> dict[str, list[str]]:
    """Which attention blocks each set holds (for the UI and the README)."""
    sets = LayerSets.for_family(family, overrides, preset)
    blocks: dict[str, list[str]] = {CONTENT: [], STYLE: [], NONE: []}
    for attn in attention_modules(unet):
        block = re.sub(r"\.transformer_blocks\..*$", "", attn)
        role = sets.role_of(attn)
        if block not in blocks[role]:
            blocks[role].append(block)
    return blocks
