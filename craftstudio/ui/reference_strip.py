"""`ReferenceStrip`: the reference images of one set as a strip of thumbnails, bound to a
`ReferenceSet`.

Each thumbnail carries its caption under it (the caption template, in grey, for an image without
a caption file) and an orange badge with its size when it is smaller than the training
resolution. Selecting an image puts its caption in the editor below the strip (Enter writes
the caption file; an empty caption removes it); "Remove" (or the Delete key) takes it out of
the set, never off the disk. Files that cannot be used are listed under the strip with the
reason. Folders and images can be dropped on the strip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent, QIcon, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.reference_set import ReferenceImage, ReferenceSet

THUMB = 84
BADGE = QColor("#e67e22")
WARNING_STYLE = "color: #e67e22;"


def thumbnail(image: ReferenceImage, small: bool) -> QPixmap:
    """A square thumbnail, with a size badge when the image is below the training resolution."""
    reader = QImageReader(str(image.path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > THUMB * 2:
        reader.setScaledSize(size.scaled(THUMB * 2, THUMB * 2, Qt.AspectRatioMode.KeepAspectRatio))
    picture = QPixmap.fromImage(reader.read())
    canvas = QPixmap(THUMB, THUMB)
    canvas.fill(Qt.GlobalColor.transparent)
    painter = QPainter(canvas)
    if not picture.isNull():
        scaled = picture.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation)
        painter.drawPixmap((THUMB - scaled.width()) // 2, (THUMB - scaled.height()) // 2, scaled)
    if small:
        text = f"{image.width}×{image.height}"
        font = painter.font()
        font.setPointSizeF(7.5)
        font.setBold(True)
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance(text) + 8
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BADGE)
        painter.drawRoundedRect(THUMB - width - 2, 2, width, 15, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(THUMB - width - 2, 2, width, 15, Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return canvas


class _Strip(QListWidget):
    """The thumbnails; accepts dropped files and folders."""

    def __init__(self, on_drop: Callable[[list[str]], None]) -> None:
        super().__init__()
        self._on_drop = on_drop
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 26, THUMB + 40))
        self.setWordWrap(True)
        self.setFixedHeight(THUMB + 64)
        self.setAcceptDrops(True)
        self.setDragDropMode(QListWidget.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.toLocalFile()]
        if paths:
            self._on_drop(paths)
            event.acceptProposedAction()


class ReferenceStrip(QWidget):
    def __init__(self, refs: ReferenceSet, title: str, caption_template: Callable[[], str],
                 resolution: Callable[[], int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.refs = refs
        self._template = caption_template
        self._resolution = resolution
        self.title = QLabel(f"<b>{title}</b>")
        self.count_label = QLabel()
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Use the images of a folder (replaces the set)")
        self.folder_button.clicked.connect(self._choose_folder)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add image files to the set (or drop them on the strip)")
        self.add_button.clicked.connect(self._choose_files)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Leave the selected image out of training (the file is kept)")
        self.remove_button.clicked.connect(self._remove_selected)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.count_label, 1)
        self.count_label.setStyleSheet("color: palette(placeholder-text);")
        # The count may be clipped in a narrow column; the buttons may not.
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for button in (self.folder_button, self.add_button):
            head.addWidget(button)
        self.strip = _Strip(refs.add_files)
        self.strip.currentItemChanged.connect(lambda *_: self._show_caption())
        self.caption_edit = QLineEdit()
        self.caption_edit.setEnabled(False)
        self.caption_edit.setToolTip("The selected image's caption, saved beside it as name.txt. Empty: the "
                                     "caption template (grey) is used.")
        self.caption_edit.returnPressed.connect(self._save_caption)
        self.caption_edit.editingFinished.connect(self._save_caption)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(WARNING_STYLE)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.strip)
        caption_row = QHBoxLayout()
        caption_row.addWidget(self.caption_edit, 1)
        caption_row.addWidget(self.remove_button)
        layout.addLayout(caption_row)
        layout.addWidget(self.problems)
        refs.images_changed.connect(lambda _images: self.refresh())
        refs.unreadable_changed.connect(lambda _bad: self.refresh())
        refs.error_changed.connect(lambda _error: self.refresh())
        self.refresh()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.strip.hasFocus():
            self._remove_selected()
        else:
            super().keyPressEvent(event)

    def refresh(self) -> None:
        """Rebuild the thumbnails (after a change of the set, the resolution or the template)."""
        selected = self._selected_path()
        resolution = self._resolution()
        template = self._template()
        small = {image.path for image in self.refs.smaller_than(resolution)}
        self.strip.clear()
        muted = self.palette().color(self.palette().ColorRole.PlaceholderText)
        for image in self.refs.images:
            caption = " ".join((image.caption or "").split())
            item = QListWidgetItem(QIcon(thumbnail(image, image.path in small)), caption or template)
            item.setData(Qt.ItemDataRole.UserRole, str(image.path))
            if not caption:
                item.setForeground(QBrush(muted))
            tip = f"{image.path.name} — {image.width}×{image.height}"
            if image.path in small:
                tip += f"\nSmaller than the training resolution {resolution}: allow upscaling or remove it."
            item.setToolTip(tip)
            self.strip.addItem(item)
            if str(image.path) == selected:
                self.strip.setCurrentItem(item)
        count = len(self.refs.images)
        text = f"{count} image{'s' if count != 1 else ''}"
        if small:
            text += f" · {len(small)} below {resolution} px"
        self.count_label.setText(text)
        lines = [f"{Path(path).name}: {reason}" for path, reason in self.refs.unreadable]
        if self.refs.error:
            lines.insert(0, self.refs.error)
        self.problems.setText(("Not used — " + "; ".join(lines)) if lines else "")
        self.problems.setVisible(bool(lines))
        self.remove_button.setEnabled(count > 0)
        self._show_caption()

    def _selected_path(self) -> str | None:
        item = self.strip.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_caption(self) -> None:
        path = self._selected_path()
        image = next((i for i in self.refs.images if str(i.path) == path), None)
        self.caption_edit.setEnabled(image is not None)
        self.caption_edit.setPlaceholderText(self._template() if image is not None else
                                             "Select an image to edit its caption")
        text = " ".join((image.caption or "").split()) if image is not None else ""
        if self.caption_edit.text() != text:
            self.caption_edit.setText(text)

    def _save_caption(self) -> None:
        path = self._selected_path()
        image = next((i for i in self.refs.images if str(i.path) == path), None)
        if image is None:
            return
        text = self.caption_edit.text()
        if " ".join(text.split()) != " ".join((image.caption or "").split()):
            self.refs.set_caption(image.path, text)

    def _remove_selected(self) -> None:
        path = self._selected_path()
        if path:
            self.refs.remove(path)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of reference images", self.refs.folder)
        if folder:
            self.refs.set_folder(folder)

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference images", self.refs.folder,
                                                "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)")
        if files:
            self.refs.add_files(files)
