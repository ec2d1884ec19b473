"""Generation parameters of any image, with LoRA references resolved against the catalog.

Order: our `craftstudio` JSON chunk (the full request), else A1111/Forge `parameters` text
(PNG text chunk, or EXIF UserComment in JPEG/WebP). From A1111 text:
- `<lora:name:weight>` tags in the prompt are taken out of the prompt (they are not words for
  the text encoder) and resolved: first by the `Lora hashes` entry for that name (A1111 writes
  the first 12 hex digits of the sha256 of the tensor bytes — kohya's "addnet hash" — or the
  file's `sshs_model_hash`), then by name (file stem, title or kohya output name);
- a resolved LoRA with role `content` fills `content_lora`, one with role `style` fills
  `style_lora`; others are listed as not placed (CRAFT takes one of each);
- `Model hash` (first 10 hex digits of the checkpoint's sha256) or `Model` picks a catalogued base model.
Settings CraftStudio has no equivalent for (hires fix, clip skip, ...) are listed as ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import SCHEDULERS, GenerateRequest, LoraRef
from craftstudio.domain.infotext import parse_infotext, request_from_infotext
from craftstudio.domain.limits import LORA_WEIGHT_RANGE, check_number
from craftstudio.library.item_store import ItemStore
from craftstudio.library.png_params import CHUNK_CRAFT, CHUNK_PARAMETERS, open_text_chunks, request_from_chunk

# No part of a tag may hold `<`: a match attempt then ends at the next tag, so a prompt of many
# unclosed `<lora:` is scanned in linear time.
_LORA_TAG = re.compile(r"<(lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", re.IGNORECASE)
_USED_SETTINGS = {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model", "Model hash",
                  "Lora hashes", "Version"}


@dataclass
class LoraMention:
    """One `<lora:…>` of the prompt (or a LoRA of our own request) and what it resolved to."""

    name: str
    weight: float = 1.0
    short_hash: str | None = None
    item_id: str | None = None
    path: str | None = None
    role: str | None = None
    placed: str | None = None  # "content", "style" or None


@dataclass
class ImageParams:
    path: str
    source: str | None  # "craftstudio", "parameters" or None (no parameters)
    request: GenerateRequest | None = None
    text: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    loras: list[LoraMention] = field(default_factory=list)
    model_item: str | None = None
    notes: list[str] = field(default_factory=list)
    ignored_settings: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[LoraMention]:
        return [m for m in self.loras if m.item_id is None]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["request"] = self.request.to_dict() if self.request else None
        return data


def read_parameter_chunks(path: str | Path) -> dict[str, str]:
    """Text chunks (PNG) plus A1111's EXIF UserComment (JPEG/WebP) as `parameters`."""
    return open_text_chunks(path, exif_parameters=True)


def split_lora_tags(prompt: str) -> tuple[str, list[LoraMention]]:
    """Take `<lora:name:w>` / `<lyco:…>` tags out of a prompt; returns (clean prompt, mentions)."""
    mentions = []
    for match in _LORA_TAG.finditer(prompt):
        try:
            weight = float(match.group(3)) if match.group(3) else 1.0
        except ValueError:
            weight = 1.0
        mentions.append(LoraMention(name=match.group(2).strip(), weight=weight))
    if not mentions:
        return prompt, []
    clean = _LORA_TAG.sub("", prompt)
    # Each pattern is linear: runs of blanks first become one space.
    clean = re.sub(r"[ \t]+", " ", clean).replace(" ,", ",")  # "cat ," left where a tag was
    clean = re.sub(r",(?: ?,)+", ",", clean)  # ", ,"
    clean = "\n".join(line.strip() for line in clean.split("\n")).strip()
    return clean.rstrip(",").rstrip(), mentions


def parse_lora_hashes(value: str) -> dict[str, str]:
    """`"name: 1a2b3c4d5e6f, other: 0f9e8d7c6b5a"` → {name: hash}."""
    out = {}
    for part in value.split(","):
        name, _, short = part.rpartition(":")
        if name.strip() and short.strip():
            out[name.strip()] = short.strip().lower()
    return out


def _resolve(mention: LoraMention, items: ItemStore) -> None:
    candidates = items.by_short_hash(mention.short_hash) if mention.short_hash else []
    if not candidates:
        candidates = items.by_name(mention.name)
    if candidates:
        item = candidates[0]
        mention.item_id, mention.path, mention.role = item.id, item.path, item.role


def _place(request: GenerateRequest, mentions: list[LoraMention], notes: list[str]) -> GenerateRequest:
    slots: dict[str, LoraRef | None] = {"content": request.content_lora, "style": request.style_lora}
    for m in mentions:
        if m.item_id is None:
            notes.append(f"LoRA {m.name!r} is not in the library: scan or import it.")
            continue
        try:
            check_number(f"The weight of LoRA {m.name!r}", m.weight, *LORA_WEIGHT_RANGE)
        except RequestError as exc:
            notes.append(f"{exc} It is left out.")
            continue
        if m.role in slots and slots[m.role] is None:
            slots[m.role] = LoraRef(path=m.path or "", weight=m.weight, sha256=m.item_id)
            m.placed = m.role
        elif m.role in slots:
            notes.append(f"LoRA {m.name!r} is a second {m.role} LoRA; CRAFT uses one of each, so it is left out.")
        else:
            notes.append(f"LoRA {m.name!r} has no role: set it to content or style (`library edit`) to use it.")
    return dataclasses.replace(request, content_lora=slots["content"], style_lora=slots["style"])


def _from_infotext(text: str, items: ItemStore | None, result: ImageParams) -> None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parsed = parse_infotext(text)
    settings = parsed["settings"]
    result.settings = settings
    dropped: dict[str, str] = {}
    request = request_from_infotext(text, dropped=dropped)
    result.notes.extend(dict.fromkeys(dropped.values()))
    prompt, mentions = split_lora_tags(request.prompt)
    hashes = parse_lora_hashes(settings.get("Lora hashes", ""))
    for m in mentions:
        m.short_hash = hashes.get(m.name) or hashes.get(m.name.replace(":", "").replace(",", ""))
    request = dataclasses.replace(request, prompt=prompt)
    sampler = settings.get("Sampler")
    if sampler:
        label = sampler.lower()
        if settings.get("Schedule type", "").lower() == "karras" and not label.endswith("karras"):
            label += " karras"
        if label not in {name.lower() for name in SCHEDULERS.values()} | {"euler_ancestral"}:
            result.notes.append(f"Sampler {sampler!r} is not available; {SCHEDULERS[request.scheduler]} is used.")
    if items is not None:
        for m in mentions:
            _resolve(m, items)
        request = _place(request, mentions, result.notes)
        model = _resolve_model(settings, items)
        if model is not None:
            request = dataclasses.replace(request, model=model.path)
            result.model_item = model.id
        elif settings.get("Model"):
            result.notes.append(f"Base model {settings['Model']!r} is not in the library: choose a model.")
    result.loras = mentions
    result.request = request
    result.ignored_settings = [k for k in settings if k not in _USED_SETTINGS]


def _resolve_model(settings: dict[str, str], items: ItemStore):  # -> Item | None
    short = settings.get("Model hash", "").strip().lower()
    found = items.by_short_hash(short, kind="model") if short else []
    if not found and settings.get("Model"):
        found = items.by_name(settings["Model"], kind="model")
    return found[0] if found else None


def read_image_params(path: str | Path, items: ItemStore | None = None) -> ImageParams:
    """The request recorded in an image, LoRAs resolved when `items` (the catalog) is given.
    `source` is None when the image holds no parameters (the notes say so)."""
    path = Path(path)
    chunks = read_parameter_chunks(path)
    result = ImageParams(str(path), None)
    if CHUNK_CRAFT in chunks and path.suffix.lower() == ".png":
        result.source, result.text = "craftstudio", chunks[CHUNK_CRAFT]
        request, dropped = request_from_chunk(path, chunks[CHUNK_CRAFT])
        result.notes.extend(dict.fromkeys(dropped.values()))
        mentions = []
        for slot, ref in (("content", request.content_lora), ("style", request.style_lora)):
            if ref is None:
                continue
            m = LoraMention(Path(ref.path).stem, ref.weight, ref.sha256, placed=slot)
            if items is not None and ref.sha256 and (item := items.get(ref.sha256)):
                m.item_id, m.path, m.role = item.id, item.path, item.role
                if item.path != ref.path:  # moved since: use where it is now
                    request = dataclasses.replace(request, **{f"{slot}_lora": LoraRef(item.path, ref.weight, item.id)})
            elif items is not None:
                result.notes.append(f"The {slot} LoRA {ref.path} is not in the library.")
            mentions.append(m)
        result.request, result.loras = request, mentions
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            result.settings = {k: str(v) for k, v in json.loads(chunks[CHUNK_CRAFT]).items() if k != "request"}
        return result
    if chunks.get(CHUNK_PARAMETERS, "").strip():
        result.source, result.text = "parameters", chunks[CHUNK_PARAMETERS]
        try:
            _from_infotext(chunks[CHUNK_PARAMETERS], items, result)
        except RequestError as exc:
            raise RequestError(f"{path}: {exc}") from exc
        return result
    result.notes.append(f"{path} holds no generation parameters.")
    return result
