"""What a safetensors file is, from its header alone: kind, family, format, rank, role, triggers.

Evidence, strongest first (decision, recorded in each record's `meta["family_evidence"]`):
1. Shapes and names of the tensors, which cannot lie: a second text encoder (`lora_te2_`,
   `text_encoder_2.`, kohya's SDXL `lora_te1_`) means SDXL; the input width of a cross-attention
   key projection (`attn2 ... to_k`) is the text width: 768 → SD1.x, 1024 → SD2.x, 2048 → SDXL;
   otherwise the text encoder's own width (768 → SD1.x, 1024 → SD2.x).
2. Metadata written by trainers: `modelspec.architecture`, kohya's `ss_base_model_version`, `ss_v2`.
3. Nothing: family `unknown` (never a guess).

Kinds: `lora` (kohya, diffusers or peft key layout), `model` (a single-file SD checkpoint) and
`backbone` (CraftStudio's merged-bases file, marked by `craft.kind = backbone` or `craft.r_max`
metadata). Anything else raises `NotRecognised`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.family import Family
from craftstudio.library.header import SafetensorsHeader

KINDS = ("lora", "model", "backbone")
ROLES = ("content", "style", "other")
LORA_FORMATS = ("diffusers", "peft", "kohya")

_DOWN = re.compile(r"(?:\.lora_down\.weight|\.lora_A(?:\.[\w-]+)?\.weight|[._]lora\.down\.weight)$")
_LYCORIS = re.compile(r"\.(?:hada_w1_a|lokr_w1|lokr_w1_a|oft_blocks|oft_diag)$")
_CROSS_K = re.compile(r"attn2[._](?:processor[._])?to_k")
_TE = re.compile(r"^(?:lora_te1?_|text_encoder\.|te\.|lora_te_)")
_TE2 = re.compile(r"^(?:lora_te2_|text_encoder_2\.|te2\.)")
_Q_PROJ = re.compile(r"q_proj")
_CROSS_WIDTH = {768: Family.SD1, 1024: Family.SD2, 2048: Family.SDXL}
_TE_WIDTH = {768: Family.SD1, 1024: Family.SD2}
_CONTENT_WORDS = ("content", "character", "concept", "subject", "person", "celebrity", "object",
                  "identity", "clothing", "vehicle", "animal")
_STYLE_WORDS = ("style", "artstyle", "art style", "aesthetic")
# Metadata not worth keeping in the catalog (big images, big blobs).
_DROP_META = ("modelspec.thumbnail", "ssmd_cover_images")
MAX_META_VALUE = 64 * 1024
TRIGGERS_FROM_TAGS = 5


class NotRecognised(Exception):
    """A readable safetensors file that is neither a LoRA, a base model nor a backbone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Identity:
    kind: str
    family: Family = Family.UNKNOWN
    format: str = ""
    rank: int | None = None
    role: str = "other"
    title: str | None = None
    triggers: list[str] = field(default_factory=list)
    description: str | None = None
    base_model_hash: str | None = None  # backbones: the base model they belong to
    thumbnail: str | None = None  # ModelSpec data URI, decoded by sidecars.py
    meta: dict[str, Any] = field(default_factory=dict)


def family_from_metadata(meta: dict[str, str]) -> tuple[Family, str] | None:
    arch = meta.get("modelspec.architecture", "").lower()
    if arch:
        if arch.startswith("stable-diffusion-xl"):
            return Family.SDXL, f"modelspec.architecture {arch}"
        if arch.startswith("stable-diffusion-v2"):
            return Family.SD2, f"modelspec.architecture {arch}"
        if arch.startswith("stable-diffusion-v1"):
            return Family.SD1, f"modelspec.architecture {arch}"
    version = meta.get("ss_base_model_version", "").lower()
    if version.startswith("sdxl"):
        return Family.SDXL, f"ss_base_model_version {version}"
    if version.startswith("sd_v2"):
        return Family.SD2, f"ss_base_model_version {version}"
    if version.startswith("sd_v1"):
        return Family.SD1, f"ss_base_model_version {version}"
    v2 = meta.get("ss_v2", "")
    if v2 == "True":
        return Family.SD2, "ss_v2 True"
    if v2 == "False" and "ss_network_module" in meta:
        return Family.SD1, "ss_v2 False"
    return None


def family_from_words(text: str) -> Family | None:
    """civitai `baseModel` / A1111 `sd version` strings: "SD 1.5", "SDXL 1.0", "SD2", "Pony"."""
    t = text.lower().replace(" ", "").replace("_", "")
    if not t:
        return None
    if "xl" in t or t in ("pony", "illustrious", "noobai"):
        return Family.SDXL
    if t.startswith(("sd2", "sdv2", "sd2.")):
        return Family.SD2
    if t.startswith(("sd1", "sdv1")):
        return Family.SD1
    return None


def role_from_text(text: str) -> str | None:
    t = text.strip().lower()
    if t in ("content", "style", "other"):
        return t
    if any(w in t for w in _STYLE_WORDS):
        return "style"
    if any(w in t for w in _CONTENT_WORDS):
        return "content"
    return None


def split_phrases(text: str) -> list[str]:
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def triggers_from_tag_frequency(raw: str, limit: int = TRIGGERS_FROM_TAGS) -> list[str]:
    """The most frequent caption tags of a kohya training set (`ss_tag_frequency`)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return []
    counts: Counter[str] = Counter()
    if isinstance(data, dict):
        for folder in data.values():
            if isinstance(folder, dict):
                for tag, n in folder.items():
                    if isinstance(n, int | float) and str(tag).strip():
                        counts[str(tag).strip()] += int(n)
    return [tag for tag, _ in counts.most_common(limit)]


def _kept_metadata(meta: dict[str, str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in meta.items():
        if key in _DROP_META:
            continue
        kept[key] = value if len(value) <= MAX_META_VALUE else f"<{len(value)} characters, not kept>"
    return kept


def _family_from_keys(header: SafetensorsHeader, down_keys: list[str]) -> tuple[Family, str] | None:
    names = header.tensors
    if any(_TE2.match(k) for k in names):
        return Family.SDXL, "second text encoder keys"
    if any(k.startswith("lora_te1_") for k in names):
        return Family.SDXL, "kohya SDXL text encoder keys (lora_te1_)"
    for key in down_keys:
        shape = names[key].shape
        if _CROSS_K.search(key) and len(shape) >= 2 and shape[1] in _CROSS_WIDTH:
            return _CROSS_WIDTH[shape[1]], f"cross-attention width {shape[1]}"
    for key in down_keys:
        shape = names[key].shape
        if _TE.match(key) and _Q_PROJ.search(key) and len(shape) >= 2 and shape[1] in _TE_WIDTH:
            return _TE_WIDTH[shape[1]], f"text encoder width {shape[1]}"
    return None


def _lora_format(keys: list[str]) -> str:
    if any(k.startswith(("lora_unet_", "lora_te")) for k in keys):
        return "kohya"
    if any(".lora.down.weight" in k or "_lora.down.weight" in k for k in keys):
        return "diffusers"
    if any(k.startswith(("unet.", "text_encoder.", "text_encoder_2.")) for k in keys):
        return "diffusers"
    return "peft"


def _checkpoint_family(header: SafetensorsHeader) -> tuple[Family, str] | None:
    names = header.tensors
    if any(k.startswith("conditioner.embedders.1.") for k in names):
        return Family.SDXL, "second text encoder (conditioner.embedders.1)"
    for key, info in names.items():
        if (key.startswith("model.diffusion_model.") and _CROSS_K.search(key) and key.endswith(".weight")
                and len(info.shape) >= 2 and info.shape[1] in _CROSS_WIDTH):
            return _CROSS_WIDTH[info.shape[1]], f"cross-attention width {info.shape[1]}"
    if any(k.startswith("cond_stage_model.model.") for k in names):
        return Family.SD2, "OpenCLIP text encoder"
    return None


def _common(identity: Identity, meta: dict[str, str]) -> Identity:
    identity.title = meta.get("modelspec.title") or meta.get("ss_output_name") or None
    identity.description = meta.get("modelspec.description") or None
    identity.thumbnail = meta.get("modelspec.thumbnail") or None
    identity.meta = _kept_metadata(meta)
    return identity


def identify(header: SafetensorsHeader, path: str | Path | None = None) -> Identity:
    """Identify a parsed header. Raises `NotRecognised` for other safetensors files."""
    meta = header.metadata
    keys = list(header.tensors)
    craft_kind = meta.get("craft.kind", meta.get("craft.type", "")).lower()
    if craft_kind == "backbone" or ("craft.r_max" in meta and craft_kind != "lora"):
        ident = _common(Identity("backbone", format="craft-backbone"), meta)
        fam = family_from_metadata(meta)
        family_raw = meta.get("craft.family", "")
        if family_raw in Family._value2member_map_:
            ident.family, evidence = Family(family_raw), "craft.family"
        elif fam:
            ident.family, evidence = fam
        else:
            evidence = "none"
        ident.base_model_hash = (meta.get("craft.base_model_hash") or meta.get("craft.base_model")
                                 or None)
        ident.meta["family_evidence"] = evidence
        return ident

    down_keys = [k for k in keys if _DOWN.search(k)]
    lycoris = [k for k in keys if _LYCORIS.search(k)]
    if down_keys or lycoris:
        ident = _common(Identity("lora", format=_lora_format(down_keys or lycoris)), meta)
        ranks = Counter(header.tensors[k].shape[0] for k in down_keys if header.tensors[k].shape)
        if ranks:
            ident.rank = max(ranks)
            if len(ranks) > 1:
                ident.meta["ranks"] = sorted(ranks)
        elif meta.get("ss_network_dim", "").isdigit():
            ident.rank = int(meta["ss_network_dim"])
        if lycoris and not down_keys:
            ident.meta["algorithm"] = "lycoris"
        found = _family_from_keys(header, down_keys) or family_from_metadata(meta)
        ident.family, evidence = found if found else (Family.UNKNOWN, "none")
        ident.meta["family_evidence"] = evidence
        role = meta.get("craft.role", "").lower()
        if role in ROLES:
            ident.role = role
        elif meta.get("modelspec.category"):
            ident.role = role_from_text(meta["modelspec.category"]) or "other"
        if meta.get("modelspec.trigger_phrase"):
            ident.triggers = split_phrases(meta["modelspec.trigger_phrase"])
        elif meta.get("ss_tag_frequency"):
            ident.triggers = triggers_from_tag_frequency(meta["ss_tag_frequency"])
        return ident

    if any(k.startswith("model.diffusion_model.") for k in keys):
        ident = _common(Identity("model", format="single-file"), meta)
        found = _checkpoint_family(header) or family_from_metadata(meta)
        ident.family, evidence = found if found else (Family.UNKNOWN, "none")
        ident.meta["family_evidence"] = evidence
        return ident

    if not keys:
        raise NotRecognised("the file holds no tensors")
    if any(k.startswith(("first_stage_model.", "encoder.down", "decoder.up")) for k in keys):
        raise NotRecognised("looks like a VAE, not a LoRA or base model")
    if any(k in ("emb_params", "clip_l", "clip_g") or k.startswith("string_to_param") for k in keys):
        raise NotRecognised("looks like a textual inversion embedding, not a LoRA or base model")
    raise NotRecognised("not a LoRA, base model or backbone (no LoRA or UNet keys)")


def identify_folder(folder: Path) -> Identity:
    """A diffusers pipeline folder (`model_index.json`). Raises `NotRecognised`."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise NotRecognised(f"model_index.json is unreadable ({exc})") from None
    cls = str(index.get("_class_name", "")) if isinstance(index, dict) else ""
    if "StableDiffusion" not in cls:
        raise NotRecognised(f"{cls or 'an unknown pipeline'} is not a Stable Diffusion 1.x/2.x/XL pipeline")
    ident = Identity("model", format="diffusers")
    cross = None
    try:
        config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
        cross = config.get("cross_attention_dim")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError, RecursionError):
        pass
    if "XL" in cls:
        ident.family, evidence = Family.SDXL, f"pipeline {cls}"
    elif cross == 1024:
        ident.family, evidence = Family.SD2, "cross-attention width 1024"
    else:
        ident.family, evidence = Family.SD1, f"pipeline {cls}"
    ident.meta = {"pipeline": cls, "cross_attention_dim": cross, "family_evidence": evidence}
    return ident
