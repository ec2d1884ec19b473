"""Training images: finding them, checking them, resizing them, and the content low-pass filter.

Files are taken from folders (sorted by name, not recursive, hidden files ignored) or given one by
one. An image may have its own caption in a text file of the same name (`cat.png` + `cat.txt`).
Anything Pillow cannot open is skipped and listed with the reason; a set with no usable image
left is refused. Images whose shorter side is below the training resolution are refused (naming
them) unless the user asks to upscale: enlarged images teach the model blur.

Every image is transposed by its EXIF orientation, converted to RGB, resized so that its shorter
side equals the resolution (Lanczos) and center-cropped to a square, then mapped to [-1, 1].

Low-pass filter (content references, DESIGN.md §1): a Gaussian in the frequency domain,
H(f_x, f_y) = exp(−(f_x² + f_y²) / (2σ²)), where f_x, f_y are normalised frequencies with 1 = the
Nyquist frequency (half a cycle per pixel) of the image as trained, so σ = 0.35 keeps 61 % of the
amplitude at 0.35 × Nyquist and 1.7 % at Nyquist. That equals a spatial Gaussian blur of standard
deviation 1/(π σ) pixels (0.91 px at σ = 0.35). The image is mirrored to twice its size before
the FFT so the borders do not bleed into each other (the FFT treats the image as periodic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from craftstudio.domain.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class ImageSetError(UserError):
    """Training images that are missing, unreadable or too small."""


@dataclass
class ImageSet:
    """The usable images of a source, and what was skipped (file, reason)."""

    paths: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _candidates(sources: Sequence[str | Path], what: str) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            files += sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
                            key=lambda p: p.name.lower())
        elif path.is_file():
            files.append(path)
        else:
            raise ImageSetError(f"The {what} {path} does not exist: choose an existing image file or folder.")
    return files


def _unreadable_reason(path: Path) -> str | None:
    """Why Pillow cannot use `path`, or None if it can."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image file"
    try:
        with Image.open(path) as image:
            image.load()  # a full decode: verify() misses truncated pixel data
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"damaged image ({str(exc).strip()[:80] or type(exc).__name__})"
    return None


def collect_images(sources: Sequence[str | Path], *, what: str = "images", limit: int | None = None) -> ImageSet:
    """The readable images of `sources` (at most `limit`); raises `ImageSetError` if none are left."""
    files = _candidates(sources, what)
    label = ", ".join(str(s) for s in sources[:2]) + (" ..." if len(sources) > 2 else "")
    if not files:
        raise ImageSetError(f"No {what} in {label}: add PNG, JPEG or WebP files.")
    usable: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in files:
        reason = _unreadable_reason(path)
        if reason is None:
            usable.append(path)
        else:
            skipped.append((str(path), reason))
    # A caption file next to an image belongs to it (read_captions); it is not a skipped image.
    captions = {caption_file(p) for p in usable}
    skipped = [(p, r) for p, r in skipped if Path(p) not in captions]
    if not usable:
        first = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        raise ImageSetError(f"No usable {what} in {label}: all {len(skipped)} files were skipped "
                            f"({first}{'; ...' if len(skipped) > 3 else ''}).")
    if limit is not None:
        usable = usable[:limit]
    return ImageSet(usable, skipped)


def caption_file(image: Path) -> Path:
    """Where an image's own caption lives: a UTF-8 text file of the same name (`cat.png` →
    `cat.txt`), the convention of kohya and most LoRA trainers."""
    return image.with_suffix(".txt")


def read_captions(paths: Sequence[Path]) -> list[str | None]:
    """Each image's caption file text, or None where it has none."""
    out: list[str | None] = []
    for path in paths:
        sidecar = caption_file(path)
        if not sidecar.is_file():
            out.append(None)
            continue
        try:
            out.append(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ImageSetError(f"The caption file {sidecar} cannot be read ({type(exc).__name__}): save it "
                                "as UTF-8 text or delete it.") from exc
    return out


def check_sizes(paths: Sequence[Path], resolution: int, *, upscale: bool, what: str = "images") -> None:
    """Refuse images whose shorter side is below `resolution`, unless upscaling was asked for."""
    if upscale:
        return
    from PIL import Image, ImageOps

    small = []
    for path in paths:
        with Image.open(path) as image:
            width, height = ImageOps.exif_transpose(image).size
        if min(width, height) < resolution:
            small.append(f"{path.name} ({width}x{height})")
    if small:
        more = f" and {len(small) - 3} more" if len(small) > 3 else ""
        raise ImageSetError(f"{len(small)} of the {what} are smaller than the training resolution "
                            f"{resolution}: {', '.join(small[:3])}{more}. Use larger images, lower the "
                            "resolution, or allow upscaling (--upscale).")


def load_pixels(path: Path, resolution: int) -> torch.Tensor:
    """(3, resolution, resolution) float tensor in [-1, 1]: resized (shorter side) and center-cropped."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def gaussian_response(height: int, width: int, sigma: float) -> torch.Tensor:
    """H(f) on the FFT grid of an image of this size (see the module docstring)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64) * 2.0  # cycles/pixel → 1 = Nyquist
    fx = torch.fft.fftfreq(width, dtype=torch.float64) * 2.0
    radius2 = fy[:, None] ** 2 + fx[None, :] ** 2
    return torch.exp(-radius2 / (2.0 * sigma * sigma))


def low_pass(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass of (..., H, W) pixels with normalised cutoff `sigma` (1 = Nyquist)."""
    height, width = pixels.shape[-2:]
    # Mirror to 2H × 2W: the periodic extension is then continuous at the borders.
    wide = torch.cat([pixels, pixels.flip(-1)], dim=-1)
    tall = torch.cat([wide, wide.flip(-2)], dim=-2).double()
    response = gaussian_response(2 * height, 2 * width, sigma)
    filtered = torch.fft.ifft2(torch.fft.fft2(tall) * response).real
    return filtered[..., :height, :width].to(pixels.dtype)


def load_set(paths: Sequence[Path], resolution: int, sigma: float | None = None) -> torch.Tensor:
    """(N, 3, res, res) pixels of `paths`, low-passed with `sigma` when given."""
    pixels = torch.stack([load_pixels(p, resolution) for p in paths])
    return low_pass(pixels, sigma) if sigma is not None else pixels
