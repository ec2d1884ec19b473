"""`CurveEditor`: the three CRAFT curves drawn over denoising progress, edited with the mouse.

Draws guidance, content gate and style gate over x ∈ [0, 1] (0 = first, noisiest step), the
step positions of the current step count as ticks on the x axis, and each curve's value at every
step as a short vertical tick (what the sampler will use; ticks, not dots, so they are not taken
for draggable points). The gates (0–1) are read on the left axis; guidance has its own axis on
the right (0–5 × CFG strength when relative, 0–30 when absolute), in its colour.

Editing (the active curve, chosen in `CurvesState.active`; clicking another curve's point makes
that curve active):
  drag a point               x stays between its neighbours, y within the range (state clamps)
  double-click empty space   adds a point there
  right-click a point        removes it; Delete/Backspace removes the selected point
  arrow keys                 nudge the selected point (Shift: ten times further)
  Ctrl+Z / Ctrl+Shift+Z      undo / redo
All edits go through `CurvesState`, which validates them with the domain classes; a refused
edit leaves the curves unchanged and its message in `state.error`.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QKeySequence, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from craftstudio.domain.curves import CURVE_NAMES, Interpolation, progress
from craftstudio.state.curves_state import CurvesState

COLORS = {"guidance": QColor("#c99a06"), "content": QColor("#2e86de"), "style": QColor("#c0399b")}
HIT_RADIUS = 8.0  # px around a point that grabs it
MARGINS = (34.0, 10.0, 38.0, 24.0)  # left, top, right, bottom: room for the two axes' labels
SAMPLE_TICK = 3.5  # half-height of a per-step sample tick, px
NUDGE = 0.01  # arrow keys move by this fraction of the axis


class CurveEditor(QWidget):
    def __init__(self, state: CurvesState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._drag_index = -1
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(260, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Drag a point to move it, double-click to add one, right-click or Delete "
                        "to remove it. Ctrl+Z undoes.")
        for signal in (state.curve_set_changed, state.active_changed, state.selected_changed,
                       state.steps_changed, state.cfg_scale_changed, state.skipped_steps_changed):
            signal.connect(self.update)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(380, 200)

    # --- geometry (public so tests can aim at points) -------------------------------------

    def plot_rect(self) -> QRectF:
        left, top, right, bottom = MARGINS
        return QRectF(self.rect()).adjusted(left, top, -right, -bottom)

    def to_widget(self, x: float, y: float, role: str | None = None) -> QPointF:
        rect = self.plot_rect()
        low, high = self.state.value_range(role)
        fraction = (y - low) / (high - low)
        return QPointF(rect.left() + x * rect.width(), rect.bottom() - fraction * rect.height())

    def from_widget(self, pos: QPointF, role: str | None = None) -> tuple[float, float]:
        rect = self.plot_rect()
        low, high = self.state.value_range(role)
        x = (pos.x() - rect.left()) / rect.width()
        y = low + (rect.bottom() - pos.y()) / rect.height() * (high - low)
        return x, y

    def point_at(self, pos: QPointF) -> tuple[str, int] | None:
        """The curve and index of the point under `pos`; the active curve wins ties."""
        roles = [self.state.active] + [r for r in CURVE_NAMES if r != self.state.active]
        for role in roles:
            for index, (x, y) in enumerate(self.state.curve(role).points):
                if (self.to_widget(x, y, role) - pos).manhattanLength() <= HIT_RADIUS * 1.4:
                    return role, index
        return None

    # --- mouse and keys --------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if not self.isEnabled():
            return
        self.setFocus()
        hit = self.point_at(event.position())
        if event.button() == Qt.MouseButton.RightButton:
            if hit is not None:
                self.state.select(hit[0])
                self.state.remove_point(hit[1])
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if hit is None:
            self.state.selected = -1
            return
        self.state.select(*hit)
        self._drag_index = hit[1]
        self.state.begin_drag()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._drag_index >= 0:
            x, y = self.from_widget(event.position())
            self.state.move_point(self._drag_index, x, y)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._drag_index >= 0:
            self._drag_index = -1
            self.state.end_drag()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() != Qt.MouseButton.LeftButton or not self.isEnabled():
            return
        if self.point_at(event.position()) is None:
            x, y = self.from_widget(event.position())
            if 0.0 <= x <= 1.0:
                self.state.add_point(x, y)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        state = self.state
        if event.matches(QKeySequence.StandardKey.Undo):
            state.undo()
        elif event.matches(QKeySequence.StandardKey.Redo):
            state.redo()
        elif event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and state.selected >= 0:
            state.remove_point(state.selected)
        elif event.key() in _ARROWS and state.selected >= 0:
            dx, dy = _ARROWS[event.key()]
            step = NUDGE * (10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1)
            low, high = state.value_range()
            x, y = state.curve().points[state.selected]
            state.move_point(state.selected, x + dx * step, y + dy * step * (high - low))
        else:
            super().keyPressEvent(event)

    # --- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        rect = self.plot_rect()
        painter.fillRect(self.rect(), palette.base())
        self._draw_axes(painter, rect)
        self._draw_skipped(painter, rect)
        samples = self.state.samples()
        values = {"guidance": self._guidance_in_curve_units(samples.guidance),
                  "content": samples.content, "style": samples.style}
        xs = progress(len(samples.content))
        active = self.state.active
        for role in [r for r in CURVE_NAMES if r != active] + [active]:  # active on top
            self._draw_curve(painter, role, role == active)
            self._draw_samples(painter, role, xs, values[role], role == active)
        self._draw_handles(painter, active)
        if not self.isEnabled():
            painter.fillRect(rect, QColor(128, 128, 128, 90))
            painter.setPen(palette.text().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Gates off: constant curves")
        painter.end()

    def skipped_width(self) -> float:
        """Width (pixels) of the shaded start of the schedule that image to image skips: up to
        halfway between the last skipped step and the first one run."""
        skipped, steps = self.state.skipped_steps, max(1, self.state.steps)
        if skipped <= 0:
            return 0.0
        fraction = 1.0 if skipped >= steps or steps == 1 else (skipped - 0.5) / (steps - 1)
        return fraction * self.plot_rect().width()

    def _draw_skipped(self, painter: QPainter, rect: QRectF) -> None:
        width = self.skipped_width()
        if width <= 0:
            return
        shade = QRectF(rect.left(), rect.top(), width, rect.height())
        text = self.palette().text().color()
        fill = QColor(text)
        fill.setAlpha(28)
        painter.fillRect(shade, fill)
        painter.setPen(text)
        painter.drawText(shade.adjusted(4, 2, -2, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                         "skipped by image to image")

    def _draw_axes(self, painter: QPainter, rect: QRectF) -> None:
        text = self.palette().text().color()
        grid = QColor(text)
        grid.setAlpha(40)
        painter.setPen(QPen(grid, 1))
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = rect.bottom() - fraction * rect.height()
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        painter.setPen(QPen(text, 1))
        painter.drawRect(rect)
        # Step ticks: one per denoising step at x = k/(N-1); thinned when they would touch.
        xs = progress(max(1, self.state.steps))
        every = max(1, round(len(xs) * 3 / max(rect.width(), 1)))
        for k in range(0, len(xs), every):
            x = rect.left() + xs[k] * rect.width()
            painter.drawLine(QPointF(x, rect.bottom()), QPointF(x, rect.bottom() + 4))
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        painter.setFont(font)
        painter.drawText(QRectF(rect.left() - 12, rect.bottom() + 5, 24, 16),
                         Qt.AlignmentFlag.AlignHCenter, "0")
        painter.drawText(QRectF(rect.right() - 12, rect.bottom() + 5, 24, 16),
                         Qt.AlignmentFlag.AlignHCenter, "1")
        painter.drawText(QRectF(rect.left(), rect.bottom() + 5, rect.width(), 16),
                         Qt.AlignmentFlag.AlignHCenter, f"progress · {self.state.steps} steps")
        # Left axis: the gates (0–1). Right axis: guidance, in its own range and colour.
        gate_low, gate_high = self.state.value_range("content")
        low, high = self.state.value_range("guidance")
        unit = "×" if self.state.curve("guidance").relative else ""
        right_edge = float(self.width())
        for fraction in (0.0, 0.5, 1.0):
            y = rect.bottom() - fraction * rect.height()
            painter.setPen(text)
            painter.drawText(QRectF(0, y - 8, rect.left() - 6, 16),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{gate_low + fraction * (gate_high - gate_low):g}")
            painter.setPen(COLORS["guidance"])
            painter.drawText(QRectF(rect.right() + 6, y - 8, right_edge - rect.right() - 6, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"{low + fraction * (high - low):g}{unit}")

    def _draw_curve(self, painter: QPainter, role: str, active: bool) -> None:
        curve = self.state.curve(role)
        path = QPainterPath()
        if curve.interpolation is Interpolation.STEP:
            # Exact corners: hold each value until the next point's x, then jump.
            ys = [y for _, y in curve.points]
            xs = [0.0] + [x for x, _ in curve.points[1:]] + [1.0]
            path.moveTo(self.to_widget(0.0, ys[0], role))
            for i, y in enumerate(ys):
                path.lineTo(self.to_widget(xs[i], y, role))
                path.lineTo(self.to_widget(xs[i + 1], y, role))
        else:
            count = max(2, int(self.plot_rect().width()))
            for i in range(count + 1):
                x = i / count
                point = self.to_widget(x, curve.value(x), role)
                if i == 0:
                    path.moveTo(point)
                else:
                    path.lineTo(point)
        color = QColor(COLORS[role])
        if not active:
            color.setAlpha(110)
        painter.setPen(QPen(color, 2.5 if active else 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)

    def _draw_samples(self, painter: QPainter, role: str, xs: list[float], ys: list[float],
                      active: bool) -> None:
        color = QColor(COLORS[role])
        color.setAlpha(200 if active else 90)
        painter.setPen(QPen(color, 1.5 if active else 1.0))
        half = QPointF(0, SAMPLE_TICK if active else SAMPLE_TICK * 0.7)
        for x, y in zip(xs, ys, strict=True):
            point = self.to_widget(x, y, role)
            painter.drawLine(point - half, point + half)

    def _draw_handles(self, painter: QPainter, role: str) -> None:
        painter.setPen(QPen(COLORS[role], 2))
        for index, (x, y) in enumerate(self.state.curve(role).points):
            selected = index == self.state.selected
            painter.setBrush(COLORS[role] if selected else self.palette().base())
            painter.drawRect(QRectF(self.to_widget(x, y, role) - QPointF(4.5, 4.5), QSizeF(9, 9)))

    def _guidance_in_curve_units(self, guidance: list[float]) -> list[float]:
        """Sampled guidance is in CFG units; a relative curve is drawn in its own units
        (s = 1 + y·(cfg − 1), so y = (s − 1)/(cfg − 1))."""
        curve = self.state.curve("guidance")
        cfg = self.state.cfg_scale
        if not curve.relative:
            return guidance
        if abs(cfg - 1.0) < 1e-9:  # every y gives s = 1: show the curve's own values
            return curve.sample(len(guidance))
        return [(s - 1.0) / (cfg - 1.0) for s in guidance]


_ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, 1),
           Qt.Key.Key_Down: (0, -1)}
