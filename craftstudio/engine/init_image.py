"""The artist's own pictures as generation inputs: an init image and an inpainting mask.

*Decision (size rule):* a picture is scaled to cover the request size, keeping its aspect ratio,
and centre-cropped (A1111's "Crop and resize"), so nothing is stretched; the Generate page and the
CLI make the request size follow the picture (`domain/image_size.py`), so usually nothing is cut.
A mask (white = redraw, black = keep) must be one channel; one of another size than its picture
is resized to the picture's size first (nearest neighbour, so it stays hard) and that is noted.
Both then pass the same crop, so they stay aligned. The feathered edge is a Gaussian blur of
`mask_blur` pixels (A1111's "Mask blur").

Pictures are read with Pillow only (never unpickled); the size in the header is judged before
pixels are decoded, so a 50,000-pixel-wide file costs a sentence, not the machine's memory.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from craftstudio.domain.errors import UserError

# Larger pictures are refused before decoding (a 64 MP RGB image already needs 192 MB as bytes
# and 768 MB as a float tensor); nobody restyles a bigger one without scaling it down first.
MAX_INPUT_PIXELS = 64 * 1024 * 1024
SINGLE_CHANNEL_MODES = {"1", "L", "I", "I;16", "F"}


class InputImageError(UserError):
    """An init image or mask that cannot be used."""


@dataclass
class InputPicture:
    image: object  # PIL image at the request size: RGB for an init image, L (0–255) for a mask
    sha256: str
    source_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)


def _open(path: str | Path, what: str):
    """The picture at `path`, decoded, else `InputImageError` naming it."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputImageError(f"The {what} {path} does not exist or is not a file: choose a picture file.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputImageError(f"The {what} {path} cannot be read ({exc.strerror or exc}).") from None
    try:
        picture = Image.open(io.BytesIO(data))
        width, height = picture.size
        if width * height > MAX_INPUT_PIXELS:
            raise InputImageError(f"The {what} {path} is {width}x{height} pixels, more than the "
                                  f"{MAX_INPUT_PIXELS // 2**20} megapixels CraftStudio reads: scale it down first.")
        picture.load()
    except InputImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputImageError(f"The {what} {path} is not a picture Pillow can read ({exc.__class__.__name__}): "
                              "save it as PNG or JPEG.") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"The {what} {path} is damaged or truncated ({exc}): save it again.") from None
    return picture, hashlib.sha256(data).hexdigest(), path


def cover_crop(picture, size: tuple[int, int], resample):
    """`picture` scaled to cover `size` (aspect kept) and centre-cropped to it."""
    width, height = size
    scale = max(width / picture.width, height / picture.height)
    scaled = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
    if scaled != picture.size:
        picture = picture.resize(scaled, resample)
    left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
    return picture.crop((left, top, left + width, top + height))


def read_init_image(path: str | Path, size: tuple[int, int]) -> InputPicture:
    """The init image as RGB at `size` (see module doc for the rule)."""
    from PIL import Image

    picture, sha, _ = _open(path, "init image")
    source = picture.size
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        # Transparent pixels become white, as on paper, rather than whatever colour they hide.
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(canvas, rgba)
    picture = cover_crop(picture.convert("RGB"), size, Image.Resampling.LANCZOS)
    return InputPicture(picture, sha, source)


def read_mask(path: str | Path, size: tuple[int, int], source_size: tuple[int, int], blur: int) -> InputPicture:
    """The mask as an L picture at `size` (255 = redraw), its edge feathered by `blur` pixels.
    `source_size` is the init image's size in its file, which the mask should match."""
    from PIL import Image, ImageFilter

    picture, sha, path = _open(path, "mask")
    if picture.mode not in SINGLE_CHANNEL_MODES:
        raise InputImageError(f"The mask {path} has {len(picture.getbands())} channels ({picture.mode}): save it "
                              "as a single-channel greyscale picture, white where the image is to be redrawn.")
    notes = []
    mask = picture.convert("L") if picture.mode in ("1", "L") else _to_l(picture)
    if mask.size != tuple(source_size):
        notes.append(f"The mask {path.name} is {mask.width}x{mask.height} but its picture is "
                     f"{source_size[0]}x{source_size[1]}; it was resized to fit.")
        mask = mask.resize(tuple(source_size), Image.Resampling.NEAREST)
    mask = cover_crop(mask, size, Image.Resampling.NEAREST)
    if blur > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    return InputPicture(mask, sha, picture.size, notes)


def _to_l(picture):
    """A 16-bit or float single-channel picture as 8 bits, scaled by its own range."""
    import numpy as np
    from PIL import Image

    values = np.asarray(picture, dtype=np.float64)
    top = float(values.max()) if values.size else 0.0
    scaled = values / top * 255.0 if top > 0 else values
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")
