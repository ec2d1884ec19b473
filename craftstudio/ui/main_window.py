"""`MainWindow`: navigation on the left (Library, Generate, Train, Gallery), the area on the right.

Areas not built yet show what will be there, so the window already has its final shape.
Dropping a PNG made by CraftStudio (or A1111) on the window restores its settings.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.compare_state import CompareState
from craftstudio.state.gallery_state import GalleryState
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.queue_state import QueueState
from craftstudio.state.timeline_state import TimelineState
from craftstudio.ui.compare_view import CompareView
from craftstudio.ui.gallery_page import GalleryPage
from craftstudio.ui.generate_panel import GeneratePanel
from craftstudio.ui.queue_view import QueueView
from craftstudio.ui.timeline_strip import TimelineStrip

COMING_SOON = {
    "Library": "your base models, LoRAs and CRAFT backbones: import files, see which base model "
               "each fits, tag content and style LoRAs.",
    "Train": "train a content LoRA or a style LoRA from your own reference images, and the "
             "rank-constrained backbone that lets them combine.",
    "Gallery": "every image you generated, with the settings that made it; reopen any of them "
               "in Generate.",
}
AREAS = ("Library", "Generate", "Train", "Gallery")


def _placeholder(area: str, text: str) -> QWidget:
    widget = QWidget()
    title = QLabel(f"<h2>{area}</h2>")
    body = QLabel(f"Coming soon: {text}")
    body.setWordWrap(True)
    body.setObjectName("comingSoon")
    layout = QVBoxLayout(widget)
    layout.addStretch(1)
    for label in (title, body):
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(label)
    layout.addStretch(2)
    widget.setContentsMargins(60, 0, 60, 0)
    return widget


class MainWindow(QMainWindow):
    def __init__(self, generate_state: GenerateState, parent: QWidget | None = None, *,
                 gallery: GalleryState | None = None, queue: QueueState | None = None,
                 compare: CompareState | None = None, timeline: TimelineState | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CraftStudio")
        self.resize(1100, 720)
        self.setAcceptDrops(True)
        self.generate_state = generate_state
        self.gallery_state, self.queue_state = gallery, queue
        self.generate_panel = GeneratePanel(generate_state)
        self.gallery_page = GalleryPage(gallery) if gallery is not None else None
        self.queue_view = QueueView(queue) if queue is not None else None
        self.compare_view = CompareView(compare) if compare is not None else None
        self.timeline_strip = TimelineStrip(timeline) if timeline is not None else None
        if self.timeline_strip is not None:
            self.generate_panel.craft_panel.add_below_editor(self.timeline_strip)
        if self.queue_view is not None:
            self.generate_panel.add_side_page("Queue", self.queue_view)
        if self.compare_view is not None:
            self.generate_panel.add_side_page("Compare", self.compare_view)
        if queue is not None:
            queue.confirm_close = self._confirm_close

        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(140)
        self.navigation.setIconSize(QSize(0, 0))
        self.pages = QStackedWidget()
        for area in AREAS:
            page = (self.generate_panel if area == "Generate" else
                    self.gallery_page if area == "Gallery" and self.gallery_page is not None else
                    _placeholder(area, COMING_SOON[area]))
            self.pages.addWidget(page)
            item = QListWidgetItem(area)
            item.setSizeHint(QSize(120, 40))
            self.navigation.addItem(item)
        self.navigation.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.show_area("Generate")

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.navigation)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready")
        generate_state.error_changed.connect(self._show_error_in_status_bar)
        generate_state.show_requested.connect(lambda: self.show_area("Generate"))
        if gallery is not None:
            gallery.show_requested.connect(lambda: self.show_area("Gallery"))

    def show_area(self, area: str) -> None:
        self.navigation.setCurrentRow(AREAS.index(area))

    @property
    def current_area(self) -> str:
        return AREAS[self.pages.currentIndex()]

    def _show_error_in_status_bar(self, message: str) -> None:
        # The panel shows the full message; the status bar catches the eye on other pages.
        self.statusBar().showMessage(message or "Ready")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if any(url.toLocalFile().lower().endswith(".png") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        for url in event.mimeData().urls():
            path = url.toLocalFile()
            if path.lower().endswith(".png"):
                self.show_area("Generate")
                if self.gallery_state is not None:  # also finds A1111 LoRAs in the library
                    self.gallery_state.restore_png(path)
                else:
                    self.generate_state.apply_png(path)
                event.acceptProposedAction()
                return

    def _confirm_close(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Jobs are not finished", question,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.queue_state is not None and not self.queue_state.may_close():
            event.ignore()
            return
        super().closeEvent(event)
