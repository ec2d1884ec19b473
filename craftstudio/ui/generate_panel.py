"""`GeneratePanel`: choose a model, write a prompt, generate, watch it, see the result.

Settings on the left (scrolling, with the CRAFT fusion section and its curve editor below the
ordinary settings), the Generate button, progress and messages pinned under them so they stay
in view, the image on the right with the first-run welcome above it. Everything is bound to
`GenerateState`; the panel only adds file dialogs and turns state changes into enabled/visible
widgets. Errors are shown in a label inside the panel (a modal box would block the user and
the tests).

Laid out for a 1024×640 window and up: the settings column scrolls (never clipped), path fields
elide in the middle with the full path as tooltip, and spin boxes and combo boxes ignore the
mouse wheel unless focused (`WheelGuard`), so scrolling the column changes nothing by accident.
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
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.generation import MAX_SIDE, SCHEDULERS
from craftstudio.state.generate_state import GenerateState
from craftstudio.ui.bindings import bind_check, bind_combo, bind_plain_text, bind_spin
from craftstudio.ui.craft_panel import CraftPanel
from craftstudio.ui.image_view import ImageView
from craftstudio.ui.lora_drop import LoraDrop
from craftstudio.ui.picture_panel import PictureCanvas, PictureSettings
from craftstudio.ui.prompt_editor import PromptEditor
from craftstudio.ui.search_combo import SearchCombo
from craftstudio.ui.welcome_panel import WelcomePanel
from craftstudio.ui.wheel_guard import guard_wheel

_PROGRESS_RANGE = 1000
MODEL_HINT = "A diffusers model folder or a .safetensors checkpoint"
MODEL_TIP = (MODEL_HINT + ". Type to search your library; the built-in ShapesWorld demo is always "
             "an entry. Browse… picks a file or folder outside the library.")
ERROR_STYLE = "color: #e74c3c; font-weight: bold;"
QUIET_STYLE = "color: palette(mid);"


class GeneratePanel(QWidget):
    def __init__(self, state: GenerateState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._showing_preview = False
        settings = self._build_settings()
        self.image_view = ImageView("Your image appears here.\n\nChoose a model, write a prompt "
                                    "and press Generate (Ctrl+Enter).")
        self.welcome = WelcomePanel(state)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.welcome)
        right_layout.addWidget(self.image_view, 1)
        right_layout.addLayout(self._build_result_actions())
        self.image_side = right
        self.side_tabs: QTabWidget | None = None  # made when another view joins the image
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(settings)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([460, 420])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self._bind()
        self._wheel_guard = guard_wheel(settings)
        # A LoRA file or Library card dropped on a LoRA field loads it with its trigger phrase.
        craft = self.craft_panel
        self._lora_drops = [LoraDrop(state, role, [edit, edit.lineEdit()])
                            for role, edit in (("content", craft.content_edit), ("style", craft.style_edit))]
        # The init image and its mask painter, in a tab beside the result.
        self.picture_canvas = PictureCanvas(state)
        self.add_side_page("Init image", self.picture_canvas)
        state.pictures.init_image_changed.connect(self._show_picture_tab)

    def _build_result_actions(self) -> QHBoxLayout:
        self.use_as_init_button = QPushButton("Use as init image")
        self.use_as_init_button.setToolTip("Start the next runs from this result (restyle it, redo a region)")
        self.use_as_init_button.clicked.connect(self._use_result_as_init)
        self.enlarge_button = QPushButton("Enlarge 2×")
        self.enlarge_button.setToolTip("Make this result again at twice the size: the hires pass redraws "
                                       "the enlarged picture with its own settings (strength under Hires)")
        self.enlarge_button.clicked.connect(lambda: self.state.enlarge(self._result_index(), 2.0))
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.use_as_init_button)
        row.addWidget(self.enlarge_button)
        self.state.image_paths_changed.connect(self._update_result_actions)
        self._update_result_actions()
        return row

    def _result_index(self) -> int:
        return max(0, self.image_view.thumbnails.currentRow())

    def _update_result_actions(self, *_args: object) -> None:
        has_result = bool(self.state.image_paths)
        self.use_as_init_button.setEnabled(has_result)
        self.enlarge_button.setEnabled(has_result)

    def _use_result_as_init(self) -> None:
        paths = self.state.image_paths
        index = self._result_index()
        if index < len(paths):
            self.state.use_init_image(paths[index])

    def _show_picture_tab(self, path: str) -> None:
        if path and self.side_tabs is not None:
            self.side_tabs.setCurrentWidget(self.picture_canvas)

    def add_side_page(self, title: str, widget: QWidget) -> None:
        """Show `widget` (the queue, the compare view) in a tab beside the image."""
        if self.side_tabs is None:
            self.side_tabs = QTabWidget()
            self.splitter.replaceWidget(1, self.side_tabs)
            self.side_tabs.addTab(self.image_side, "Image")
        self.side_tabs.addTab(widget, title)

    def show_welcome(self) -> None:
        """Show the first-run welcome again (for the Help menu)."""
        self.state.show_welcome()

    def _build_settings(self) -> QWidget:
        self.model_edit = SearchCombo(lambda: self.state.choices("model"), MODEL_HINT)
        self.model_edit.set_tip(MODEL_TIP)
        self.model_browse_button = QPushButton("Browse…")
        self.model_browse_button.setToolTip("Choose a model folder or checkpoint file outside the library")
        browse = QMenu(self.model_browse_button)
        browse.addAction("Diffusers folder…", self._choose_model_folder)
        browse.addAction("Checkpoint file (.safetensors)…", self._choose_model_file)
        self.model_browse_button.setMenu(browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(self.model_browse_button)

        self.prompt_edit = PromptEditor()
        self.prompt_edit.setPlaceholderText("What to draw; mark the content and style phrases for "
                                            "CRAFT: a ginger cat <c> in watercolor style <s>")
        self.prompt_edit.setFixedHeight(76)
        # Live γ feedback of the prompt's markers, or what is wrong with them.
        self.markers_label = QLabel()
        self.markers_label.setObjectName("promptMarkers")
        self.markers_label.setWordWrap(True)
        self.markers_label.setToolTip("γ is how strongly each LoRA acts: 1 for a plain <c> or <s>, the "
                                      "weight of <s:0.25>, 0 (off) when its marker is missing. A prompt "
                                      "without markers gives both LoRAs γ 1.")
        self.markers_note = QLabel()
        self.markers_note.setObjectName("markersNote")
        self.markers_note.setWordWrap(True)
        self.markers_note.setStyleSheet("color: #d68910;")
        self.trigger_offer = self._build_trigger_offer()
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setPlaceholderText("What to avoid (optional)")
        self.negative_edit.setFixedHeight(44)
        prompt_box = QVBoxLayout()
        prompt_box.setSpacing(2)
        for widget in (self.prompt_edit, self.markers_label, self.markers_note, self.trigger_offer):
            prompt_box.addWidget(widget)

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
        self.native_size_button = QToolButton()
        self.native_size_button.setToolTip("Back to the size this model draws best at")
        self.native_size_button.clicked.connect(self.state.use_native_size)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin, 1)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin, 1)
        size_row.addWidget(self.native_size_button)
        self.size_hint_label = QLabel()
        self.size_hint_label.setObjectName("sizeHint")
        self.size_hint_label.setWordWrap(True)
        self.size_hint_label.setStyleSheet(QUIET_STYLE)
        self.scheduler_combo = QComboBox()
        for key, label in SCHEDULERS.items():
            self.scheduler_combo.addItem(label, key)
        self.batch_spin = QSpinBox(minimum=1, maximum=100)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Model", model_row)
        form.addRow("Prompt", prompt_box)
        form.addRow("Negative", self.negative_edit)
        steps_row = QHBoxLayout()
        steps_row.addWidget(self.steps_spin, 1)
        steps_row.addWidget(QLabel("CFG"))
        steps_row.addWidget(self.cfg_spin, 1)
        form.addRow("Steps", steps_row)
        form.addRow("Seed", seed_row)
        form.addRow("Size", size_row)
        form.addRow("", self.size_hint_label)
        sampler_row = QHBoxLayout()
        sampler_row.addWidget(self.scheduler_combo, 1)
        sampler_row.addWidget(QLabel("Images"))
        sampler_row.addWidget(self.batch_spin)
        form.addRow("Sampler", sampler_row)

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
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorMessage")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setVisible(False)

        self.craft_panel = CraftPanel(self.state.craft, self.state.choices)
        column = QVBoxLayout()
        column.addLayout(form)
        self.picture_settings = PictureSettings(self.state)
        column.addWidget(self.picture_settings)
        column.addWidget(self.craft_panel)
        column.addStretch(1)
        inner = QWidget()
        inner.setLayout(column)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Never narrower than its content: the column scrolls vertically, never clips sideways.
        scroll.setMinimumWidth(inner.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
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
        self.model_edit.set_path(s.model)
        s.model_changed.connect(self.model_edit.set_path)
        self.model_edit.path_chosen.connect(lambda path: setattr(s, "model", path))
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
        s.status_changed.connect(self._show_status)
        s.error_changed.connect(self._show_error)
        s.markers_changed.connect(self._show_markers)
        s.marker_error_changed.connect(self._show_markers)
        s.markers_note_changed.connect(self._show_markers)
        s.marker_error_at.connect(self._put_cursor_at)
        s.preview_changed.connect(self._show_preview)
        s.images_changed.connect(self._show_images)
        s.progress_text_changed.connect(self._show_progress_text)
        s.progress_busy_changed.connect(self._show_progress_busy)
        s.size_hint_changed.connect(self._show_size_hint)
        for signal in (s.native_size_changed, s.width_changed, s.height_changed):
            signal.connect(self._show_native_size)
        s.trigger_phrases_changed.connect(self.prompt_edit.set_trigger_phrases)
        s.trigger_offer_changed.connect(self._show_trigger_offer)
        self.prompt_edit.set_trigger_phrases(s.trigger_phrases)
        self._update_seed_enabled(s.random_seed)
        self._update_busy(s.is_busy)
        self._show_error(s.error)
        self._show_markers()
        self._show_status()
        self._show_progress(s.progress)
        self._show_progress_text(s.progress_text)
        self._show_size_hint(s.size_hint)
        self._show_native_size()
        self._show_trigger_offer(s.trigger_offer)

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
        if not busy and self._showing_preview:
            # Cancelled or failed mid-run: the noisy preview goes, the last result comes back.
            self._show_images(self.state.images)

    def _show_preview(self, image: object) -> None:
        if image is not None:
            self._showing_preview = True
            self.image_view.show_image(image)

    def _show_images(self, images: list) -> None:
        self._showing_preview = False
        self.image_view.show_images(images)

    def _show_progress(self, fraction: float) -> None:
        self.progress_bar.setValue(round(fraction * _PROGRESS_RANGE))

    def _show_progress_text(self, text: str) -> None:
        self.progress_bar.setFormat(text.replace("%", "%%"))
        self.progress_bar.setToolTip(text)
        self._show_status()

    def _show_progress_busy(self, busy: bool) -> None:
        # A range of 0–0 is Qt's busy indicator: loading has no steps to count.
        self.progress_bar.setRange(0, 0 if busy else _PROGRESS_RANGE)
        if not busy:
            self._show_progress(self.state.progress)
        self._show_status()

    def _show_status(self, *_args: object) -> None:
        # A busy bar draws no text (in most styles): what is loading is said under it instead.
        s = self.state
        self.status_label.setText(s.progress_text if s.progress_busy else s.status)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _show_markers(self, *_args: object) -> None:
        error = self.state.marker_error
        self.markers_label.setText(error or self.state.markers)
        self.markers_label.setStyleSheet("color: #e74c3c;" if error else QUIET_STYLE)
        self.markers_note.setText(self.state.markers_note)
        self.markers_note.setVisible(bool(self.state.markers_note) and not error)
        self.prompt_edit.set_marker_error(error, self.state.marker_error_position)

    def _show_size_hint(self, hint: str) -> None:
        self.size_hint_label.setText(hint)
        self.size_hint_label.setVisible(bool(hint))

    def _show_native_size(self, *_args: object) -> None:
        native = self.state.native_size
        self.native_size_button.setVisible(bool(native))
        if native:
            self.native_size_button.setText(f"{native[0]}×{native[1]}")
            self.native_size_button.setEnabled((self.state.width, self.state.height) != tuple(native))

    def _build_trigger_offer(self) -> QFrame:
        frame = QFrame()
        frame.setObjectName("triggerOffer")
        self.trigger_offer_label = QLabel()
        self.trigger_offer_label.setWordWrap(True)
        self.remove_trigger_button = QPushButton("Remove it")
        self.remove_trigger_button.clicked.connect(self.state.remove_offered_trigger)
        self.keep_trigger_button = QPushButton("Keep")
        self.keep_trigger_button.clicked.connect(self.state.keep_offered_trigger)
        row = QHBoxLayout(frame)
        row.setContentsMargins(0, 2, 0, 2)
        row.addWidget(self.trigger_offer_label, 1)
        row.addWidget(self.remove_trigger_button)
        row.addWidget(self.keep_trigger_button)
        return frame

    def _show_trigger_offer(self, offer: tuple[str, str] | None) -> None:
        if offer is not None:
            role, trigger = offer
            self.trigger_offer_label.setText(f"The prompt still names “{trigger}”, the trigger of the "
                                             f"{role} LoRA you took off.")
        self.trigger_offer.setVisible(offer is not None)

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
