"""The size a base model draws best at ("native size"), read from its files without torch.

Models are trained at one resolution and draw poorly far from it: SD1.x at 512, SD2.x at 768
(the 768-v models) or 512 (the base models), SDXL at 1024, the ShapesWorld demo at 64. The CLI's
`generate --size` default and the Generate page's size both come from here.

Evidence, strongest first:
* a diffusers folder: the UNet's `sample_size` (latent side) × the VAE's scale factor
  (2 ** (number of VAE blocks − 1)), from the two `config.json` files;
* a single-file checkpoint: ModelSpec's `modelspec.resolution` metadata ("1024x1024"), else the
  family the library identifies from the header (SD1.x 512, SD2.x 768, SDXL 1024).
None when nothing tells (callers fall back to `FALLBACK_SIZE`). Only JSON and the safetensors
header are read: cheap enough to call whenever the model changes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from craftstudio.domain.family import Family
from craftstudio.library.header import UnreadableFile, read_header
from craftstudio.library.identify import NotRecognised, identify

FALLBACK_SIZE = (512, 512)
FAMILY_SIDES = {Family.SD1: 512, Family.SD2: 768, Family.SDXL: 1024}
_RESOLUTION = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*$")


def native_size(model: str | Path) -> tuple[int, int] | None:
    """(width, height) the model was trained at, or None when its files do not say."""
    path = Path(model)
    try:
        if path.is_dir():
            return _folder_size(path)
        if path.suffix.lower() == ".safetensors" and path.is_file():
            return _checkpoint_size(path)
    except OSError:
        return None
    return None


def native_size_or_default(model: str | Path) -> tuple[int, int]:
    return native_size(model) or FALLBACK_SIZE


def _folder_size(folder: Path) -> tuple[int, int] | None:
    unet = _json(folder / "unet" / "config.json")
    vae = _json(folder / "vae" / "config.json")
    sample = unet.get("sample_size")
    blocks = vae.get("block_out_channels")
    scale = 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else 8
    if isinstance(sample, int) and sample > 0:
        return sample * scale, sample * scale
    if isinstance(sample, list) and len(sample) == 2 and all(isinstance(v, int) and v > 0 for v in sample):
        return sample[1] * scale, sample[0] * scale  # diffusers keeps (height, width)
    return None


def _checkpoint_size(path: Path) -> tuple[int, int] | None:
    try:
        header = read_header(path)
    except UnreadableFile:
        return None
    match = _RESOLUTION.match(header.metadata.get("modelspec.resolution", ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    try:
        identity = identify(header, path)
    except NotRecognised:
        return None
    side = FAMILY_SIDES.get(identity.family) if identity.kind == "model" else None
    return (side, side) if side else None


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
