"""Image to image, inpainting and hires on the Generate page.

`PictureSettings` (in the settings column): the init image with Choose…/Clear, the denoising
strength, the mask's feather, and the hires factor, strength and steps. `PictureCanvas` (a tab
beside the result): the init image in the mask painter, where the artist paints the region to
redraw; a picture file dropped on it becomes the init image. Both are bound to
`GenerateState.pictures`; the painted mask reaches the state once per finished stroke.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.generate_state import GenerateState
from craftstudio.state.picture_state import PICTURE_SUFFIXES, is_picture_file
from craftstudio.ui.bindings import bind_spin
from craftstudio.ui.mask_painter import MaskPainter

QUIET_STYLE = "color: palette(mid);"
_FILTER = "Pictures (" + " ".join(f"*{s}" for s in PICTURE_SUFFIXES) + ")"


def _dropped_picture(event: QDragEnterEvent | QDropEvent) -> str | None:
    for url in event.mimeData().urls():
        path = url.toLocalFile()
        if path and is_picture_file(path):
            return path
    return None


def _short(text: str, limit: int = 34) -> str:
    """Long names are cut in the middle, so the column never widens (the tooltip has the path)."""
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2):]


class PictureSettings(QGroupBox):
    def __init__(self, state: GenerateState, parent: QWidget | None = None) -> None:
        super().__init__("Image to image · hires", parent)
        self.state = state
        pictures = state.pictures
        self.init_label = QLabel()
        self.init_label.setObjectName("initImageName")
        # Its text never widens the settings column (which does not scroll sideways).
        self.init_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.init_label.setMinimumWidth(80)
        self.init_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_button = QToolButton(text="Choose…")
        self.choose_button.setToolTip("Start from a picture of yours (or drop one on the Init image tab)")
        self.choose_button.clicked.connect(self._choose)
        self.clear_button = QToolButton(text="Clear")
        self.clear_button.setToolTip("Generate from noise again")
        self.clear_button.clicked.connect(pictures.clear)
        row = QHBoxLayout()
        row.addWidget(self.init_label, 1)
        row.addWidget(self.choose_button)
        row.addWidget(self.clear_button)
        self.strength_spin = QDoubleSpinBox(minimum=0.01, maximum=1.0, singleStep=0.05, decimals=2)
        self.strength_spin.setToolTip("How much of the picture is redrawn: 0.3 keeps its drawing and "
                                      "changes its look, 1 redraws it completely")
        self.mask_blur_spin = QSpinBox(minimum=0, maximum=64, suffix=" px")
        self.mask_blur_spin.setToolTip("Feather the painted mask's edge by this many pixels")
        self.mask_label = QLabel()
        self.mask_label.setStyleSheet(QUIET_STYLE)
        self.mask_label.setWordWrap(True)
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_blur_spin)
        mask_row.addWidget(self.mask_label, 1)
        self.hires_spin = QDoubleSpinBox(minimum=1.0, maximum=4.0, singleStep=0.25, decimals=2, prefix="× ")
        self.hires_spin.setSpecialValueText("off")
        self.hires_spin.setToolTip("Enlarge each image by this factor (Lanczos) and redraw it at that size")
        self.hires_strength_spin = QDoubleSpinBox(minimum=0.01, maximum=1.0, singleStep=0.05, decimals=2)
        self.hires_strength_spin.setToolTip("How much the enlarged image is redrawn (0.3–0.5 adds detail)")
        self.hires_steps_spin = QSpinBox(minimum=0, maximum=1000)
        self.hires_steps_spin.setSpecialValueText("= steps")
        self.hires_steps_spin.setToolTip("Steps of the hires pass (= steps: the same as the first pass)")
        hires_row = QHBoxLayout()
        hires_row.addWidget(self.hires_spin, 1)
        hires_row.addWidget(QLabel("strength"))
        hires_row.addWidget(self.hires_strength_spin, 1)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Init image", row)
        form.addRow("Strength", self.strength_spin)
        form.addRow("Mask blur", mask_row)
        form.addRow("Hires", hires_row)
        form.addRow("Hires steps", self.hires_steps_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(form)
        bind_spin(pictures, "strength", self.strength_spin)
        bind_spin(pictures, "mask_blur", self.mask_blur_spin)
        bind_spin(pictures, "hires_factor", self.hires_spin)
        bind_spin(pictures, "hires_strength", self.hires_strength_spin)
        bind_spin(pictures, "hires_steps", self.hires_steps_spin)
        for signal in (pictures.init_image_changed, pictures.note_changed, pictures.mask_file_changed,
                       pictures.painted_mask_changed, pictures.hires_factor_changed):
            signal.connect(self._show)
        self._show()

    def _show(self, *_args: object) -> None:
        pictures = self.state.pictures
        has_picture = bool(pictures.init_image)
        self.init_label.setText(_short(pictures.note) if has_picture else "none (from noise)")
        self.init_label.setToolTip(pictures.init_image)
        self.init_label.setStyleSheet("" if has_picture else QUIET_STYLE)
        self.clear_button.setEnabled(has_picture)
        for widget in (self.strength_spin, self.mask_blur_spin):
            widget.setEnabled(has_picture)
        if not has_picture:
            self.mask_label.setText("")
        else:
            self.mask_label.setText("mask painted: only it is redrawn" if pictures.has_mask
                                    else "paint a mask in Init image to redo a region")
        hires = pictures.hires_factor > 1.0
        self.hires_strength_spin.setEnabled(hires)
        self.hires_steps_spin.setEnabled(hires)

    def _choose(self) -> None:
        current = self.state.pictures.init_image
        start = str(Path(current).parent) if current else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a picture to start from", start, _FILTER)
        if path:
            self.state.use_init_image(path)


class PictureCanvas(QWidget):
    """The init image with its mask painter; accepts dropped picture files."""

    def __init__(self, state: GenerateState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.painter = MaskPainter()
        self.placeholder = QLabel("Drop a picture here (or choose one under Image to image) to restyle it "
                                  "with your LoRAs.\n\nThen paint over a region to redraw only that part: "
                                  "left drag paints, right drag erases, [ and ] change the brush.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet(QUIET_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.painter, 1)
        self.setAcceptDrops(True)
        self._loading = False  # a mask loaded from its file is no new painting
        pictures = state.pictures
        self.painter.set_feather(pictures.mask_blur)
        self.painter.feather_changed.connect(lambda px: setattr(pictures, "mask_blur", px))
        pictures.mask_blur_changed.connect(self.painter.set_feather)
        self.painter.mask_changed.connect(self._mask_painted)
        pictures.init_image_changed.connect(self._show_picture)
        pictures.mask_file_changed.connect(self._show_mask_file)
        self._show_picture(pictures.init_image)

    def _show_picture(self, path: str) -> None:
        image = QImage(path) if path else QImage()
        if image.isNull():
            self.painter.clear_image()
        else:
            self.painter.set_image(image)
        self.painter.setVisible(not image.isNull())
        self.placeholder.setVisible(image.isNull())
        self._show_mask_file(self.state.pictures.mask_file)

    def _show_mask_file(self, path: str) -> None:
        if path and not QImage(self.state.pictures.init_image).isNull():
            self._loading = True
            try:
                self.painter.load_mask(path)
            except ValueError as exc:
                self.state.pictures.note = str(exc)
            finally:
                self._loading = False

    def _mask_painted(self) -> None:
        if not self._loading:
            self.state.pictures.set_painted_mask(self.painter.mask())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if _dropped_picture(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        path = _dropped_picture(event)
        if path:
            self.state.use_init_image(path)
            event.acceptProposedAction()
