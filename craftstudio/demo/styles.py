"""ShapesWorld's style classes: a coherent look, with its own palette, for object and background.

Every style paints the whole picture: a background treatment and an object treatment of the same
kind (the same pattern in a lighter and a darker palette, or an outline for the drawn styles), so
the style is visible whatever the shape and the shape is visible whatever the style (object and
background always differ in lightness). Pattern parameters (period, angle, phase) and colours
are jittered within each style's palette by the random generator passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from craftstudio.demo.shapes import SIZE

RGB = tuple[int, int, int]
_Y, _X = (a.astype(np.float32) + 0.5 for a in np.mgrid[0:SIZE, 0:SIZE])

# The palettes, as data: each style picks one variant per image, then jitters every colour.
PALETTES: dict[str, list[dict[str, RGB | tuple[RGB, ...]]]] = {
    "stripes": [{"bg": ((255, 236, 212), (246, 205, 178)), "fg": ((205, 45, 45), (125, 20, 35))},
                {"bg": ((255, 240, 220), (250, 215, 160)), "fg": ((215, 80, 20), (140, 35, 15))}],
    "dots": [{"bg": (196, 222, 250), "bg_dot": (250, 252, 255), "fg": (25, 40, 110), "fg_dot": (250, 215, 60)}],
    "checker": [{"bg": ((250, 250, 245), (196, 230, 196)), "fg": ((45, 150, 70), (15, 80, 35))}],
    "waves": [{"bg": ((190, 240, 235), (130, 210, 210)), "fg": ((120, 45, 160), (60, 15, 95))}],
    "grid": [{"bg": (250, 240, 188), "bg_line": (160, 160, 155), "fg": (240, 140, 40), "fg_line": (120, 55, 15)}],
    "speckle": [{"bg": (232, 216, 186), "bg_speck": (120, 90, 60), "fg": (95, 58, 32), "fg_speck": (235, 215, 175)}],
    "gradient": [{"bg": ((165, 212, 255), (255, 196, 222)), "fg": ((140, 25, 120), (20, 40, 150))},
                 {"bg": ((255, 232, 165), (255, 160, 140)), "fg": ((20, 90, 100), (50, 20, 90))}],
    "concentric": [{"bg": ((236, 220, 252), (255, 255, 255)), "fg": ((195, 40, 150), (95, 20, 95))}],
    "flat": [{"bg": bg, "fg": fg}
             for bg in ((245, 225, 200), (205, 235, 215), (225, 220, 245), (232, 232, 232))
             for fg in ((45, 45, 55), (30, 50, 110), (120, 30, 40), (30, 90, 50))],
    "lineart": [{"bg": (250, 250, 244), "ink": (25, 25, 25)}, {"bg": (242, 238, 228), "ink": (40, 40, 64)}],
    "halftone": [{"paper": (252, 252, 250), "bg_ink": (40, 170, 210), "fg_ink": (20, 25, 60)}],
    "crosshatch": [{"paper": (248, 242, 228), "bg_ink": (196, 176, 146), "fg_ink": (70, 45, 25)}],
    "neon": [{"bg": (10, 10, 28), "glow": glow} for glow in ((0, 240, 255), (255, 40, 200), (140, 255, 30))],
    "mosaic": [{"grout": (215, 210, 200), "bg_tiles": ((200, 110, 70), (215, 160, 80), (225, 200, 150)),
                "fg_tiles": ((30, 80, 160), (40, 140, 170), (25, 45, 100))}],
}
JITTER = 12  # per-channel colour jitter, 0-255 scale


def _colour(rgb: RGB, rng: np.random.Generator) -> np.ndarray:
    jittered = np.asarray(rgb, dtype=np.float32) + rng.integers(-JITTER, JITTER + 1, size=3)
    return np.clip(jittered, 0, 255) / 255.0


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of colours (or images) a→b by t (64, 64)."""
    t = t[..., None]
    return a * (1.0 - t) + b * t


def _soft(wave: np.ndarray, sharpness: float = 1.5) -> np.ndarray:
    """A sine field in [-1, 1] → a soft two-tone mask in [0, 1]."""
    return np.clip(0.5 + sharpness * wave, 0.0, 1.0)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    padded = np.pad(a, 1, mode="edge")
    return padded[1 + dy:1 + dy + SIZE, 1 + dx:1 + dx + SIZE]


def outline(mask: np.ndarray) -> np.ndarray:
    """A band about two pixels wide along the mask's edge (3×3 dilation minus erosion)."""
    shifts = [_shifted(mask, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.clip(np.max(shifts, axis=0) - np.min(shifts, axis=0), 0.0, 1.0)


def _blur_matrix(sigma: float) -> np.ndarray:
    idx = np.arange(SIZE, dtype=np.float32)
    kernel = np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2 * sigma * sigma))
    return kernel / kernel.sum(axis=1, keepdims=True)


_GLOW = _blur_matrix(2.0)


def _line_field(coordinate: np.ndarray, period: float, offset: float, width: float = 0.6) -> np.ndarray:
    """1 on thin lines every `period` pixels along `coordinate`, fading over one pixel."""
    phase = np.mod(coordinate - offset, period)
    distance = np.minimum(phase, period - phase)
    return np.clip(width + 0.5 - distance, 0.0, 1.0)


def _two_tone(mask, rng, palette, field):
    bg = _mix(_colour(palette["bg"][0], rng), _colour(palette["bg"][1], rng), field)
    fg = _mix(_colour(palette["fg"][0], rng), _colour(palette["fg"][1], rng), field)
    return _mix(bg, fg, mask)


def _stripes(mask, rng, palette):
    theta = math.radians(rng.choice([45.0, -45.0]) + rng.uniform(-8, 8))
    period, phase = rng.uniform(6, 9), rng.uniform(0, 2 * math.pi)
    wave = np.sin(2 * math.pi * (_X * math.cos(theta) + _Y * math.sin(theta)) / period + phase)
    return _two_tone(mask, rng, palette, _soft(wave))


def _dots(mask, rng, palette):
    period, radius = rng.uniform(7, 9), rng.uniform(1.8, 2.6)
    ox, oy = rng.uniform(0, period, size=2)
    dx = np.mod(_X - ox, period) - period / 2
    dy = np.mod(_Y - oy, period) - period / 2
    dot = np.clip(radius + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0)
    bg = _mix(_colour(palette["bg"], rng), _colour(palette["bg_dot"], rng), dot)
    fg = _mix(_colour(palette["fg"], rng), _colour(palette["fg_dot"], rng), dot)
    return _mix(bg, fg, mask)


def _checker(mask, rng, palette):
    cell = rng.uniform(5, 8)
    ox, oy = rng.uniform(0, 2 * cell, size=2)
    wave = np.sin(math.pi * (_X - ox) / cell) * np.sin(math.pi * (_Y - oy) / cell)
    return _two_tone(mask, rng, palette, _soft(wave, 4.0))


def _waves(mask, rng, palette):
    amplitude, wavelength, period = rng.uniform(2, 4), rng.uniform(20, 30), rng.uniform(7, 10)
    p1, p2 = rng.uniform(0, 2 * math.pi, size=2)
    wave = np.sin(2 * math.pi * (_Y + amplitude * np.sin(2 * math.pi * _X / wavelength + p1)) / period + p2)
    return _two_tone(mask, rng, palette, _soft(wave))


def _grid(mask, rng, palette):
    spacing = rng.uniform(7, 10)
    ox, oy = rng.uniform(0, spacing, size=2)
    lines = np.maximum(_line_field(_X, spacing, ox), _line_field(_Y, spacing, oy))
    bg = _mix(_colour(palette["bg"], rng), _colour(palette["bg_line"], rng), lines)
    fg = _mix(_colour(palette["fg"], rng), _colour(palette["fg_line"], rng), lines)
    return _mix(bg, fg, mask)


def _speckle(mask, rng, palette):
    density = rng.uniform(0.14, 0.22)
    specks = (rng.random((SIZE, SIZE)) < density).astype(np.float32)
    bg = _mix(_colour(palette["bg"], rng), _colour(palette["bg_speck"], rng), specks)
    fg = _mix(_colour(palette["fg"], rng), _colour(palette["fg_speck"], rng), specks)
    return _mix(bg, fg, mask)


def _ramp(rng) -> np.ndarray:
    theta = rng.uniform(0, 2 * math.pi)
    along = (_X - SIZE / 2) * math.cos(theta) + (_Y - SIZE / 2) * math.sin(theta)
    return np.clip(along / SIZE * 1.2 + 0.5, 0.0, 1.0)


def _gradient(mask, rng, palette):
    ramp = _ramp(rng)
    bg = _mix(_colour(palette["bg"][0], rng), _colour(palette["bg"][1], rng), ramp)
    fg = _mix(_colour(palette["fg"][0], rng), _colour(palette["fg"][1], rng), 1.0 - ramp)
    return _mix(bg, fg, mask)


def _concentric(mask, rng, palette):
    cx, cy = rng.uniform(16, 48, size=2)
    period, phase = rng.uniform(5, 8), rng.uniform(0, 2 * math.pi)
    radius = np.sqrt((_X - cx) ** 2 + (_Y - cy) ** 2)
    return _two_tone(mask, rng, palette, _soft(np.sin(2 * math.pi * radius / period + phase)))


def _flat(mask, rng, palette):
    return _mix(_colour(palette["bg"], rng), _colour(palette["fg"], rng), mask)


def _lineart(mask, rng, palette):
    ink = np.clip(outline(mask) * 1.3, 0.0, 1.0)
    return _mix(_colour(palette["bg"], rng), _colour(palette["ink"], rng), ink)


def _halftone(mask, rng, palette):
    period = rng.uniform(4.0, 5.0)
    u = (_X + _Y) / math.sqrt(2) + rng.uniform(0, period)
    v = (_X - _Y) / math.sqrt(2) + rng.uniform(0, period)
    du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
    distance = np.sqrt(du * du + dv * dv)
    ramp = _ramp(rng)
    tone = (0.08 + 0.27 * ramp) * (1.0 - mask) + (0.62 + 0.28 * ramp) * mask
    dot = np.clip(period * np.sqrt(tone / math.pi) + 0.5 - distance, 0.0, 1.0)
    ink = _mix(_colour(palette["bg_ink"], rng), _colour(palette["fg_ink"], rng), mask)
    paper = _colour(palette["paper"], rng)
    return paper * (1.0 - dot[..., None]) + ink * dot[..., None]


def _crosshatch(mask, rng, palette):
    period = rng.uniform(3.5, 4.5)
    o1, o2 = rng.uniform(0, period, size=2)
    rising = _line_field(_X + _Y, period * math.sqrt(2), o1, 0.5)
    bg_lines = rising
    fg_lines = np.maximum(_line_field(_X + _Y, period * math.sqrt(2), o1, 0.8),
                          _line_field(_X - _Y, period * math.sqrt(2), o2, 0.8))
    paper = _colour(palette["paper"], rng)
    bg = _mix(paper, _colour(palette["bg_ink"], rng), bg_lines)
    fg = _mix(paper * 0.7, _colour(palette["fg_ink"], rng), fg_lines)
    return _mix(bg, fg, mask)


def _neon(mask, rng, palette):
    edge = outline(mask)
    glow = _GLOW @ edge @ _GLOW.T
    light = np.clip(edge + 1.2 * glow, 0.0, 1.0)
    base = _mix(_colour(palette["bg"], rng), np.float32(0.25) * _colour(palette["glow"], rng), mask * 0.35)
    return np.clip(base + _colour(palette["glow"], rng) * light[..., None], 0.0, 1.0)


def _mosaic(mask, rng, palette):
    tile = rng.uniform(5, 7)
    ox, oy = rng.uniform(0, tile, size=2)
    ix, iy = np.floor((_X + ox) / tile).astype(int), np.floor((_Y + oy) / tile).astype(int)
    n = int(SIZE / 5) + 3

    def tiles(colours):
        table = np.stack([_colour(colours[rng.integers(len(colours))], rng) for _ in range(n * n)])
        return table.reshape(n, n, 3)[iy, ix]

    bg, fg = tiles(palette["bg_tiles"]), tiles(palette["fg_tiles"])
    grout = np.maximum(_line_field(_X + ox, tile, 0, 0.3), _line_field(_Y + oy, tile, 0, 0.3))
    return _mix(_mix(bg, fg, mask), _colour(palette["grout"], rng), grout)


STYLE_PAINTERS: dict[str, Callable[..., np.ndarray]] = {
    "stripes": _stripes, "dots": _dots, "checker": _checker, "waves": _waves, "grid": _grid,
    "speckle": _speckle, "gradient": _gradient, "concentric": _concentric, "flat": _flat,
    "lineart": _lineart, "halftone": _halftone, "crosshatch": _crosshatch, "neon": _neon, "mosaic": _mosaic,
}
assert STYLE_PAINTERS.keys() == PALETTES.keys()


def paint(style: str, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint `mask` (object coverage) in `style`: float32 (64, 64, 3) in [0, 1]."""
    try:
        painter = STYLE_PAINTERS[style]
    except KeyError:
        raise ValueError(f"Unknown style {style!r}: choose one of {', '.join(STYLE_PAINTERS)}.") from None
    variants = PALETTES[style]
    palette = variants[int(rng.integers(len(variants)))]
    return np.clip(painter(mask, rng, palette), 0.0, 1.0).astype(np.float32)
