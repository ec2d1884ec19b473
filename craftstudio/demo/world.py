"""ShapesWorld: a deterministic world of 64×64 pictures, one shape drawn in one style.

`render(content, style, seed)` gives the same pixels for the same arguments on every machine
(numpy's PCG64 and Pillow's polygon fill only). The placement (position, size, rotation) depends
on the seed alone, so one seed shows the same layout in every shape and style, which pairs
references for content/style experiments; the style's pattern and palette jitter depend on the
seed too, drawn from a separate stream.

`SPLIT` holds two shapes and two styles out of base-model training: they are the new concepts
that content and style LoRAs learn. Captions read `a star in stripes style`; LoRA captions put a
trigger word (one of the tokenizer's spare identifiers) in place of the new class.

`render_random` / `render_scenes` give batches as arrays (`PictureSet`), rendered in parallel
worker processes for training.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from craftstudio.demo.shapes import SHAPE_DRAWERS, Placement, shape_mask
from craftstudio.demo.styles import STYLE_PAINTERS, paint

SHAPES: tuple[str, ...] = tuple(SHAPE_DRAWERS)
STYLES: tuple[str, ...] = tuple(STYLE_PAINTERS)
CAPTION_WORDS: tuple[str, ...] = ("a", "in", "style")


@dataclass(frozen=True)
class Split:
    """Which classes the base model sees; the held-out ones are left for LoRAs."""

    train_shapes: tuple[str, ...]
    heldout_shapes: tuple[str, ...]
    train_styles: tuple[str, ...]
    heldout_styles: tuple[str, ...]

    def train_pairs(self) -> list[tuple[str, str]]:
        return [(shape, style) for shape in self.train_shapes for style in self.train_styles]


_HELDOUT_SHAPES = ("heart", "bolt")
_HELDOUT_STYLES = ("neon", "mosaic")
SPLIT = Split(
    train_shapes=tuple(s for s in SHAPES if s not in _HELDOUT_SHAPES),
    heldout_shapes=_HELDOUT_SHAPES,
    train_styles=tuple(s for s in STYLES if s not in _HELDOUT_STYLES),
    heldout_styles=_HELDOUT_STYLES,
)


@dataclass(frozen=True)
class Scene:
    """Everything that decides one picture."""

    content: str
    style: str
    seed: int

    @property
    def caption(self) -> str:
        return caption(self.content, self.style)

    @property
    def placement(self) -> Placement:
        return Placement.sample(_streams(self.seed)[0])

    def render(self) -> Image.Image:
        return render(self.content, self.style, self.seed)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the layout and for the style (pattern, palette, jitter)."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"Seed must be between 0 and 2^63-1, not {seed}.")
    layout, style = np.random.SeedSequence([seed, 0x5EA]).spawn(2)
    return np.random.default_rng(layout), np.random.default_rng(style)


def render_array(content: str, style: str, seed: int) -> np.ndarray:
    """The picture as uint8 (64, 64, 3)."""
    return render_with_mask(content, style, seed)[0]


def render_with_mask(content: str, style: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The picture as uint8 (64, 64, 3) and the object's coverage, float32 (64, 64) in [0, 1]."""
    if content not in SHAPE_DRAWERS:
        raise ValueError(f"Unknown shape {content!r}: choose one of {', '.join(SHAPES)}.")
    if style not in STYLE_PAINTERS:
        raise ValueError(f"Unknown style {style!r}: choose one of {', '.join(STYLES)}.")
    layout_rng, style_rng = _streams(seed)
    mask = shape_mask(content, Placement.sample(layout_rng))
    pixels = paint(style, mask, style_rng)
    return np.round(pixels * 255.0).astype(np.uint8), mask


def render(content: str, style: str, seed: int) -> Image.Image:
    """A 64×64 RGB picture of `content` drawn in `style`; the same seed gives the same pixels."""
    return Image.fromarray(render_array(content, style, seed), mode="RGB")


def caption(content: str, style: str) -> str:
    """The caption the base model is trained with: `a star in stripes style`."""
    return f"a {content} in {style} style"


def trigger_caption(*, content: str, style: str) -> str:
    """A LoRA training caption where either part may be a trigger word: `a sks in stripes style`
    (content LoRA) or `a star in zxq style` (style LoRA). Same form as `caption`."""
    return caption(content, style)


def marked_prompt(content: str, style: str, style_gamma: float | None = None) -> str:
    """A CRAFT prompt of the caption's form with the content and style markers:
    `a sks <c> in zxq style <s>`, or `<s:0.25>` with a style weight γ_s."""
    marker = "<s>" if style_gamma is None else f"<s:{style_gamma:g}>"
    return f"a {content} <c> in {style} style {marker}"


def parse_caption(text: str) -> tuple[str, str] | None:
    """(content, style) of a world caption, or None when `text` is not one."""
    words = text.strip().lower().split()
    if len(words) != 5 or words[0] != "a" or words[2] != "in" or words[4] != "style":
        return None
    return words[1], words[3]


def random_scenes(count: int, seed: int, shapes: tuple[str, ...] = SHAPES,
                  styles: tuple[str, ...] = STYLES) -> list[Scene]:
    """`count` scenes with classes drawn uniformly from `shapes` × `styles` (deterministic)."""
    rng = np.random.default_rng([seed, 0xC1A55])
    contents = rng.integers(len(shapes), size=count)
    looks = rng.integers(len(styles), size=count)
    seeds = rng.integers(2**62, size=count)
    return [Scene(shapes[int(c)], styles[int(s)], int(k)) for c, s, k in zip(contents, looks, seeds, strict=True)]


# How many pictures the demo backbones' preservation term uses (asset_training, the benchmark):
# without it a trained backbone costs the base model much of what it draws (README, ShapesWorld).
KEEP_PICTURES = 48


def write_base_pictures(folder: Path, count: int, seed: int) -> Path:
    """`count` random pictures of the base model's own classes (training shapes and styles), each
    with its caption file: the preservation set that keeps a demo backbone close to the base model."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for i, scene in enumerate(random_scenes(count, seed, SPLIT.train_shapes, SPLIT.train_styles)):
        scene.render().save(folder / f"{i:03d}.png")
        (folder / f"{i:03d}.txt").write_text(scene.caption + "\n", encoding="utf-8")
    return folder


# Batches of pictures as arrays, rendered in worker processes (numpy only, so workers start fast;
# callers turn arrays into tensors). Labels index the full SHAPES and STYLES tuples.

_CHUNK = 512
MASK_SIZE = 16  # object masks are kept box-filtered to 16×16 (enough for a training signal)


@dataclass
class PictureSet:
    """`images` uint8 (N, 64, 64, 3); `contents`/`styles` int64 (N,) indices into SHAPES/STYLES."""

    images: np.ndarray
    contents: np.ndarray
    styles: np.ndarray
    seeds: np.ndarray
    masks: np.ndarray | None = None  # float32 (N, 16, 16) object coverage, when asked for

    def __len__(self) -> int:
        return len(self.images)

    def captions(self) -> list[str]:
        return [Scene(SHAPES[c], STYLES[s], 0).caption for c, s in zip(self.contents, self.styles, strict=True)]


def _render_chunk(scenes: list[Scene]) -> tuple[np.ndarray, np.ndarray]:
    images, masks = [], []
    for s in scenes:
        image, mask = render_with_mask(s.content, s.style, s.seed)
        images.append(image)
        factor = mask.shape[0] // MASK_SIZE
        masks.append(mask.reshape(MASK_SIZE, factor, MASK_SIZE, factor).mean(axis=(1, 3)))
    return np.stack(images), np.stack(masks)


def render_scenes(scenes: list[Scene], workers: int = 1, with_masks: bool = False) -> PictureSet:
    """Render `scenes` (in order) with `workers` processes (1 = in this process)."""
    chunks = [scenes[i:i + _CHUNK] for i in range(0, len(scenes), _CHUNK)]
    if workers > 1 and len(chunks) > 1:
        # spawn, not fork: the caller may hold CUDA or thread pools that a fork would copy.
        with multiprocessing.get_context("spawn").Pool(min(workers, len(chunks))) as pool:
            parts = pool.map(_render_chunk, chunks)
    else:
        parts = [_render_chunk(chunk) for chunk in chunks]
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 64, 64, 3), np.uint8)
    masks = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, MASK_SIZE, MASK_SIZE), np.float32)
    return PictureSet(
        images=images, masks=masks if with_masks else None,
        contents=np.array([SHAPES.index(s.content) for s in scenes], dtype=np.int64),
        styles=np.array([STYLES.index(s.style) for s in scenes], dtype=np.int64),
        seeds=np.array([s.seed for s in scenes], dtype=np.int64),
    )


def render_random(count: int, seed: int, shapes: tuple[str, ...] = SHAPES, styles: tuple[str, ...] = STYLES,
                  workers: int = 1, with_masks: bool = False) -> PictureSet:
    """`count` random pictures of the given classes (the same arguments give the same set)."""
    return render_scenes(random_scenes(count, seed, shapes, styles), workers, with_masks)


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))
