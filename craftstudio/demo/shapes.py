"""ShapesWorld's content classes: the geometry of every shape and its anti-aliased mask.

Each shape is drawn in unit coordinates (y pointing down, radius about 1), rotated, scaled and
moved by a `Placement`, on a 4× supersampled canvas with Pillow and box-filtered down to 64×64,
so the mask is a soft coverage map in [0, 1]. Rotations stay within ±25°: several shapes are
defined by their orientation (an arrow points right, a diamond stands upright, a square does
not stand on a corner), so a full turn would make classes overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4
MAX_ROTATION = 25.0  # degrees either way
RADIUS_RANGE = (14.0, 24.0)  # pixels, the radius of the unit circle on the image
MARGIN = 2.0  # pixels kept free between the unit circle and the image border

Point = tuple[float, float]


@dataclass(frozen=True)
class Placement:
    """Where a shape sits: centre (pixels), radius (pixels), rotation (degrees, clockwise)."""

    cx: float
    cy: float
    radius: float
    angle: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Placement:
        radius = float(rng.uniform(*RADIUS_RANGE))
        low, high = radius + MARGIN, SIZE - radius - MARGIN
        cx, cy = (float(v) for v in rng.uniform(low, high, size=2))
        angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
        return cls(cx, cy, radius, angle)


class _Canvas:
    """Draws unit-space polygons and circles onto the supersampled mask."""

    def __init__(self, placement: Placement) -> None:
        self.side = SIZE * SUPERSAMPLE
        self.image = Image.new("L", (self.side, self.side), 0)
        self.draw = ImageDraw.Draw(self.image)
        theta = math.radians(placement.angle)
        self._cos, self._sin = math.cos(theta), math.sin(theta)
        self._scale = placement.radius * SUPERSAMPLE
        self._cx, self._cy = placement.cx * SUPERSAMPLE, placement.cy * SUPERSAMPLE

    def _to_pixels(self, x: float, y: float) -> Point:
        rx = x * self._cos - y * self._sin
        ry = x * self._sin + y * self._cos
        return self._cx + rx * self._scale, self._cy + ry * self._scale

    def polygon(self, points: list[Point], fill: int = 255) -> None:
        self.draw.polygon([self._to_pixels(x, y) for x, y in points], fill=fill)

    def circle(self, x: float, y: float, radius: float, fill: int = 255) -> None:
        px, py = self._to_pixels(x, y)
        r = radius * self._scale
        self.draw.ellipse((px - r, py - r, px + r, py + r), fill=fill)

    def coverage(self) -> np.ndarray:
        small = self.image.resize((SIZE, SIZE), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0


def _regular(count: int, radius: float, start_degrees: float) -> list[Point]:
    step = 2 * math.pi / count
    start = math.radians(start_degrees)
    return [(radius * math.cos(start + i * step), radius * math.sin(start + i * step)) for i in range(count)]


def _star(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> list[Point]:
    out: list[Point] = []
    for i in range(points * 2):
        r = outer if i % 2 == 0 else inner
        a = -math.pi / 2 + i * math.pi / points
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def _heart() -> list[Point]:
    pts = []
    for i in range(64):
        t = 2 * math.pi * i / 64
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x / 17.0, -(y + 2.5) / 15.5))
    return pts


def _draw_circle(c: _Canvas) -> None:
    c.circle(0, 0, 0.9)


def _draw_square(c: _Canvas) -> None:
    c.polygon([(-0.72, -0.72), (0.72, -0.72), (0.72, 0.72), (-0.72, 0.72)])


def _draw_triangle(c: _Canvas) -> None:
    c.polygon([(x, y + 0.12) for x, y in _regular(3, 1.05, -90)])


def _draw_star(c: _Canvas) -> None:
    c.polygon([(x, y + 0.06) for x, y in _star()])


def _draw_heart(c: _Canvas) -> None:
    c.polygon(_heart())


def _draw_cross(c: _Canvas) -> None:
    w, r = 0.3, 0.92
    c.polygon([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
               (-r, w), (-r, -w), (-w, -w)])


def _draw_ring(c: _Canvas) -> None:
    c.circle(0, 0, 0.95)
    c.circle(0, 0, 0.55, fill=0)


def _draw_crescent(c: _Canvas) -> None:
    c.circle(0, 0, 0.92)
    c.circle(0.42, -0.12, 0.78, fill=0)


def _draw_arrow(c: _Canvas) -> None:
    c.polygon([(-0.95, -0.22), (0.15, -0.22), (0.15, -0.62), (0.95, 0.0), (0.15, 0.62), (0.15, 0.22),
               (-0.95, 0.22)])


def _draw_hexagon(c: _Canvas) -> None:
    c.polygon(_regular(6, 0.92, 0))


def _draw_diamond(c: _Canvas) -> None:
    c.polygon([(0.0, -1.0), (0.58, 0.0), (0.0, 1.0), (-0.58, 0.0)])


def _draw_bolt(c: _Canvas) -> None:
    c.polygon([(0.12, -1.0), (-0.62, 0.16), (-0.08, 0.16), (-0.3, 1.0), (0.62, -0.22), (0.1, -0.22),
               (0.5, -1.0)])


def _draw_drop(c: _Canvas) -> None:
    c.circle(0, 0.35, 0.6)
    c.polygon([(0.0, -1.0), (0.54, 0.08), (-0.54, 0.08)])


def _draw_flower(c: _Canvas) -> None:
    for x, y in _regular(6, 0.56, -90):
        c.circle(x, y, 0.37)
    c.circle(0, 0, 0.5)


SHAPE_DRAWERS: dict[str, Callable[[_Canvas], None]] = {
    "circle": _draw_circle,
    "square": _draw_square,
    "triangle": _draw_triangle,
    "star": _draw_star,
    "cross": _draw_cross,
    "ring": _draw_ring,
    "crescent": _draw_crescent,
    "arrow": _draw_arrow,
    "hexagon": _draw_hexagon,
    "diamond": _draw_diamond,
    "drop": _draw_drop,
    "flower": _draw_flower,
    "heart": _draw_heart,
    "bolt": _draw_bolt,
}


def shape_mask(shape: str, placement: Placement) -> np.ndarray:
    """Coverage of `shape` at `placement`: float32 (64, 64) in [0, 1]."""
    try:
        drawer = SHAPE_DRAWERS[shape]
    except KeyError:
        raise ValueError(f"Unknown shape {shape!r}: choose one of {', '.join(SHAPE_DRAWERS)}.") from None
    canvas = _Canvas(placement)
    drawer(canvas)
    return canvas.coverage()
