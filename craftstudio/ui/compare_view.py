"""`CompareView`: the CRAFT explorer's buttons and its last contact sheet, cell by cell.

"Compare fusion modes" runs the ablation grid for the current Generate settings and seed;
"Compare values" runs one row varying the chosen value. The finished cells are shown as
labelled tiles in the sheet's grid; clicking a tile opens that image in the gallery viewer.
Bound to `CompareState`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.compare_state import CompareState
from craftstudio.ui.bindings import bind_combo, bind_line_edit
from craftstudio.ui.gallery_viewer import show_in_folder
from craftstudio.ui.image_view import to_qimage

TILE = 132
_RANGE = 1000


class CompareView(QWidget):
    def __init__(self, state: CompareState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.fusion_button = QPushButton("Compare fusion modes")
        self.fusion_button.setToolTip("One image per setting, same prompt and seed: direct merge, CRAFT, "
                                      "each CRAFT component off, each LoRA alone")
        self.fusion_button.clicked.connect(state.run_fusion_grid)
        self.field_combo = QComboBox()
        for key, label in state.sweep_fields().items():
            self.field_combo.addItem(label, key)
        bind_combo(state, "sweep_field", self.field_combo)
        self.values_edit = QLineEdit()
        self.values_edit.setPlaceholderText("values, e.g. 0, 0.25, 0.5, 1")
        self.values_edit.setToolTip("Numbers for weights and CFG, preset names for curves")
        bind_line_edit(state, "sweep_values", self.values_edit)
        self.sweep_button = QPushButton("Compare values")
        self.sweep_button.clicked.connect(state.run_sweep)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(state.cancel)
        row1 = QHBoxLayout()
        row1.addWidget(self.fusion_button, 1)
        row1.addWidget(self.cancel_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.field_combo)
        row2.addWidget(self.values_edit, 1)
        row2.addWidget(self.sweep_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _RANGE)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b; font-weight: bold;")
        self.error_label.setVisible(False)
        self.sheet_button = QToolButton(text="Show sheet file")
        self.sheet_button.clicked.connect(lambda: show_in_folder(state.sheet_path))
        self.sheet_button.setEnabled(False)

        self.preview_label = QLabel()  # the running cell's step preview
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setVisible(False)
        self.cells_widget = QWidget()
        self.cells_grid = QGridLayout(self.cells_widget)
        self.cells_grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidget(self.cells_widget)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll = scroll
        self.tiles: list[QToolButton] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.preview_label)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.sheet_button, 0, Qt.AlignmentFlag.AlignRight)
        state.is_busy_changed.connect(self._update_busy)
        state.progress_changed.connect(lambda f: self.progress_bar.setValue(round(f * _RANGE)))
        state.status_changed.connect(self.status_label.setText)
        state.error_changed.connect(self._show_error)
        state.cells_changed.connect(self._show_cells)
        state.preview_changed.connect(self._show_preview)
        self._update_busy(state.is_busy)

    def _show_preview(self, image) -> None:
        self.preview_label.setVisible(image is not None)
        if image is not None:
            pixmap = QPixmap.fromImage(to_qimage(image))
            self.preview_label.setPixmap(pixmap.scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                                       Qt.TransformationMode.FastTransformation))

    def _update_busy(self, busy: bool) -> None:
        self.fusion_button.setEnabled(not busy)
        self.sweep_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def tile_side(self) -> int:
        """The cells' side: the sheet's columns fit the view's width (at most TILE)."""
        columns = max(1, self.state.columns)
        # From the view's own width: the scroll area's viewport is resized only after this view.
        return max(48, min(TILE, (self.width() - 40) // columns - 24))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.tiles and self.tiles[0].iconSize().width() != self.tile_side():
            self._show_cells(self.state.cells)

    def _show_cells(self, cells) -> None:
        for tile in self.tiles:
            tile.deleteLater()
        self.tiles = []
        columns = max(1, self.state.columns)
        side = self.tile_side()
        for index, cell in enumerate(cells):
            tile = QToolButton()
            tile.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            pixmap = QPixmap(cell.path)
            if not pixmap.isNull():  # enlarged without blurring
                tile.setIcon(pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation))
                tile.setIconSize(pixmap.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
            tile.setText(tile.fontMetrics().elidedText(cell.label, Qt.TextElideMode.ElideRight, side + 4))
            tile.setFixedWidth(side + 14)
            tile.setToolTip(f"{cell.label}\n{cell.detail}\n{Path(cell.path).name} — click to open it")
            tile.setAutoRaise(True)
            tile.clicked.connect(lambda _=False, i=index: self.state.open_cell(i))
            self.cells_grid.addWidget(tile, index // columns, index % columns)
            self.tiles.append(tile)
        self.sheet_button.setEnabled(bool(self.state.sheet_path))
