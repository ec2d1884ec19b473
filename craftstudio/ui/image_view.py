"""`ImageView`: one large image scaled to fit, with a strip of thumbnails for a batch.

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
        layout.addWidget(self.thumbnails)

    def pixmap(self) -> QPixmap:
        """The full-size pixmap shown (null when none)."""
        return self._pixmap

    def show_image(self, image: Any | None) -> None:
        """Show one image (a step preview); None keeps the current one."""
        if image is not None:
            self._set_pixmap(QPixmap.fromImage(to_qimage(image)))

    def show_images(self, images: list[Any]) -> None:
        """Show a finished batch: the first image large, thumbnails when there are several."""
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
        # Small images (tiny models, previews) are enlarged without blurring.
        smooth = self._pixmap.width() > target.width() or self._pixmap.height() > target.height()
        mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        self.label.setPixmap(self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._rescale()
