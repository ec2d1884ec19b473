"""`GalleryViewer`: one image large, its settings beside it, and what to do with it.

Zoom: fit (default), 100 % and steps of ×2; enlarging uses nearest-neighbour scaling so a
64×64 demo image is shown as crisp pixels, reducing is smooth. Left/Right step through the
gallery, Escape goes back to the grid, F fits, 1 shows 100 %, + and − zoom. Beside the image:
the prompt with its `<c>`/`<s>` markers highlighted, the LoRAs with weights, mode and switches,
the other settings, and the curves as a small plot.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, QRect, QSize, Qt, QUrl
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.curves import CURVE_NAMES, CurveError, CurveSet
from craftstudio.domain.generation import SCHEDULERS, GenerateRequest
from craftstudio.state.gallery_state import GalleryEntry, GalleryState
from craftstudio.ui.curve_editor import COLORS

MARKER_COLORS = {"c": COLORS["content"].name(), "s": COLORS["style"].name()}
MAX_ZOOM = 32.0


class ImageCanvas(QWidget):
    """Paints one pixmap at `scale` (0 = fit), centred; sized to it when not fitting."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmap = QPixmap()
        self.scale = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self.pixmap = pixmap
        self._resize()

    def set_scale(self, scale: float) -> None:
        self.scale = min(max(scale, 0.0), MAX_ZOOM)
        self._resize()

    def effective_scale(self) -> float:
        if self.pixmap.isNull():
            return 1.0
        if self.scale > 0:
            return self.scale
        return min(self.width() / self.pixmap.width(), self.height() / self.pixmap.height())

    def _resize(self) -> None:
        if self.scale > 0 and not self.pixmap.isNull():
            self.setMinimumSize(QSize(round(self.pixmap.width() * self.scale), round(self.pixmap.height() * self.scale)))
        else:
            self.setMinimumSize(QSize(64, 64))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if not self.pixmap.isNull():
            scale = self.effective_scale()
            w, h = round(self.pixmap.width() * scale), round(self.pixmap.height() * scale)
            target = QRect(0, 0, w, h)
            target.moveCenter(self.rect().center())
            # Enlarged: exact pixels (nearest neighbour); reduced: smooth.
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0)
            painter.drawPixmap(target, self.pixmap)
        painter.end()


class CurvePlot(QWidget):
    """The three curves of a recorded request, small; constant when the request has none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: CurveSet | None = None
        self.setFixedHeight(90)
        self.setMinimumWidth(160)

    def set_curves(self, data: dict | None) -> None:
        try:
            self.curves = CurveSet.from_dict(data) if data else CurveSet.constant()
        except CurveError:
            self.curves = None
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(4, 4, -4, -4)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(rect)
        if self.curves is not None:
            for role in CURVE_NAMES:
                curve = getattr(self.curves, role)
                values = [curve.value(i / 100) for i in range(101)]
                high = max(max(values), 1.0) if role == "guidance" else 1.0
                path = QPainterPath()
                for i, value in enumerate(values):
                    point = QPointF(rect.left() + rect.width() * i / 100,
                                    rect.bottom() - rect.height() * (value / high) * 0.9)
                    path.moveTo(point) if i == 0 else path.lineTo(point)
                painter.setPen(QPen(COLORS[role], 2))
                painter.drawPath(path)
        painter.end()


def prompt_html(prompt: str) -> str:
    """The prompt with `<c>`, `<s>` (and weighted / span) markers coloured by role."""
    out, i = [], 0
    while i < len(prompt):
        end = prompt.find(">", i)
        if prompt[i] == "<" and end > i:
            tag = prompt[i + 1:end].lstrip("/")
            role = tag[:1]
            if role in MARKER_COLORS and (len(tag) == 1 or tag[1] == ":"):
                out.append(f'<b style="color:{MARKER_COLORS[role]}">{html.escape(prompt[i:end + 1])}</b>')
                i = end + 1
                continue
        out.append(html.escape(prompt[i]))
        i += 1
    return "".join(out)


def settings_html(request: GenerateRequest, seed: int, record: dict | None = None) -> str:
    rows = [("Prompt", prompt_html(request.prompt) or "—")]
    if request.negative_prompt:
        rows.append(("Negative", html.escape(request.negative_prompt)))
    rows.append(("Model", html.escape(Path(request.model).name or request.model)))
    for role in ("content", "style"):
        ref = getattr(request, f"{role}_lora")
        if ref is not None:
            color = MARKER_COLORS[role[0]]
            rows.append((f"{role.capitalize()} LoRA",
                         f'<span style="color:{color}">{html.escape(Path(ref.path).stem)}</span> × {ref.weight:g}'))
    switches = request.switches
    flags = ", ".join(f"{name} {'on' if getattr(switches, name) else 'off'}"
                      for name in ("backbone", "routing", "asymmetric", "gates"))
    rows.append(("Mode", f"<b>{request.mode.value}</b> ({flags})"))
    if request.backbone:
        rows.append(("Backbone", html.escape(Path(request.backbone).name)))
    curves = (request.curves or {}).get("name") or ("custom" if request.curves else "constant")
    rows.append(("Curves", html.escape(str(curves))))
    rows.append(("Seed", str(seed)))
    rows.append(("Steps · CFG", f"{request.steps} · {request.cfg_scale:g}"))
    rows.append(("Sampler", SCHEDULERS.get(request.scheduler, request.scheduler)))
    rows.append(("Size", f"{request.width} × {request.height}"))
    if record and record.get("compare"):
        rows.append(("Compare cell", html.escape(str(record["compare"]))))
    body = "".join(f"<tr><td style='padding-right:8px; vertical-align:top'><i>{k}</i></td><td>{v}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


class GalleryViewer(QWidget):
    def __init__(self, state: GalleryState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.last_path = ""
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.canvas = ImageCanvas()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setWidgetResizable(True)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self.back_button = QToolButton(text="← Grid")
        self.back_button.setToolTip("Back to the grid (Esc)")
        self.back_button.clicked.connect(state.close_viewer)
        self.prev_button = QToolButton(text="‹ Previous")
        self.prev_button.setToolTip("Previous image (←)")
        self.prev_button.clicked.connect(lambda: state.step(-1))
        self.next_button = QToolButton(text="Next ›")
        self.next_button.setToolTip("Next image (→)")
        self.next_button.clicked.connect(lambda: state.step(+1))
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.setToolTip("Fit the image in the window (F)")
        self.fit_button.clicked.connect(lambda: (self.canvas.set_scale(0), self._show_zoom()))
        self.actual_button = QToolButton(text="100%")
        self.actual_button.setToolTip("One image pixel per screen pixel (1)")
        self.actual_button.clicked.connect(lambda: (self.canvas.set_scale(1), self._show_zoom()))
        self.zoom_in_button = QToolButton(text="+")
        self.zoom_in_button.setToolTip("Zoom in (+)")
        self.zoom_in_button.clicked.connect(lambda: self.zoom(2.0))
        self.zoom_out_button = QToolButton(text="−")
        self.zoom_out_button.setToolTip("Zoom out (−)")
        self.zoom_out_button.clicked.connect(lambda: self.zoom(0.5))
        self.zoom_label = QLabel()
        bar = QHBoxLayout()
        for widget in (self.back_button, self.prev_button, self.next_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        for widget in (self.zoom_label, self.fit_button, self.actual_button, self.zoom_out_button,
                       self.zoom_in_button):
            bar.addWidget(widget)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(bar)
        left_layout.addWidget(self.scroll, 1)

        self.settings_label = QLabel()
        self.settings_label.setWordWrap(True)
        self.settings_label.setTextFormat(Qt.TextFormat.RichText)
        self.settings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.settings_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.curve_plot = CurvePlot()
        self.reuse_button = QPushButton("Reuse all settings")
        self.reuse_button.clicked.connect(lambda: state.reuse_all())
        self.seed_button = QPushButton("Reuse seed")
        self.seed_button.clicked.connect(lambda: state.reuse_seed())
        self.content_preview_button = QPushButton("Content LoRA picture")
        self.content_preview_button.setToolTip("Use this image as the content LoRA's picture in the library")
        self.content_preview_button.clicked.connect(lambda: state.use_as_lora_preview("content"))
        self.style_preview_button = QPushButton("Style LoRA picture")
        self.style_preview_button.setToolTip("Use this image as the style LoRA's picture in the library")
        self.style_preview_button.clicked.connect(lambda: state.use_as_lora_preview("style"))
        self.copy_button = QPushButton("Copy image")
        self.copy_button.clicked.connect(self.copy_image)
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.clicked.connect(self._show_in_folder)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._delete)
        self.init_image_button = QPushButton("Use as init image")
        self.init_image_button.setToolTip("Start from this image on the Generate page (restyle it, redo a region)")
        self.init_image_button.clicked.connect(lambda: state.use_as_init_image())
        buttons = QGridLayout()
        pairs = ((self.reuse_button, self.seed_button), (self.content_preview_button, self.style_preview_button),
                 (self.copy_button, self.folder_button), (self.init_image_button, self.delete_button))
        for row, pair in enumerate(pairs):
            for column, button in enumerate(pair):
                if button is not None:
                    button.setMinimumWidth(0)
                    buttons.addWidget(button, row, column)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        state.message_changed.connect(self.message_label.setText)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 0, 0, 0)
        side_layout.addWidget(self.settings_label)
        side_layout.addWidget(QLabel("Curves (guidance, content gate, style gate)"))
        side_layout.addWidget(self.curve_plot)
        side_layout.addLayout(buttons)
        side_layout.addWidget(self.message_label)
        side_layout.addStretch(1)
        side_scroll = QScrollArea()
        side_scroll.setWidget(side)
        side_scroll.setWidgetResizable(True)
        side_scroll.setMinimumWidth(280)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(side_scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([560, 320])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        state.current_changed.connect(self.show_entry)

    def show_entry(self, entry: GalleryEntry | None) -> None:
        if entry is None or entry.record is None:
            return
        self.last_path = entry.path
        image = QImage(entry.path)
        self.canvas.set_pixmap(QPixmap.fromImage(image) if not image.isNull() else QPixmap())
        self.settings_label.setText(settings_html(entry.record.request, entry.seed, entry.record.record))
        self.message_label.setText(f"{entry.path} is missing or unreadable." if image.isNull() else "")
        self.curve_plot.set_curves(entry.record.request.curves)
        request = entry.record.request
        self.content_preview_button.setEnabled(request.content_lora is not None)
        self.style_preview_button.setEnabled(request.style_lora is not None)
        self._show_zoom()

    def zoom(self, factor: float) -> None:
        self.canvas.set_scale(self.canvas.effective_scale() * factor)
        self._show_zoom()

    def _show_zoom(self) -> None:
        self.zoom_label.setText("fit" if self.canvas.scale == 0 else f"{self.canvas.scale:.0%}")

    def copy_image(self) -> None:
        """The picture and its file: paste into an image editor or a file manager."""
        if self.canvas.pixmap.isNull():
            return
        data = QMimeData()
        data.setImageData(self.canvas.pixmap.toImage())
        data.setUrls([QUrl.fromLocalFile(self.last_path)])
        QGuiApplication.clipboard().setMimeData(data)
        self.state.message = "Image copied."

    def _show_in_folder(self) -> None:
        show_in_folder(self.last_path)

    def _delete(self) -> None:
        if self.last_path:
            self.state.delete([self.last_path])

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        key = event.key()
        if key == Qt.Key.Key_Left:
            self.state.step(-1)
        elif key == Qt.Key.Key_Right:
            self.state.step(+1)
        elif key == Qt.Key.Key_Escape:
            self.state.close_viewer()
        elif key == Qt.Key.Key_F:
            self.canvas.set_scale(0)
            self._show_zoom()
        elif key == Qt.Key.Key_1:
            self.canvas.set_scale(1)
            self._show_zoom()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(2.0)
        elif key == Qt.Key.Key_Minus:
            self.zoom(0.5)
        else:
            super().keyPressEvent(event)


def show_in_folder(path: str) -> None:
    """Open the folder holding `path` in the system's file manager."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))
