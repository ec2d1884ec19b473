"""`MaskCanvas`: one image with an inpainting mask painted over it, in image pixels.

The mask is a Format_Grayscale8 QImage the size of the image holding only 0 (keep) and 255
(redo): strokes are filled with antialiasing off and loaded masks are thresholded, so it stays
binary until the caller feathers it for generation. Geometry follows `ImageView`: a small image is
enlarged by a whole factor with nearest-neighbour sampling (crisp squares), a large one is fitted
smoothly; the picture is centred. The mask shows as a translucent tint over the white region.

A stroke is a chain of round-capped segments of brush width between successive mouse positions,
so a fast drag leaves no gaps. Dab centres snap to the pixel grid (odd sizes to a pixel's centre,
even sizes to a pixel corner), so a dab always covers a symmetric footprint exactly `brush_size`
pixels across: clicking one square of a zoomed 64×64 image with size 1 paints that square.
"""

from __future__ import annotations

import math
from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

TINT = QColor(255, 40, 120)  # magenta-red: stands out on skin, sky and foliage alike
TINT_OPACITY = 0.45
UNDO_DEPTH = 20
MAX_BRUSH = 512
GRAY8 = QImage.Format.Format_Grayscale8
_BINARY = bytes(0 if value < 128 else 255 for value in range(256))  # the threshold, as a table


def binarize(image: QImage) -> QImage:
    """`image` as Grayscale8 holding only 0 and 255 (threshold at 128)."""
    gray = image.convertToFormat(GRAY8)
    # bytes.translate runs in C: a 2048² mask is thresholded in milliseconds, no numpy needed.
    data = bytes(gray.constBits()).translate(_BINARY)
    return QImage(data, gray.width(), gray.height(), gray.bytesPerLine(), GRAY8).copy()


def blank_mask(size: QSize) -> QImage:
    mask = QImage(size, GRAY8)
    mask.fill(0)
    return mask


class MaskCanvas(QWidget):
    mask_changed = Signal()  # once per finished stroke or whole-mask edit, only if pixels changed
    mask_visible_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._mask = QImage()
        self._overlay = QImage()  # tint with the mask as alpha; rebuilt lazily when stale
        self._overlay_stale = True
        self._scaled = QPixmap()  # the image at the current on-screen size
        self._undo: deque[QImage] = deque(maxlen=UNDO_DEPTH)
        self._tool = "brush"
        self._brush_size = 16
        self._visible = True
        self._stroke_button: Qt.MouseButton | None = None
        self._stroke_value = 255
        self._stroke_before = QImage()
        self._last = QPointF()
        self._cursor: QPointF | None = None  # snapped dab centre, image coordinates
        self.placeholder = "Set an image to paint a mask on it."
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)  # precise centre; the outline shows the size
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(512, 512)

    # --- image and mask ----------------------------------------------------------------------

    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage, *, keep_mask: bool = False) -> None:
        """Show `image` with a blank mask, or with the current one when `keep_mask` and the
        sizes match (another inpainting pass over a result)."""
        if image.isNull():
            self.clear_image()
            return
        self._finish_stroke()
        keep = keep_mask and image.size() == self._image.size()
        self._image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self._scaled = QPixmap()
        if not keep:
            self._replace_mask(blank_mask(image.size()))
        self.update()

    def clear_image(self) -> None:
        self._finish_stroke()
        self._image = QImage()
        self._scaled = QPixmap()
        self._replace_mask(QImage())
        self.update()

    def _replace_mask(self, mask: QImage) -> None:
        had_mask = self.has_mask()
        self._mask = mask
        self._undo.clear()  # old steps belong to another picture
        self._overlay_stale = True
        if had_mask:
            self.mask_changed.emit()

    def mask(self) -> QImage:
        return self._mask.copy()  # strokes paint ours in place; the caller's copy must not change

    def has_mask(self) -> bool:
        # QImage == compares pixels in C, ignoring the padding at the end of each line.
        return not self._mask.isNull() and self._mask != blank_mask(self._mask.size())

    def set_mask(self, mask: QImage) -> None:
        """Replace the mask (one undo step): resized to the image with nearest, thresholded."""
        if self._image.isNull():
            raise ValueError("Set an image before setting its mask.")
        if mask.isNull():
            raise ValueError("The new mask is an empty image.")
        if mask.size() != self._image.size():
            mask = mask.scaled(self._image.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                               Qt.TransformationMode.FastTransformation)
        self._edit(binarize(mask))

    def clear_mask(self) -> None:
        self._edit(blank_mask(self._mask.size()))

    def fill_mask(self) -> None:
        filled = blank_mask(self._mask.size())
        filled.fill(255)
        self._edit(filled)

    def invert_mask(self) -> None:
        inverted = self._mask.copy()
        inverted.invertPixels()  # bytewise NOT: 0 <-> 255
        self._edit(inverted)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> None:
        if self._undo and self._stroke_button is None:
            self._mask = self._undo.pop()
            self._overlay_stale = True
            self.update()
            self.mask_changed.emit()

    def _edit(self, mask: QImage) -> None:
        if not self._mask.isNull() and self._stroke_button is None:
            before, self._mask = self._mask, mask
            self._commit(before)

    def _commit(self, before: QImage) -> None:
        """One undo step and one signal, only when a pixel changed (erasing black is no edit)."""
        self._overlay_stale = True
        self.update()
        if self._mask != before:
            self._undo.append(before)
            self.mask_changed.emit()

    # --- tools -------------------------------------------------------------------------------

    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        if tool not in ("brush", "eraser"):
            raise ValueError(f"Unknown mask tool {tool!r}: use 'brush' or 'eraser'.")
        self._tool = tool

    def brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, size: int) -> None:
        self._brush_size = min(max(int(size), 1), MAX_BRUSH)
        self.update()

    def mask_visible(self) -> bool:
        return self._visible

    def set_mask_visible(self, visible: bool) -> None:
        if visible != self._visible:
            self._visible = visible
            self.update()
            self.mask_visible_changed.emit(visible)

    # --- geometry (public so tests and callers can aim at pixels) ------------------------------

    def zoom(self) -> float:
        """Screen pixels per image pixel: a whole number when enlarged, 0 without an image."""
        if self._image.isNull() or self.width() <= 0 or self.height() <= 0:
            return 0.0
        fit = min(self.width() / self._image.width(), self.height() / self._image.height())
        return float(int(fit)) if fit >= 1 else fit

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates."""
        zoom = self.zoom()
        width, height = self._image.width() * zoom, self._image.height() * zoom
        left, top = (self.width() - width) / 2, (self.height() - height) / 2
        if zoom >= 1:
            left, top = math.floor(left), math.floor(top)  # whole pixels keep the squares aligned
        return QRectF(left, top, width, height)

    def to_image(self, pos: QPointF) -> QPointF:
        """A widget position in image coordinates (pixel (x, y) spans [x, x+1) × [y, y+1))."""
        rect, zoom = self.image_rect(), self.zoom() or 1.0
        return QPointF((pos.x() - rect.left()) / zoom, (pos.y() - rect.top()) / zoom)

    def to_widget(self, point: QPointF) -> QPointF:
        rect, zoom = self.image_rect(), self.zoom()
        return QPointF(rect.left() + point.x() * zoom, rect.top() + point.y() * zoom)

    def _dab_centre(self, event: QMouseEvent) -> QPointF:
        # A mouse position names a screen pixel; its centre is the point under the hotspot.
        point = self.to_image(event.position() + QPointF(0.5, 0.5))
        if self._brush_size % 2:
            return QPointF(math.floor(point.x()) + 0.5, math.floor(point.y()) + 0.5)
        return QPointF(round(point.x()), round(point.y()))

    # --- painting with the mouse -------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._image.isNull() or self._stroke_button is not None:
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._stroke_value = 255 if self._tool == "brush" else 0
        elif event.button() == Qt.MouseButton.RightButton:
            self._stroke_value = 0  # right drag always erases, as in Krita
        else:
            return
        self.setFocus()
        self.set_mask_visible(True)  # never edit a mask the artist cannot see
        self._stroke_button = event.button()
        self._stroke_before = self._mask.copy()
        self._last = self._dab_centre(event)
        self._paint_segment(self._last, self._last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._image.isNull():
            return
        centre = self._dab_centre(event)
        self._cursor = centre
        if self._stroke_button is not None and centre != self._last:
            self._paint_segment(self._last, centre)
            self._last = centre
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() != self._stroke_button:
            return
        centre = self._dab_centre(event)
        if centre != self._last:
            self._paint_segment(self._last, centre)
        self._finish_stroke()

    def _finish_stroke(self) -> None:
        if self._stroke_button is not None:
            self._stroke_button = None
            self._commit(self._stroke_before)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._cursor = None
        self.update()

    def _paint_segment(self, start: QPointF, end: QPointF) -> None:
        radius = self._brush_size / 2
        if start == end:
            shape = QPainterPath()
            shape.addEllipse(end, radius, radius)
        else:
            line = QPainterPath(start)
            line.lineTo(end)
            stroker = QPainterPathStroker()
            stroker.setWidth(self._brush_size)
            stroker.setCapStyle(Qt.PenCapStyle.RoundCap)
            stroker.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            shape = stroker.createStroke(line)
        painter = QPainter(self._mask)
        # Aliased fill: a pixel is in when its centre is inside the shape, so the mask stays binary.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.fillPath(shape, QColor(self._stroke_value, self._stroke_value, self._stroke_value))
        painter.end()
        self._overlay_stale = True
        self.update()

    # --- drawing -----------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if self._image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
            return
        rect = self.image_rect()
        enlarged = self.zoom() >= 1
        size = rect.size().toSize()
        if self._scaled.size() != size:
            # Cached: smooth down-scaling is too slow to redo on every mouse move of a big image.
            mode = Qt.TransformationMode.FastTransformation if enlarged else Qt.TransformationMode.SmoothTransformation
            self._scaled = QPixmap.fromImage(self._image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, mode))
        painter.drawPixmap(rect.topLeft(), self._scaled)
        if self._visible:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not enlarged)
            painter.setOpacity(TINT_OPACITY)
            painter.drawImage(rect, self._tint())
            painter.setOpacity(1.0)
        if self._cursor is not None:
            self._draw_cursor(painter)

    def _tint(self) -> QImage:
        if self._overlay_stale:
            self._overlay = QImage(self._mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
            self._overlay.fill(TINT)
            self._overlay.setAlphaChannel(self._mask)  # white mask = opaque tint, black = none
            self._overlay_stale = False
        return self._overlay

    def _draw_cursor(self, painter: QPainter) -> None:
        """The brush outline at its true size: dark under light, visible on any picture."""
        centre = self.to_widget(self._cursor)
        radius = max(self._brush_size * self.zoom() / 2, 1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, width in ((QColor(0, 0, 0, 170), 3.0), (QColor(255, 255, 255), 1.0)):
            painter.setPen(QPen(color, width))
            painter.drawEllipse(centre, radius, radius)
