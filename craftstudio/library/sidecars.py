"""Files that other tools keep next to a model or LoRA, and the ModelSpec thumbnail.

For `name.safetensors`:
- `name.preview.png` (A1111/Forge; also .jpg/.jpeg/.webp) or `name.png`: the preview image;
- `name.civitai.info` (civitai helper extensions): `trainedWords`, `baseModel`, `model.name`,
  `description`;
- `name.json` (A1111 user metadata): `activation text`, `sd version`, `description`, `notes`,
  `preferred weight`.
Sidecars add to what the header says; they never replace a family read from tensor shapes.
An embedded `modelspec.thumbnail` (a data URI) becomes a preview file under the library's
`previews/` folder when no preview image sits next to the file.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from craftstudio.domain.atomic_file import temp_file
from craftstudio.domain.family import Family
from craftstudio.library.identify import Identity, family_from_words, split_phrases

PREVIEW_SUFFIXES = (".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp", ".png", ".jpg",
                    ".jpeg", ".webp")
CIVITAI_SUFFIX = ".civitai.info"
USER_META_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 4 * 1024 * 1024


@dataclass
class Sidecars:
    preview: Path | None = None
    civitai: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    def signature(self) -> str:
        """Changes when a sidecar appears, disappears or is edited (cheap: names and mtimes)."""
        parts = []
        for f in self.files:
            try:
                parts.append(f"{f.name}:{f.stat().st_mtime_ns}")
            except OSError:
                parts.append(f"{f.name}:gone")
        return "|".join(parts)


def model_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def sidecar_names(path: Path) -> list[str]:
    stem = model_stem(path)
    return [stem + s for s in (*PREVIEW_SUFFIXES, CIVITAI_SUFFIX, USER_META_SUFFIX)]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
        if st.st_size > MAX_SIDECAR_BYTES or not stat.S_ISREG(st.st_mode):  # a FIFO would block
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def find_sidecars(path: Path, siblings: set[str] | None = None, *, read: bool = True) -> Sidecars:
    """Sidecars of `path`. `siblings` (names in its folder, when the caller listed it) saves stats."""
    stem = model_stem(path)
    folder = path.parent

    def exists(name: str) -> bool:
        return name in siblings if siblings is not None else (folder / name).is_file()

    found = Sidecars()
    for suffix in PREVIEW_SUFFIXES:
        if exists(stem + suffix):
            found.preview = folder / (stem + suffix)
            found.files.append(found.preview)
            break
    if exists(stem + CIVITAI_SUFFIX):
        found.files.append(folder / (stem + CIVITAI_SUFFIX))
        if read:
            found.civitai = _read_json(folder / (stem + CIVITAI_SUFFIX))
    if path.suffix.lower() != USER_META_SUFFIX and exists(stem + USER_META_SUFFIX):
        found.files.append(folder / (stem + USER_META_SUFFIX))
        if read:
            found.user = _read_json(folder / (stem + USER_META_SUFFIX))
    return found


def _add_unique(target: list[str], phrases: list[str]) -> None:
    for p in phrases:
        if p and p not in target:
            target.append(p)


def apply_sidecars(identity: Identity, sidecars: Sidecars) -> None:
    """Fill gaps in `identity` from sidecar metadata (in place)."""
    civ = sidecars.civitai or {}
    user = sidecars.user or {}
    words = civ.get("trainedWords")
    if isinstance(words, list):
        _add_unique(identity.triggers, [p for w in words if isinstance(w, str) for p in split_phrases(w)])
    activation = user.get("activation text")
    if isinstance(activation, str):
        _add_unique(identity.triggers, split_phrases(activation))
    if identity.family is Family.UNKNOWN:
        for source, text in (("civitai baseModel", civ.get("baseModel")), ("sd version", user.get("sd version"))):
            family = family_from_words(text) if isinstance(text, str) else None
            if family:
                identity.family = family
                identity.meta["family_evidence"] = f"{source} {text}"
                break
    model = civ.get("model")
    if not identity.title and isinstance(model, dict) and isinstance(model.get("name"), str):
        identity.title = model["name"]
    if not identity.description:
        for text in (user.get("description"), civ.get("description"), user.get("notes")):
            if isinstance(text, str) and text.strip():
                identity.description = text.strip()
                break
    if isinstance(model, dict) and isinstance(model.get("tags"), list):
        identity.meta.setdefault("civitai_tags", [t for t in model["tags"] if isinstance(t, str)])
    weight = user.get("preferred weight")
    if isinstance(weight, int | float) and weight:
        identity.meta["preferred_weight"] = float(weight)
    if civ.get("id") is not None:
        identity.meta["civitai_version_id"] = civ.get("id")


def atomic_write_bytes(dest: Path, data: bytes) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(dest)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def decode_thumbnail(data_uri: str, dest_without_suffix: Path) -> Path | None:
    """Write a ModelSpec thumbnail (`data:image/png;base64,...`) as an image file; None if invalid."""
    payload = data_uri.split(",", 1)[1] if data_uri.startswith("data:") and "," in data_uri else data_uri
    try:
        raw = base64.b64decode(payload, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            fmt = (im.format or "PNG").lower()
            im.verify()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        return None
    suffix = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}.get(fmt, ".png")
    return atomic_write_bytes(dest_without_suffix.with_name(dest_without_suffix.name + suffix), raw)
