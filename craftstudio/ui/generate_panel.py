"""`GeneratePanel`: choose a model, write a prompt, generate, watch it, see the result.

Settings on the left (scrolling, with the CRAFT fusion section and its curve editor below the
ordinary settings), the Generate button, progress and messages pinned under them so they stay
in view, the image on the right. Everything is bound to `GenerateState`; the
panel only adds file dialogs and turns state changes into enabled/visible widgets. Errors are
shown in a label inside the panel (a modal box would block the user and the tests).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QKeySequence, QRegularExpressionValidator, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.generation import MAX_SIDE, SCHEDULERS
from craftstudio.state.generate_state import GenerateState
from craftstudio.ui.bindings import bind_check, bind_combo, bind_line_edit, bind_plain_text, bind_spin
from craftstudio.ui.craft_panel import CraftPanel
from craftstudio.ui.image_view import ImageView

_PROGRESS_RANGE = 1000
MODEL_HINT = "A diffusers model folder or a .safetensors checkpoint"


class GeneratePanel(QWidget):
    def __init__(self, state: GenerateState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        settings = self._build_settings()
        self.image_view = ImageView("Your image appears here.\n\nChoose a model, write a prompt "
                                    "and press Generate (Ctrl+Enter).")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter = splitter
        self.side_tabs: QTabWidget | None = None  # made when another view joins the image
        splitter.addWidget(settings)
        splitter.addWidget(self.image_view)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 520])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._bind()

    def add_side_page(self, title: str, widget: QWidget) -> None:
        """Show `widget` (the queue, the compare view) in a tab beside the image."""
        if self.side_tabs is None:
            self.side_tabs = QTabWidget()
            self.splitter.replaceWidget(1, self.side_tabs)
            self.side_tabs.addTab(self.image_view, "Image")
        self.side_tabs.addTab(widget, title)

    def _build_settings(self) -> QWidget:
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText(MODEL_HINT)
        self.model_edit.setToolTip(MODEL_HINT + ". A built-in demo model will come later.")
        self.model_folder_button = QPushButton("Folder…")
        self.model_folder_button.clicked.connect(self._choose_model_folder)
        self.model_file_button = QPushButton("File…")
        self.model_file_button.clicked.connect(self._choose_model_file)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(self.model_folder_button)
        model_row.addWidget(self.model_file_button)

        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("What to draw; mark the content and style phrases for "
                                            "CRAFT: a ginger cat <c> in watercolor style <s>")
        self.prompt_edit.setFixedHeight(90)
        # Live γ feedback of the prompt's markers, or what is wrong with them.
        self.markers_label = QLabel()
        self.markers_label.setObjectName("promptMarkers")
        self.markers_label.setWordWrap(True)
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setPlaceholderText("What to avoid (optional)")
        self.negative_edit.setFixedHeight(54)

        self.steps_spin = QSpinBox(minimum=1, maximum=1000)
        self.cfg_spin = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.5, decimals=1)
        # A line edit, not a QSpinBox: seeds recorded by other tools exceed 32 bits.
        self.seed_edit = QLineEdit()
        self.seed_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,19}")))
        self.random_seed_check = QCheckBox("random")
        self.random_seed_check.setToolTip("Draw a new seed for every generation")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.random_seed_check)
        # Any value can be typed; a size that is not a multiple of 8 is explained on Generate.
        self.width_spin = QSpinBox(minimum=8, maximum=MAX_SIDE, singleStep=64)
        self.height_spin = QSpinBox(minimum=8, maximum=MAX_SIDE, singleStep=64)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin, 1)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin, 1)
        self.scheduler_combo = QComboBox()
        for key, label in SCHEDULERS.items():
            self.scheduler_combo.addItem(label, key)
        self.batch_spin = QSpinBox(minimum=1, maximum=100)

        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("Prompt", self.prompt_edit)
        form.addRow("", self.markers_label)
        form.addRow("Negative", self.negative_edit)
        form.addRow("Steps", self.steps_spin)
        form.addRow("CFG scale", self.cfg_spin)
        form.addRow("Seed", seed_row)
        form.addRow("Size", size_row)
        form.addRow("Sampler", self.scheduler_combo)
        form.addRow("Images", self.batch_spin)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.state.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.state.cancel)
        QShortcut(QKeySequence("Ctrl+Return"), self, self.state.generate)
        # "Generate ×N": N jobs in the queue, seed +1 each.
        self.repeat_spin = QSpinBox(minimum=1, maximum=100, prefix="× ")
        self.repeat_spin.setToolTip("Queue this many generations, the seed +1 for each")
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.repeat_spin)
        buttons.addWidget(self.cancel_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _PROGRESS_RANGE)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorMessage")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #c0392b; font-weight: bold;")
        self.error_label.setVisible(False)

        self.craft_panel = CraftPanel(self.state.craft)
        column = QVBoxLayout()
        column.addLayout(form)
        column.addWidget(self.craft_panel)
        column.addStretch(1)
        inner = QWidget()
        inner.setLayout(column)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_scroll = scroll
        # Pinned below the scrolling settings: Generate and its feedback are always in view.
        footer = QVBoxLayout()
        footer.addLayout(buttons)
        footer.addWidget(self.progress_bar)
        footer.addWidget(self.status_label)
        footer.addWidget(self.error_label)
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addLayout(footer)
        return left

    def _bind(self) -> None:
        s = self.state
        bind_line_edit(s, "model", self.model_edit)
        bind_plain_text(s, "prompt", self.prompt_edit)
        bind_plain_text(s, "negative_prompt", self.negative_edit)
        bind_spin(s, "steps", self.steps_spin)
        bind_spin(s, "cfg_scale", self.cfg_spin)
        self.seed_edit.setText(str(s.seed))
        s.seed_changed.connect(lambda seed: self.seed_edit.setText(str(seed)))
        self.seed_edit.textEdited.connect(self._seed_edited)
        bind_check(s, "random_seed", self.random_seed_check)
        bind_spin(s, "width", self.width_spin)
        bind_spin(s, "height", self.height_spin)
        bind_combo(s, "scheduler", self.scheduler_combo)
        bind_spin(s, "batch_count", self.batch_spin)
        bind_spin(s, "repeat", self.repeat_spin)
        s.random_seed_changed.connect(self._update_seed_enabled)
        s.is_busy_changed.connect(self._update_busy)
        s.progress_changed.connect(self._show_progress)
        s.status_changed.connect(self.status_label.setText)
        s.error_changed.connect(self._show_error)
        s.markers_changed.connect(self._show_markers)
        s.marker_error_changed.connect(self._show_markers)
        s.marker_error_at.connect(self._put_cursor_at)
        s.preview_changed.connect(self.image_view.show_image)
        s.images_changed.connect(self.image_view.show_images)
        self._update_seed_enabled(s.random_seed)
        self._update_busy(s.is_busy)
        self._show_error(s.error)
        self._show_markers()
        self.status_label.setText(s.status)
        self._show_progress(s.progress)

    def _update_seed_enabled(self, random_seed: bool) -> None:
        # The seed stays visible (it shows the one used last) but is only edited when fixed.
        self.seed_edit.setEnabled(not random_seed)

    def _seed_edited(self, text: str) -> None:
        if text:
            self.state.seed = int(text)  # out-of-range values are explained by validate()

    def _update_busy(self, busy: bool) -> None:
        # Pressing Generate while a job runs queues the next one.
        self.generate_button.setText("Add to queue" if busy else "Generate")
        self.cancel_button.setEnabled(busy)

    def _show_progress(self, fraction: float) -> None:
        self.progress_bar.setValue(round(fraction * _PROGRESS_RANGE))

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _show_markers(self, *_args: object) -> None:
        error = self.state.marker_error
        self.markers_label.setText(error or self.state.markers)
        self.markers_label.setStyleSheet("color: #c0392b;" if error else "color: palette(mid);")

    def _put_cursor_at(self, position: int) -> None:
        """Put the prompt's cursor on a malformed marker (1-based position)."""
        cursor = self.prompt_edit.textCursor()
        cursor.setPosition(min(max(position - 1, 0), len(self.prompt_edit.toPlainText())),
                           QTextCursor.MoveMode.MoveAnchor)
        self.prompt_edit.setTextCursor(cursor)
        self.prompt_edit.setFocus()

    def _choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder",
                                                  self._start_dir())
        if folder:
            self.state.model = folder

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model checkpoint", self._start_dir(),
                                              "Safetensors checkpoints (*.safetensors)")
        if path:
            self.state.model = path

    def _start_dir(self) -> str:
        current = Path(self.state.model) if self.state.model else None
        if current and current.exists():
            return str(current.parent)
        return str(Path.home())
