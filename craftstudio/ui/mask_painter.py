"""`MaskPainter`: paint an inpainting mask over a picture (white = redo this region, black = keep).

A toolbar row over a `MaskCanvas`: Brush and Eraser (left drag paints with the current tool, right
drag always erases, as in Krita), the brush size in image pixels (`[` and `]` change it), Feather,
Invert, Clear, Fill, Undo (Ctrl+Z, the last 20 edits) and Show mask. `MaskPainter(show_toolbar=
False)` hides the row for embedding; `painter.toolbar` is a plain widget a caller may also put
into its own layout, and every action is a method.

Feather is A1111's "Mask blur": a setting the caller reads (`feather()`) and applies when it
prepares the generation. It never touches the painted mask, which stays binary (0 or 255), and
the overlay shows the mask exactly as painted.

Images arrive as QImages or as PIL images (converted by `image_view.to_qimage` with their own
methods), so the ui layer needs no image library.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.ui.image_view import to_qimage
from craftstudio.ui.mask_canvas import MAX_BRUSH, MaskCanvas

MAX_FEATHER = 64
DEFAULT_FEATHER = 4  # A1111's default mask blur


class MaskPainter(QWidget):
    mask_changed = Signal()  # once per finished stroke, clear, invert, fill, undo or load
    feather_changed = Signal(int)
    brush_size_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, show_toolbar: bool = True) -> None:
        super().__init__(parent)
        self.canvas = MaskCanvas()
        self.canvas.mask_changed.connect(self.mask_changed)
        self.canvas.mask_changed.connect(self._sync_buttons)
        self._feather = DEFAULT_FEATHER
        self.toolbar = self._build_toolbar()
        self.toolbar.setVisible(show_toolbar)
        self.canvas.mask_visible_changed.connect(self.show_mask_button.setChecked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)
        self._sync_buttons()

    def _button(self, text: str, tip: str, name: str, slot=None, checkable: bool = False) -> QToolButton:
        button = QToolButton(text=text, toolTip=tip, checkable=checkable)
        button.setAccessibleName(name)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        if slot is not None:
            button.clicked.connect(slot)
        return button

    def _spin(self, minimum: int, maximum: int, value: int, tip: str, name: str) -> QSpinBox:
        spin = QSpinBox(minimum=minimum, maximum=maximum, value=value, suffix=" px", toolTip=tip)
        spin.setAccessibleName(name)
        spin.setKeyboardTracking(False)  # typing "24" is one change, not "2" then "24"
        return spin

    def _build_toolbar(self) -> QToolBar:
        self.brush_button = self._button(
            "Brush", "Paint the region to redo (white). Left drag paints, right drag erases.",
            "Brush tool", lambda: self.set_tool("brush"), checkable=True)
        self.eraser_button = self._button(
            "Eraser", "Erase the mask (black: keep this region). Right drag always erases.",
            "Eraser tool", lambda: self.set_tool("eraser"), checkable=True)
        self.brush_button.setChecked(True)
        self._tools = QButtonGroup(self)  # exclusive: one tool at a time
        self._tools.addButton(self.brush_button)
        self._tools.addButton(self.eraser_button)
        self.size_spin = self._spin(1, MAX_BRUSH, self.canvas.brush_size(),
                                    "Brush diameter in image pixels ([ and ] change it).", "Brush size")
        self.size_spin.valueChanged.connect(self.set_brush_size)
        self.feather_spin = self._spin(
            0, MAX_FEATHER, self._feather, "Mask blur: how far the mask's edge is softened when the "
            "image is generated. The painted mask itself stays sharp.", "Feather")
        self.feather_spin.valueChanged.connect(self.set_feather)
        self.invert_button = self._button("Invert", "Swap the regions to redo and to keep.",
                                          "Invert mask", self.invert_mask)
        self.clear_button = self._button("Clear", "Keep the whole image (an all-black mask).",
                                         "Clear mask", self.clear_mask)
        self.fill_button = self._button("Fill", "Redo the whole image (an all-white mask).",
                                        "Fill mask", self.fill_mask)
        self.undo_button = self._button("Undo", "Undo the last stroke or mask edit (Ctrl+Z).",
                                        "Undo mask edit", self.undo)
        self.show_mask_button = self._button("Show mask", "Show or hide the mask over the image.",
                                             "Show mask", self.canvas.set_mask_visible, checkable=True)
        self.show_mask_button.setChecked(True)
        # A QToolBar, not a row layout: when the painter is narrow the buttons that do not fit
        # move into its » menu instead of forcing the painter wider.
        bar = QToolBar()
        bar.setObjectName("maskToolbar")
        bar.setStyleSheet("QToolButton:checked { background: palette(highlight); color: palette(highlighted-text); }")
        stretch = QWidget()
        stretch.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        for group in ((self.brush_button, self.eraser_button, QLabel(" Size "), self.size_spin),
                      (QLabel(" Feather "), self.feather_spin),
                      (self.invert_button, self.clear_button, self.fill_button, self.undo_button),
                      (stretch, self.show_mask_button)):
            if bar.actions():
                bar.addSeparator()
            for widget in group:
                bar.addWidget(widget)
        return bar

    def _sync_buttons(self) -> None:
        has_image = not self.canvas.image().isNull()
        for button in (self.invert_button, self.clear_button, self.fill_button):
            button.setEnabled(has_image)
        self.undo_button.setEnabled(self.canvas.can_undo())

    # --- image -------------------------------------------------------------------------------

    def set_image(self, image: QImage | Any, *, keep_mask: bool = False) -> None:
        """Show a QImage or a PIL image with a blank mask, or with the current mask (and its
        undo steps) when `keep_mask` and the sizes match: another pass over a result."""
        qimage = image if isinstance(image, QImage) else to_qimage(image)
        self.canvas.set_image(qimage, keep_mask=keep_mask)
        self._sync_buttons()

    def clear_image(self) -> None:
        self.canvas.clear_image()
        self._sync_buttons()

    # --- mask --------------------------------------------------------------------------------

    def mask(self) -> QImage:
        """Grayscale8, the image's size, 0 (keep) or 255 (redo); null without an image."""
        return self.canvas.mask()

    def set_mask(self, mask: QImage) -> None:
        """Resized to the image with nearest-neighbour, then thresholded at 128; one undo step."""
        self.canvas.set_mask(mask)

    def has_mask(self) -> bool:
        return self.canvas.has_mask()

    def invert_mask(self) -> None:
        self.canvas.invert_mask()

    def clear_mask(self) -> None:
        self.canvas.clear_mask()

    def fill_mask(self) -> None:
        self.canvas.fill_mask()

    def undo(self) -> None:
        self.canvas.undo()

    def save_mask(self, path: str) -> None:
        """Write the mask as a PNG, atomically: a temporary file beside it, then renamed."""
        if self.canvas.image().isNull():
            raise ValueError(f"There is no mask to save to {path}: set an image first.")
        target = Path(path)
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".png", dir=target.parent)
        except OSError as error:
            raise OSError(f"Could not save the mask to {path}: {error.strerror or error}.") from error
        os.close(handle)
        try:
            if not self.canvas.mask().save(temporary, "PNG"):
                raise OSError(f"Could not write the mask to {path}: check the folder is writable.")
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load_mask(self, path: str) -> None:
        """Read a mask image (any size or format Qt reads); one undo step."""
        reader = QImageReader(path)
        image = reader.read()
        if image.isNull():
            reason = reader.errorString().rstrip(".").lower()
            raise ValueError(f"Could not read the mask file {path} ({reason}): choose a PNG or JPEG image.")
        self.set_mask(image)

    # --- settings ----------------------------------------------------------------------------

    def feather(self) -> int:
        """Mask blur in image pixels, for the caller to apply; the painted mask stays binary."""
        return self._feather

    def set_feather(self, pixels: int) -> None:
        pixels = min(max(int(pixels), 0), MAX_FEATHER)
        if pixels != self._feather:
            self._feather = pixels
            self.feather_spin.setValue(pixels)
            self.feather_changed.emit(pixels)

    def brush_size(self) -> int:
        return self.canvas.brush_size()

    def set_brush_size(self, size: int) -> None:
        before = self.canvas.brush_size()
        self.canvas.set_brush_size(size)
        self.size_spin.setValue(self.canvas.brush_size())
        if self.canvas.brush_size() != before:
            self.brush_size_changed.emit(self.canvas.brush_size())

    def tool(self) -> str:
        return self.canvas.tool()

    def set_tool(self, tool: str) -> None:
        """"brush" paints white (redo), "eraser" paints black (keep)."""
        self.canvas.set_tool(tool)
        (self.brush_button if tool == "brush" else self.eraser_button).setChecked(True)

    def mask_visible(self) -> bool:
        return self.canvas.mask_visible()

    def set_mask_visible(self, visible: bool) -> None:
        self.canvas.set_mask_visible(visible)

    # --- keys --------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        # Claim Ctrl+Z and the bracket keys before a window-wide shortcut (another page's undo)
        # takes them, while the focus is inside the painter.
        if event.type() == QEvent.Type.ShortcutOverride and self._handles(event):
            event.accept()
            return True
        return super().event(event)

    def _handles(self, event: QKeyEvent) -> bool:
        # Brackets with any modifier: some keyboard layouts need AltGr to type them.
        return event.matches(QKeySequence.StandardKey.Undo) or event.key() in (
            Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        size = self.brush_size()
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
        elif event.key() == Qt.Key.Key_BracketRight:
            self.set_brush_size(max(size + 1, round(size * 1.2)))  # steps grow with the size
        elif event.key() == Qt.Key.Key_BracketLeft:
            self.set_brush_size(min(size - 1, round(size / 1.2)))
        else:
            super().keyPressEvent(event)
