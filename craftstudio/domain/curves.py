"""Curves over denoising progress: guidance s(x), content gate γ_c(x), style gate γ_s(x).

x ∈ [0, 1] is the fraction of denoising progress: 0 = the first (noisiest) step, 1 = the last.
Step k of N (0-based) samples x = k/(N−1); a single step samples x = 0. Curves are never keyed
on raw scheduler timesteps, so one curve means the same thing for every scheduler and step count.

A `Curve` is control points (x_i, y_i), x strictly increasing, plus an interpolation:

* "step": y of the last point with x_i ≤ x, held until the next point (a jump at each x_i).
* "linear": y_i + (y_{i+1} − y_i)(x − x_i)/(x_{i+1} − x_i).
* "smooth": monotone cubic Hermite (PCHIP, Fritsch–Carlson): on each interval the cubic has the
  end values y_i, y_{i+1} and tangents m_i chosen so that it never overshoots: m_i = 0 at a
  local extremum or flat neighbour, else the weighted harmonic mean of the neighbouring secants
  (Fritsch–Butland), with the shape-preserving three-point formula at the ends (as SciPy).
  Between monotone points the curve is monotone.

Before the first point and after the last the value is held constant.

Decisions:

* x must strictly increase for every interpolation, including "step": a step curve jumps at a
  point's x, so a jump needs one point, never two at the same x.
* Ranges: gates y ∈ [0, 1]; absolute guidance y ∈ [0, 30] (CFG scale units); relative
  guidance y ∈ [0, 5].
* Relative guidance scales the guidance strength ω = cfg − 1 of Eq. 11 (s = 1 + ω), not the
  scale itself: s(x) = 1 + y(x)·(cfg − 1). So y = 1 is exactly the request's CFG scale, and
  y = 0 is s = 1, the plain conditional prediction (no guidance) — which lets a preset such as
  `guidance-interval` switch guidance off outside an interval and still follow any CFG value.
  (Multiplying cfg itself would make y = 0 mean s = 0, the unconditional prediction alone.)
  Only the guidance curve may be relative.
* JSON: {"version": 1, "name": ..., "description": ..., "guidance": CURVE, "content": CURVE,
  "style": CURVE}, CURVE = {"interpolation": "step"|"linear"|"smooth", "relative": bool,
  "points": [[x, y], ...]}. Name, description, version and "relative" are optional; unknown keys
  are ignored so files from newer versions still load.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import RequestError
from craftstudio.domain.resources import curves_dir

CURVE_NAMES = ("guidance", "content", "style")
GATE_RANGE = (0.0, 1.0)
GUIDANCE_RANGE = (0.0, 30.0)
RELATIVE_GUIDANCE_RANGE = (0.0, 5.0)
FORMAT_VERSION = 1
MAX_CURVE_FILE_BYTES = 1024 * 1024  # a curve file is a few hundred bytes
# Tolerance when a sampled x meets a step point's x (e.g. a point dragged to 0.7000000001).
_X_EPS = 1e-9
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class CurveError(RequestError):
    """An invalid curve, curve file or preset; the message names the curve and point."""


class Interpolation(StrEnum):
    STEP = "step"
    LINEAR = "linear"
    SMOOTH = "smooth"


@dataclass(frozen=True)
class Curve:
    """Control points plus interpolation; construction checks the points (see module doc)."""

    points: tuple[tuple[float, float], ...]
    interpolation: Interpolation = Interpolation.LINEAR
    relative: bool = False
    _slopes: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            points = tuple((float(x), float(y)) for x, y in self.points)
        except (TypeError, ValueError):
            raise CurveError(f"Curve points must be (x, y) number pairs, not {self.points!r}.") from None
        _check_points(points, "Curve")
        object.__setattr__(self, "points", points)
        try:
            object.__setattr__(self, "interpolation", Interpolation(self.interpolation))
        except ValueError:
            raise CurveError(f"Unknown curve interpolation {self.interpolation!r}: choose one of "
                             f"{', '.join(i.value for i in Interpolation)}.") from None
        if self.interpolation is Interpolation.SMOOTH:
            object.__setattr__(self, "_slopes", _pchip_slopes(self.points))

    @classmethod
    def constant(cls, y: float, relative: bool = False) -> Curve:
        return cls(((0.0, y),), Interpolation.STEP, relative)

    def value(self, x: float) -> float:
        """The curve at progress `x`; held constant outside the first and last point."""
        xs = [p[0] for p in self.points]
        if x <= xs[0]:
            return self.points[0][1]
        if x >= xs[-1]:
            return self.points[-1][1]
        if self.interpolation is Interpolation.STEP:
            return self.points[bisect.bisect_right(xs, x + _X_EPS) - 1][1]
        i = bisect.bisect_right(xs, x) - 1  # xs[i] <= x < xs[i + 1]
        (x0, y0), (x1, y1) = self.points[i], self.points[i + 1]
        h = x1 - x0
        t = (x - x0) / h
        if self.interpolation is Interpolation.LINEAR:
            return y0 + (y1 - y0) * t
        # Cubic Hermite basis on [x0, x1] with tangents m0, m1 (scaled by h to the unit interval).
        m0, m1 = self._slopes[i], self._slopes[i + 1]
        t2, t3 = t * t, t * t * t
        return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * m0
                + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * m1)

    def sample(self, n_steps: int) -> list[float]:
        """Values for steps k = 0 … N−1 at x = k/(N−1) (x = 0 for a single step)."""
        return [self.value(x) for x in progress(n_steps)]

    def to_dict(self) -> dict[str, Any]:
        return {"interpolation": self.interpolation.value, "relative": self.relative,
                "points": [[x, y] for x, y in self.points]}

    @classmethod
    def from_dict(cls, data: Any, name: str = "curve") -> Curve:
        """Build a curve from JSON data; errors name the curve (`name`) and the point."""
        label = f"The {name} curve"
        if not isinstance(data, dict):
            raise CurveError(f"{label} must be an object with \"interpolation\" and \"points\".")
        interpolation = data.get("interpolation", Interpolation.LINEAR.value)
        if not isinstance(interpolation, str) or interpolation not in {i.value for i in Interpolation}:
            raise CurveError(f"{label} has unknown interpolation {interpolation!r}: choose one of "
                             f"{', '.join(i.value for i in Interpolation)}.")
        relative = data.get("relative", False)
        if not isinstance(relative, bool):
            raise CurveError(f"{label} has \"relative\": {relative!r}; it must be true or false.")
        points = data.get("points")
        if not isinstance(points, list):
            raise CurveError(f"{label} needs \"points\": a list of [x, y] pairs.")
        for i, point in enumerate(points, 1):
            if (not isinstance(point, list | tuple) or len(point) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)):
                raise CurveError(f"{label}: point {i} is {point!r}; each point must be [x, y] numbers.")
        _check_points(points, label)
        return cls(tuple((x, y) for x, y in points), Interpolation(interpolation), relative)

    def check_range(self, name: str, low: float, high: float) -> None:
        """Raise `CurveError` naming the curve and point when a y lies outside [low, high]."""
        for i, (x, y) in enumerate(self.points, 1):
            if not low <= y <= high:
                raise CurveError(f"The {name} curve: point {i} (x = {x:g}) has y = {y:g}, outside "
                                 f"{low:g}–{high:g}.")


def progress(n_steps: int) -> list[float]:
    """x of each step: k/(N−1) for k = 0 … N−1; [0.0] for a single step."""
    if n_steps < 1:
        raise CurveError(f"Curves need at least one step, not {n_steps}.")
    if n_steps == 1:
        return [0.0]
    return [k / (n_steps - 1) for k in range(n_steps)]


def _check_points(points: Any, label: str) -> None:
    if len(points) == 0:
        raise CurveError(f"{label} has no points: give at least one.")
    previous: float | None = None
    for i, (x, y) in enumerate(points, 1):
        if not (math.isfinite(x) and 0.0 <= x <= 1.0):
            raise CurveError(f"{label}: point {i} has x = {x}, outside 0–1 (x is the fraction of "
                             f"denoising progress).")
        if not math.isfinite(y):
            raise CurveError(f"{label}: point {i} (x = {x:g}) has y = {y}; y must be a finite number.")
        if previous is not None and x <= previous:
            raise CurveError(f"{label}: point {i} has x = {x:g}, not after point {i - 1}'s x = "
                             f"{previous:g}; x must strictly increase.")
        previous = x


def _pchip_slopes(points: tuple[tuple[float, float], ...]) -> tuple[float, ...]:
    """Fritsch–Carlson tangents d_i (dy/dx) at each point; see the module docstring."""
    n = len(points)
    if n == 1:
        return (0.0,)
    h = [points[i + 1][0] - points[i][0] for i in range(n - 1)]
    delta = [(points[i + 1][1] - points[i][1]) / h[i] for i in range(n - 1)]
    if n == 2:
        return (delta[0], delta[0])  # a straight line
    slopes = [0.0] * n
    for i in range(1, n - 1):
        d0, d1 = delta[i - 1], delta[i]
        if d0 * d1 > 0:  # same sign, neither zero; else a local extremum or flat: tangent 0
            w0, w1 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            slopes[i] = (w0 + w1) / (w0 / d0 + w1 / d1)
    slopes[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    slopes[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return tuple(slopes)


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """Three-point end tangent, clipped so the end interval cannot overshoot."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if math.copysign(1, slope) != math.copysign(1, d0) or d0 == 0:
        return 0.0
    if math.copysign(1, d0) != math.copysign(1, d1) and abs(slope) > abs(3 * d0):
        return 3 * d0
    return slope


@dataclass(frozen=True)
class CurveSamples:
    """Per-step values: guidance in absolute CFG units, gates in [0, 1]."""

    guidance: list[float]
    content: list[float]
    style: list[float]

    def to_dict(self) -> dict[str, list[float]]:
        return {"guidance": list(self.guidance), "content": list(self.content), "style": list(self.style)}


@dataclass(frozen=True)
class CurveSet:
    """The three curves of a generation: guidance s(x), content gate, style gate."""

    guidance: Curve
    content: Curve
    style: Curve
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        for role in ("content", "style"):
            curve: Curve = getattr(self, role)
            if curve.relative:
                raise CurveError(f"The {role} curve cannot be relative: only the guidance curve is.")
            curve.check_range(role, *GATE_RANGE)
        self.guidance.check_range(
            "guidance", *(RELATIVE_GUIDANCE_RANGE if self.guidance.relative else GUIDANCE_RANGE))

    @classmethod
    def constant(cls) -> CurveSet:
        """Gates 1 and the request's CFG scale on every step (standard behaviour)."""
        return cls(Curve.constant(1.0, relative=True), Curve.constant(1.0), Curve.constant(1.0),
                   name="constant")

    def guidance_at(self, x: float, cfg_scale: float) -> float:
        """s(x) in CFG units: relative curves scale ω = cfg − 1 (s = 1 + y·ω)."""
        y = self.guidance.value(x)
        return 1.0 + y * (cfg_scale - 1.0) if self.guidance.relative else y

    def sample(self, n_steps: int, cfg_scale: float) -> CurveSamples:
        xs = progress(n_steps)
        return CurveSamples(
            guidance=[self.guidance_at(x, cfg_scale) for x in xs],
            content=[self.content.value(x) for x in xs],
            style=[self.style.value(x) for x in xs],
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": FORMAT_VERSION}
        if self.name:
            data["name"] = self.name
        if self.description:
            data["description"] = self.description
        data.update({role: getattr(self, role).to_dict() for role in CURVE_NAMES})
        return data

    @classmethod
    def from_dict(cls, data: Any) -> CurveSet:
        if not isinstance(data, dict):
            raise CurveError("Curves must be an object with \"guidance\", \"content\" and \"style\".")
        version = data.get("version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CurveError(f"Curves of format version {version!r} need a newer CraftStudio.")
        missing = [role for role in CURVE_NAMES if role not in data]
        if missing:
            raise CurveError(f"Curves lack the {' and '.join(missing)} curve"
                             f"{'s' if len(missing) > 1 else ''}: each of guidance, content and style "
                             f"is needed.")
        texts = {key: data.get(key, "") for key in ("name", "description")}
        for key, text in texts.items():
            if not isinstance(text, str):
                raise CurveError(f"The curves' \"{key}\" must be text, not {text!r}.")
        curves = {role: Curve.from_dict(data[role], role) for role in CURVE_NAMES}
        return cls(**curves, **texts)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> CurveSet:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CurveError(f"Curves are not valid JSON ({exc}).") from exc
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> CurveSet:
        """Load a curve file; every error is one sentence naming the file."""
        path = Path(path)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read for ever
                raise CurveError(f"Curve file {path} is not a regular file: choose a .json file.")
            if st.st_size > MAX_CURVE_FILE_BYTES:
                raise CurveError(f"Curve file {path} is {st.st_size:,} bytes, more than a curve file holds "
                                 f"({MAX_CURVE_FILE_BYTES:,}): choose a curves .json file.")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CurveError(f"Curve file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CurveError(f"Curve file {path} cannot be read ({exc}).") from exc
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CurveError(f"Curve file {path} is not valid JSON ({exc}).") from exc
        try:
            return cls.from_dict(data)
        except CurveError as exc:
            detail = str(exc)
            raise CurveError(f"Curve file {path}: {detail[:1].lower()}{detail[1:]}") from exc


def list_presets() -> list[str]:
    """Names of the shipped curve presets, sorted."""
    folder = curves_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_preset(name: str) -> CurveSet:
    """The shipped preset `name` (resources/curves/NAME.json)."""
    available = list_presets()
    if not _PRESET_NAME.fullmatch(name) or name not in available:
        raise CurveError(f"Unknown curve preset {name!r}: choose one of "
                         f"{', '.join(available) or '(none installed)'}.")
    return CurveSet.from_file(curves_dir() / f"{name}.json")
