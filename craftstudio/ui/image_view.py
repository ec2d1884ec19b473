"""`ImageView`: one large image scaled to fit, with a strip of thumbnails for a batch.

Small images (the demo's 64×64, step previews) are enlarged by a whole factor with nearest-
neighbour sampling, so every pixel shows as a crisp square, as pixel artists expect; a caption
says the size and the zoom. Larger images are scaled down smoothly.

Images arrive as PIL images (from the engine, via state) and are converted here with their own
`convert`/`tobytes` methods, so the ui layer needs no image library import.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QSizePolicy, QVBoxLayout, QWidget


def to_qimage(image: Any) -> QImage:
    """A PIL image as a QImage (a deep copy: the PIL buffer may go away)."""
    rgba = image.convert("RGBA")
    data = rgba.tobytes("raw", "RGBA")
    qimage = QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888)
    return qimage.copy()


class ImageView(QWidget):
    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self._images: list[Any] = []
        self.label = QLabel(placeholder)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.label.setMinimumSize(256, 256)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.label.setObjectName("imageCanvas")
        self._placeholder = placeholder
        self.caption = QLabel()
        self.caption.setObjectName("imageCaption")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("color: palette(mid);")
        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbnails.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setIconSize(QSize(72, 72))
        self.thumbnails.setFixedHeight(100)
        self.thumbnails.setVisible(False)
        self.thumbnails.currentRowChanged.connect(self._show_index)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.thumbnails)

    def pixmap(self) -> QPixmap:
        """The full-size pixmap shown (null when none)."""
        return self._pixmap

    def show_image(self, image: Any | None) -> None:
        """Show one image (a step preview); None keeps the current one."""
        if image is not None:
            self._set_pixmap(QPixmap.fromImage(to_qimage(image)))

    def zoom(self) -> float:
        """How many screen pixels an image pixel takes (a whole number when enlarged)."""
        shown = self.label.pixmap()
        if self._pixmap.isNull() or shown is None or shown.isNull():
            return 0.0
        return shown.width() / self._pixmap.width()

    def clear(self) -> None:
        """No image: the placeholder text again."""
        self._pixmap = QPixmap()
        self._images = []
        self.thumbnails.clear()
        self.thumbnails.setVisible(False)
        self.label.setPixmap(QPixmap())
        self.label.setText(self._placeholder)
        self.caption.setText("")

    def show_images(self, images: list[Any]) -> None:
        """Show a finished batch: the first image large, thumbnails when there are several."""
        if not images:
            self.clear()
            return
        self._images = list(images)
        self.thumbnails.clear()
        for index, image in enumerate(self._images):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(image))), f"{index + 1}")
            self.thumbnails.addItem(item)
        self.thumbnails.setVisible(len(self._images) > 1)
        if self._images:
            self.thumbnails.setCurrentRow(0)
            self._show_index(0)

    def _show_index(self, index: int) -> None:
        if 0 <= index < len(self._images):
            self._set_pixmap(QPixmap.fromImage(to_qimage(self._images[index])))

    def _set_pixmap(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        target = self.label.size()
        width, height = self._pixmap.width(), self._pixmap.height()
        fit = min(target.width() / width, target.height() / height)
        if fit >= 1:
            # Enlarge by a whole factor, nearest neighbour: crisp pixels, none wider than another.
            zoom = max(1, int(fit))
            shown = self._pixmap.scaled(width * zoom, height * zoom, Qt.AspectRatioMode.IgnoreAspectRatio,
                                        Qt.TransformationMode.FastTransformation)
            self.caption.setText(f"{width} × {height} px" + (f" · shown at {zoom}×" if zoom > 1 else ""))
        else:
            shown = self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)
            self.caption.setText(f"{width} × {height} px · shown at {round(fit * 100)}%")
        self.label.setPixmap(shown)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._rescale()
