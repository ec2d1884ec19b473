"""`LossPlot`: the training loss over the steps, raw and smoothed, one colour per logged term.

A painted widget rather than a plotting library: the plot is one chart of a few thousand points
with a fixed look (log-scaled loss, steps across), so ~150 lines of QPainter are simpler than a
dependency, keep the dark theme's colours, and cost no import time. The diffusion loss is noisy
from step to step (each step draws its own timestep), so the raw values are drawn faint and an
exponential moving average (the one TensorBoard's slider applies) bold. A backbone run logs
several terms (the total, the denoising loss, the orthogonality penalty, the preservation term);
each gets its own smoothed line. Long runs are thinned to about one point per pixel column.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SMOOTHING = 0.9  # weight of the past in the moving average
COLOURS = {"loss": "#4fa3ff", "denoise": "#f0a030", "ortho": "#c678dd", "keep": "#5fc27a"}
OTHER_COLOURS = ("#e06c75", "#56b6c2", "#d19a66")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 22, 24


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average (early points are not pulled toward 0)."""
    out, average, norm = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(average / norm)
    return out


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._points: list[dict[str, float]] = []

    def set_points(self, points: list[dict[str, float]]) -> None:
        """One dict per step: {"step": n, "loss": ..., other terms...}."""
        self._points = points
        self.update()

    def terms(self) -> list[str]:
        names: list[str] = []
        for point in self._points[:1] + self._points[-1:]:
            names += [k for k in point if k != "step" and k not in names]
        return names

    def series(self, term: str) -> list[tuple[float, float]]:
        """(step, value) of one term, finite and positive values only (the axis is logarithmic)."""
        return [(p["step"], p[term]) for p in self._points
                if term in p and math.isfinite(p[term]) and p[term] > 0]

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_colour = palette.color(palette.ColorRole.WindowText)
        painter.fillRect(self.rect(), palette.color(palette.ColorRole.Base))
        area = QRectF(MARGIN_LEFT, MARGIN_TOP, self.width() - MARGIN_LEFT - MARGIN_RIGHT,
                      self.height() - MARGIN_TOP - MARGIN_BOTTOM)
        terms = [t for t in self.terms() if self.series(t)]
        if not terms or area.width() < 20 or area.height() < 20:
            painter.setPen(text_colour)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "The loss appears here once training starts.")
            return
        all_values = [v for t in terms for _, v in self.series(t)]
        steps = [s for t in terms for s, _ in self.series(t)]
        low, high = math.log10(min(all_values)), math.log10(max(all_values))
        if high - low < 0.3:  # a flat curve still gets a readable scale
            middle = (high + low) / 2
            low, high = middle - 0.15, middle + 0.15
        first, last = min(steps), max(max(steps), min(steps) + 1)

        def at(step: float, value: float) -> QPointF:
            x = area.left() + (step - first) / (last - first) * area.width()
            y = area.bottom() - (math.log10(value) - low) / (high - low) * area.height()
            return QPointF(x, y)

        self._axes(painter, area, text_colour, first, last, low, high)
        painter.setClipRect(area.adjusted(-2, -2, 2, 2))
        for index, term in enumerate(terms):
            colour = QColor(COLOURS.get(term, OTHER_COLOURS[index % len(OTHER_COLOURS)]))
            data = _thin(self.series(term), int(area.width()))
            xs, ys = [s for s, _ in data], [v for _, v in data]
            if term == terms[0]:  # the raw total, faint
                faint = QColor(colour)
                faint.setAlpha(70)
                painter.setPen(QPen(faint, 1))
                painter.drawPath(_path([at(s, v) for s, v in zip(xs, ys, strict=True)]))
            painter.setPen(QPen(colour, 2))
            painter.drawPath(_path([at(s, v) for s, v in zip(xs, smoothed(ys), strict=True)]))
        painter.setClipping(False)
        self._legend(painter, area, terms)

    def _axes(self, painter: QPainter, area: QRectF, colour: QColor, first: float, last: float,
              low: float, high: float) -> None:
        grid = QColor(colour)
        grid.setAlpha(40)
        metrics = painter.fontMetrics()
        for exponent in range(math.floor(low), math.ceil(high) + 1):
            for mantissa in (1, 2, 5):
                value = math.log10(mantissa) + exponent
                if low <= value <= high:
                    y = area.bottom() - (value - low) / (high - low) * area.height()
                    painter.setPen(QPen(grid, 1))
                    painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
                    painter.setPen(colour)
                    label = f"{mantissa * 10.0 ** exponent:.3g}"
                    painter.drawText(QRectF(0, y - 8, MARGIN_LEFT - 6, 16),
                                     Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        painter.setPen(colour)
        for fraction in (0.0, 0.5, 1.0):
            step = first + fraction * (last - first)
            x = area.left() + fraction * area.width()
            text = f"{step:.0f}"
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, area.left()), area.right() - width)
            painter.drawText(QPointF(left, area.bottom() + metrics.ascent() + 6), text)
        painter.drawText(QPointF(area.left(), area.top() - 7), "loss (log scale) by step")

    def _legend(self, painter: QPainter, area: QRectF, terms: list[str]) -> None:
        metrics = painter.fontMetrics()
        x = area.right()
        for index, term in reversed(list(enumerate(terms))):
            label = term + (" (smoothed)" if index == 0 and len(terms) == 1 else "")
            width = metrics.horizontalAdvance(label)
            x -= width
            painter.setPen(QColor(COLOURS.get(term, OTHER_COLOURS[index % len(OTHER_COLOURS)])))
            painter.drawText(QPointF(x, area.top() - 7), label)
            x -= 14


def _thin(data: list[tuple[float, float]], columns: int) -> list[tuple[float, float]]:
    """About one point per pixel column (mean of each run of points); short series untouched."""
    if columns <= 0 or len(data) <= 2 * columns:
        return data
    size = len(data) / columns
    out = []
    for i in range(columns):
        chunk = data[int(i * size): int((i + 1) * size)] or data[-1:]
        out.append((sum(s for s, _ in chunk) / len(chunk), sum(v for _, v in chunk) / len(chunk)))
    return out


def _path(points: list[QPointF]) -> QPainterPath:
    path = QPainterPath()
    for index, point in enumerate(points):
        if index == 0:
            path.moveTo(point)
        else:
            path.lineTo(point)
    return path
