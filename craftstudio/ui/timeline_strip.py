"""`TimelineStrip`: the step previews as small thumbnails under the curve editor.

Each preview of step k of N is drawn centred on x = k/(N−1) of the editor's plot area (the
same left/right margins as `CurveEditor`), so a thumbnail sits under the curves' value for
that step: the user sees where the shape forms and where the texture arrives relative to the
gates. Thumbnails that would overlap go to a second, staggered row; those that fit on neither
are left out (the last step always shows). Clicking one shows it larger.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from craftstudio.state.timeline_state import TimelineState
from craftstudio.ui.curve_editor import MARGINS
from craftstudio.ui.image_view import to_qimage

THUMB = 40
ROWS = 2
ROW_HEIGHT = THUMB + 16  # the thumbnail and its step number
LARGE = 192


class TimelineStrip(QWidget):
    def __init__(self, state: TimelineState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._pixmaps: list[QPixmap] = []
        self.strip = _Strip(self)
        self.large = QLabel()
        self.large.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.large.setVisible(False)
        self.large.setToolTip("Click it again to hide")
        self.large.mousePressEvent = lambda _e: state.select(-1)  # type: ignore[method-assign]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.strip)
        layout.addWidget(self.large)
        self.setToolTip("Step previews at their place on the curves; click one to see it larger")
        state.frames_changed.connect(self._on_frames)
        state.selected_changed.connect(self._on_selected)
        self._on_frames(state.frames)

    @property
    def pixmaps(self) -> list[QPixmap]:
        return self._pixmaps

    def thumbnail_rects(self) -> list[QRect]:
        return self.strip.rects()

    def _on_frames(self, frames) -> None:
        self._pixmaps = [QPixmap.fromImage(to_qimage(f.image)) for f in frames]
        self.strip.update()
        self.setVisible(bool(frames))

    def _on_selected(self, index: int) -> None:
        frame = self.state.selected_frame
        if frame is None:
            self.large.setVisible(False)
            return
        pixmap = self._pixmaps[index]
        self.large.setPixmap(pixmap.scaled(QSize(LARGE, LARGE), Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation))
        self.large.setVisible(True)
        self.strip.update()


class _Strip(QWidget):
    def __init__(self, owner: TimelineStrip) -> None:
        super().__init__(owner)
        self.owner = owner
        self.setFixedHeight(ROWS * ROW_HEIGHT + 2)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def centre_x(self, x: float) -> float:
        left, _top, right, _bottom = MARGINS
        return left + x * (self.width() - left - right)

    def rects(self) -> list[QRect]:
        """Each frame's thumbnail rectangle (empty where left out to avoid overlap)."""
        frames = self.owner.state.frames
        out, last_right = [], [-10**6] * ROWS
        for frame in frames:
            centre = round(self.centre_x(frame.x))
            row = next((r for r in range(ROWS) if centre - THUMB // 2 > last_right[r] + 2), None)
            if row is None and frame is frames[-1]:
                row = ROWS - 1  # the finished picture always shows
            if row is None:
                out.append(QRect())
                continue
            rect = QRect(centre - THUMB // 2, 2 + row * ROW_HEIGHT, THUMB, THUMB)
            out.append(rect)
            last_right[row] = rect.right()
        return out

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        palette = self.palette()
        for index, (rect, pixmap) in enumerate(zip(self.rects(), self.owner.pixmaps, strict=False)):
            if rect.isNull():
                continue
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, pixmap.width() > THUMB)
            painter.drawPixmap(rect, pixmap)
            selected = index == self.owner.state.selected
            painter.setPen(QPen(palette.highlight().color() if selected else palette.mid().color(), 2 if selected else 1))
            painter.drawRect(rect)
            painter.setPen(palette.text().color())
            frame = self.owner.state.frames[index]
            painter.drawText(QRect(rect.left() - 6, rect.bottom() + 1, rect.width() + 12, 14),
                             Qt.AlignmentFlag.AlignHCenter, str(frame.step + 1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        point: QPoint = event.position().toPoint()
        for index, rect in enumerate(self.rects()):
            if not rect.isNull() and rect.contains(point):
                self.owner.state.select(-1 if index == self.owner.state.selected else index)
                return
