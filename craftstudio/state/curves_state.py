"""`CurvesState`: the three CRAFT curves the curve editor shows and edits.

Holds one `CurveSet` (guidance, content gate, style gate) and where it came from: the shipped
preset it was loaded from and whether the user has edited it since. Every edit builds a new
`Curve`/`CurveSet` through the domain classes, so their checks (x strictly increasing, y in the
curve's range, at least one point) are the only rules: an edit they refuse is rejected whole
and its message lands in `error`, the curves stay as they were.

Edits clamp what a drag can reach (x between the neighbouring points, y within the curve's
range) before the domain sees them, so dragging never produces an error, only a stop.

A small undo list replaces QUndoStack (QtGui in Qt6, and state is QtCore only): each edit, or
each whole drag between `begin_drag()` and `end_drag()`, is one undo step.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from craftstudio.domain.curves import (
    CURVE_NAMES,
    GATE_RANGE,
    GUIDANCE_RANGE,
    RELATIVE_GUIDANCE_RANGE,
    Curve,
    CurveError,
    CurveSamples,
    CurveSet,
    Interpolation,
    list_presets,
    load_preset,
)
from craftstudio.state.properties import ObservableObject, Property, same_object

log = logging.getLogger(__name__)

DEFAULT_PRESET = "paper"
# Closest two points may come in x: the domain needs x strictly increasing, and a gap keeps
# neighbours apart enough to grab one of them again.
MIN_GAP = 0.001
UNDO_LIMIT = 100
EDITED_SUFFIX = "(edited)"
_DECIMALS = 4  # stored values are rounded so a dragged 0.7 reads 0.7, not 0.70031249


class CurvesState(ObservableObject):
    curve_set = Property(CurveSet.constant(), equal=same_object)
    curve_set_changed = Signal(object)
    preset = Property(DEFAULT_PRESET)  # the preset the curves came from; "" = none (custom)
    preset_changed = Signal(str)
    edited = Property(False)  # changed by the user since `preset` was loaded
    edited_changed = Signal(bool)
    active = Property("content")  # the curve the editor edits: guidance, content or style
    active_changed = Signal(str)
    selected = Property(-1)  # index of the selected point of the active curve; -1 = none
    selected_changed = Signal(int)
    error = Property("")  # why the last edit was rejected
    error_changed = Signal(str)
    # Mirrors of the generation settings, for the step ticks and sampled dots.
    steps = Property(20)
    steps_changed = Signal(int)
    cfg_scale = Property(7.0)
    cfg_scale_changed = Signal(float)
    # Image to image: the first steps of the schedule that do not run (the editor shades them).
    skipped_steps = Property(0)
    skipped_steps_changed = Signal(int)
    can_undo = Property(False)
    can_undo_changed = Signal(bool)
    can_redo = Property(False)
    can_redo_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._undo: list[tuple[CurveSet, str, bool]] = []
        self._redo: list[tuple[CurveSet, str, bool]] = []
        self._drag_start: tuple[CurveSet, str, bool] | None = None
        self.load_preset(DEFAULT_PRESET, record=False)

    # --- reading -------------------------------------------------------------------------

    @staticmethod
    def presets() -> list[str]:
        return list_presets()

    def curve(self, role: str | None = None) -> Curve:
        return getattr(self.curve_set, role or self.active)

    def value_range(self, role: str | None = None) -> tuple[float, float]:
        """The y range the domain allows for a curve (gates 0–1, guidance by its kind)."""
        role = role or self.active
        if role != "guidance":
            return GATE_RANGE
        return RELATIVE_GUIDANCE_RANGE if self.curve_set.guidance.relative else GUIDANCE_RANGE

    def samples(self) -> CurveSamples:
        """Per-step values for the current step count (guidance in CFG units)."""
        return self.curve_set.sample(max(1, self.steps), self.cfg_scale)

    def to_request(self) -> dict[str, Any]:
        return self.curve_set.to_dict()

    # --- whole sets ----------------------------------------------------------------------

    def load_preset(self, name: str, *, record: bool = True) -> bool:
        try:
            curves = load_preset(name)
        except CurveError as exc:
            self.error = str(exc)
            return False
        self._replace(curves, name, False, record=record)
        return True

    def revert(self) -> bool:
        """Back to the preset the curves came from, dropping the edits (undoable)."""
        return bool(self.preset) and self.load_preset(self.preset)

    def apply_curves(self, data: dict[str, Any] | None) -> None:
        """Show a request's curves: None is the constant curves (the domain's meaning); a set
        equal to a shipped preset shows as that preset, any other as edited curves."""
        try:
            curves = CurveSet.constant() if data is None else CurveSet.from_dict(data)
        except CurveError as exc:
            self.error = f"The recorded curves were not restored: {exc}"
            return
        preset, edited = _matching_preset(curves), False
        if not preset:
            origin = curves.name.removesuffix(EDITED_SUFFIX).strip()
            preset, edited = (origin if origin in list_presets() else ""), True
        self._replace(curves, preset, edited)

    def settings(self) -> dict[str, Any]:
        """For the settings file: the preset name, plus the curves themselves once edited."""
        return {"preset": self.preset, "curves": self.curve_set.to_dict() if self.edited else None}

    def restore_settings(self, data: Any) -> None:
        """Undo `settings()`; anything unreadable falls back to the default preset (logged)."""
        if not isinstance(data, dict):
            return
        preset = data.get("preset") if isinstance(data.get("preset"), str) else ""
        if isinstance(data.get("curves"), dict):
            try:
                self._replace(CurveSet.from_dict(data["curves"]), preset, True, record=False)
                return
            except CurveError as exc:
                log.warning("saved curves ignored: %s", exc)
        if preset in list_presets():
            self.load_preset(preset, record=False)

    # --- point edits (role None = the active curve) ---------------------------------------

    def move_point(self, index: int, x: float, y: float, role: str | None = None) -> tuple[float, float]:
        """Move a point, clamping x between its neighbours and y to the range; returns where it
        went."""
        role = role or self.active
        curve = self.curve(role)
        points = list(curve.points)
        if not 0 <= index < len(points):
            raise IndexError(f"the {role} curve has no point {index}")
        lo = points[index - 1][0] + MIN_GAP if index > 0 else 0.0
        hi = points[index + 1][0] - MIN_GAP if index + 1 < len(points) else 1.0
        if lo > hi:  # neighbours too close to move between: x stays
            lo = hi = points[index][0]
        x = round(min(max(x, lo), hi), _DECIMALS)
        x = min(max(x, lo), hi)  # rounding may step past a bound by a hair
        low, high = self.value_range(role)
        y = round(min(max(y, low), high), _DECIMALS)
        points[index] = (x, y)
        self._edit(role, points, curve.interpolation)
        return points[index]

    def add_point(self, x: float, y: float, role: str | None = None) -> int | None:
        """Insert a point at x (y clamped to the range); returns its index, None if rejected."""
        role = role or self.active
        curve = self.curve(role)
        low, high = self.value_range(role)
        point = (round(min(max(x, 0.0), 1.0), _DECIMALS), round(min(max(y, low), high), _DECIMALS))
        points = sorted([*curve.points, point], key=lambda p: p[0])
        if not self._edit(role, points, curve.interpolation):
            return None
        index = points.index(point)
        if role == self.active:
            self.selected = index
        return index

    def remove_point(self, index: int, role: str | None = None) -> bool:
        role = role or self.active
        curve = self.curve(role)
        if not 0 <= index < len(curve.points):
            return False
        points = [p for i, p in enumerate(curve.points) if i != index]
        if not self._edit(role, points, curve.interpolation):
            return False
        if role == self.active:
            self.selected = -1
        return True

    def set_interpolation(self, interpolation: Interpolation | str, role: str | None = None) -> bool:
        role = role or self.active
        curve = self.curve(role)
        return self._edit(role, list(curve.points), Interpolation(interpolation))

    def select(self, role: str, index: int = -1) -> None:
        if role not in CURVE_NAMES:
            raise ValueError(f"curve role must be one of {CURVE_NAMES}, not {role!r}")
        self.error = ""  # the message was about the last edit; the user has moved on
        self.active = role
        self.selected = index

    # --- undo ----------------------------------------------------------------------------

    def begin_drag(self) -> None:
        self._drag_start = self._snapshot()

    def end_drag(self) -> None:
        start, self._drag_start = self._drag_start, None
        if start is not None and start[0] is not self.curve_set:
            self._push(start)

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    # --- internals -----------------------------------------------------------------------

    def _edit(self, role: str, points: list[tuple[float, float]], interpolation: Interpolation) -> bool:
        """Build the edited set through the domain; a refused edit sets `error`, changes nothing."""
        old = self.curve(role)
        try:
            curve = Curve(tuple(points), interpolation, old.relative)
            # The name says what the curves are in the PNG's record: "paper (edited)".
            curves = CurveSet(**{r: curve if r == role else self.curve(r) for r in CURVE_NAMES},
                              name=f"{self.preset} {EDITED_SUFFIX}" if self.preset else "")
        except CurveError as exc:
            message = str(exc)
            # Curve() speaks of "Curve"; the user needs to know which one.
            self.error = f"The {role} curve{message[5:]}" if message.startswith("Curve") else message
            return False
        self._replace(curves, self.preset, True, record=self._drag_start is None)
        return True

    def _replace(self, curves: CurveSet, preset: str, edited: bool, *, record: bool = True) -> None:
        if record:
            self._push(self._snapshot())
            self._redo.clear()
        self.error = ""
        self._set(curves, preset, edited)

    def _set(self, curves: CurveSet, preset: str, edited: bool) -> None:
        self.preset, self.edited = preset, edited
        if self.selected >= len(getattr(curves, self.active).points):
            self.selected = -1
        self.curve_set = curves
        self._update_undo_flags()

    def _snapshot(self) -> tuple[CurveSet, str, bool]:
        return self.curve_set, self.preset, self.edited

    def _push(self, snapshot: tuple[CurveSet, str, bool]) -> None:
        self._undo.append(snapshot)
        del self._undo[:-UNDO_LIMIT]
        self._update_undo_flags()

    def _step(self, source: list, target: list) -> bool:
        if not source:
            return False
        target.append(self._snapshot())
        self.error = ""
        self._set(*source.pop())
        return True

    def _update_undo_flags(self) -> None:
        self.can_undo, self.can_redo = bool(self._undo), bool(self._redo)


def _matching_preset(curves: CurveSet) -> str:
    """The shipped preset whose three curves equal `curves` (names aside), or ""."""
    wanted = {role: getattr(curves, role) for role in CURVE_NAMES}
    for name in list_presets():
        try:
            preset = load_preset(name)
        except CurveError:
            continue
        if all(getattr(preset, role) == curve for role, curve in wanted.items()):
            return name
    return ""
