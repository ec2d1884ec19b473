"""`MainWindow`: navigation on the left (Library, Generate, Train, Gallery), the area on the right.

Areas not built yet show what will be there, so the window already has its final shape.
Dropping a PNG made by CraftStudio (or A1111) on the window restores its settings.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.generate_state import GenerateState
from craftstudio.state.train_state import TrainState
from craftstudio.ui.generate_panel import GeneratePanel
from craftstudio.ui.train_page import TrainPage

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
    def __init__(self, generate_state: GenerateState, train_state: TrainState | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CraftStudio")
        self.resize(1100, 720)
        self.setAcceptDrops(True)
        self.generate_state = generate_state
        self.generate_panel = GeneratePanel(generate_state)
        self.train_page = TrainPage(train_state) if train_state is not None else None
        built = {"Generate": self.generate_panel, "Train": self.train_page}

        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(140)
        self.navigation.setIconSize(QSize(0, 0))
        self.pages = QStackedWidget()
        for area in AREAS:
            page = built.get(area) or _placeholder(area, COMING_SOON[area])
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
                self.generate_state.apply_png(path)
                event.acceptProposedAction()
                return
