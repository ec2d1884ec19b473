"""`TrainPage`: train a content LoRA, a style LoRA or a backbone, watch it, try the result.

Left: what to train (the three jobs), the settings that matter first (base model, backbone,
trigger phrase, output name, quality and memory presets) and, folded under "Advanced", every
other option of `python -m craftstudio train`; under them, pinned, Start / Cancel, "Copy as
command", "Try it" and the stopped runs to resume. Right, in a splitter: the reference strips on
top, the run below (progress with speed and time left, the loss plot, the sample images with
their steps). Everything is bound to `TrainState`; the page adds file dialogs, the clipboard and
visibility.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDoubleValidator, QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.generation import DEVICES, MAX_SIDE, ROUTING_PRESETS
from craftstudio.domain.training import BASIS_INITS, LOSSES, MIXED_PRECISION
from craftstudio.state.train_presets import MEMORY_LABELS, QUALITY
from craftstudio.state.train_state import TrainState
from craftstudio.ui.bindings import bind_check, bind_combo, bind_line_edit, bind_spin
from craftstudio.ui.gpu_checks import GpuChecks
from craftstudio.ui.image_view import to_qimage
from craftstudio.ui.loss_plot import LossPlot
from craftstudio.ui.reference_strip import ReferenceStrip

KIND_LABELS = {"content": "Content LoRA", "style": "Style LoRA", "backbone": "Backbone"}
KIND_HINTS = {
    "content": "A subject (a character, an object): trained only on the content layers.",
    "style": "A look (a medium, a palette, a texture): trained only on the style layers.",
    "backbone": "W_init: content and style bases from up to 10 + 10 references, so that a content LoRA "
                "and a style LoRA combine cleanly.",
}
SAMPLE_ICON = 128
ERROR_STYLE = "color: #e74c3c; font-weight: bold;"
WARNING_STYLE = "color: #e67e22; font-weight: bold;"


def _time(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _spin(low: int, high: int, step: int = 1, special: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    if special:
        spin.setSpecialValueText(special)
    return spin


def _double(low: float, high: float, decimals: int, special: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    if special:
        spin.setSpecialValueText(special)
    return spin


def _combo(values) -> QComboBox:
    combo = QComboBox()
    for value in values:
        combo.addItem(value, value)
    return combo


def _bind_float_text(state: TrainState, name: str, edit: QLineEdit) -> None:
    """A float shown as `1e-04` style text (learning rates span decades; a spin box cannot)."""
    edit.setValidator(QDoubleValidator(0.0, 1.0, 12))
    edit.setText(f"{getattr(state, name):g}")
    getattr(state, f"{name}_changed").connect(lambda value: edit.setText(f"{value:g}"))

    def commit() -> None:
        try:
            setattr(state, name, float(edit.text()))
        except ValueError:
            edit.setText(f"{getattr(state, name):g}")

    edit.editingFinished.connect(commit)


class TrainPage(QWidget):
    def __init__(self, state: TrainState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        left = self._build_settings()
        right = self._build_run_view()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([440, 560])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._bind()

    # ---------- building
    def _build_settings(self) -> QWidget:
        state = self.state
        self.kind_buttons = QButtonGroup(self)
        kind_row = QHBoxLayout()
        kind_row.setSpacing(0)
        for kind, label in KIND_LABELS.items():
            button = QPushButton(label)
            button.setCheckable(True)
            button.setProperty("kind", kind)
            self.kind_buttons.addButton(button)
            kind_row.addWidget(button)
        self.kind_hint = QLabel()
        self.kind_hint.setWordWrap(True)
        self.kind_hint.setStyleSheet("color: palette(placeholder-text);")

        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("A diffusers model folder or a .safetensors checkpoint")
        model_row = self._with_buttons(self.model_edit, ("Folder…", self._choose_model_folder),
                                       ("File…", self._choose_model_file))
        self.backbone_edit = QLineEdit()
        self.backbone_edit.setPlaceholderText("None: train on the plain base model")
        backbone_row = self._with_buttons(self.backbone_edit, ("File…", self._choose_backbone))
        self.trigger_edit = QLineEdit()
        self.trigger_edit.setPlaceholderText("The words that call up this LoRA, e.g. sks cat")
        self.name_edit = QLineEdit()
        self.quality_combo = _combo(QUALITY)
        self.quality_combo.setToolTip("Quick: a first look. Standard: common practice. Best: longer, "
                                      "higher rank (sets steps, rank and learning rate)")
        self.memory_combo = QComboBox()
        self.memory_combo.addItem("Auto", "")
        for label in MEMORY_LABELS:
            self.memory_combo.addItem(label, label)
        self.memory_combo.setToolTip("Sets batch size, gradient checkpointing and 8-bit Adam to fit the "
                                     "GPU's memory")
        self.device_label = QLabel()
        self.device_label.setStyleSheet("color: palette(placeholder-text);")
        memory_row = QHBoxLayout()
        memory_row.addWidget(self.memory_combo, 1)
        memory_row.addWidget(self.device_label, 1)

        self.essentials = QFormLayout()
        self.essentials.addRow("Base model", model_row)
        self.essentials.addRow("Backbone", backbone_row)
        self.essentials.addRow("Trigger phrase", self.trigger_edit)
        self.essentials.addRow("Output name", self.name_edit)
        self.essentials.addRow("Quality", self.quality_combo)
        self.essentials.addRow("Memory", memory_row)
        self.essentials.addRow("GPUs", self._build_gpu_row())

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self.advanced = QWidget()
        self.advanced_form = QFormLayout(self.advanced)
        self.advanced_form.setContentsMargins(12, 0, 0, 0)
        self._advanced_rows: list[tuple[QWidget, tuple[str, ...]]] = []
        self._build_advanced()
        self.advanced.setVisible(False)

        settings = QWidget()
        column = QVBoxLayout(settings)
        column.addLayout(kind_row)
        column.addWidget(self.kind_hint)
        column.addLayout(self.essentials)
        column.addWidget(self._build_strips())
        column.addWidget(self.advanced_toggle)
        column.addWidget(self.advanced)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(settings)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(state.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the checkpoint is kept for Resume")
        self.cancel_button.clicked.connect(state.cancel)
        self.command_button = QPushButton("Copy as command")
        self.command_button.setToolTip("Put the equivalent `python -m craftstudio train` command on the "
                                       "clipboard")
        self.command_button.clicked.connect(self._copy_command)
        self.try_button = QPushButton("Try it")
        self.try_button.setToolTip("Open Generate with the trained file loaded")
        self.try_button.clicked.connect(state.try_it)
        self.runs_combo = QComboBox()
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self._resume)
        self.runs_row = QWidget()
        runs_layout = QHBoxLayout(self.runs_row)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_layout.addWidget(QLabel("Stopped:"))
        runs_layout.addWidget(self.runs_combo, 1)
        runs_layout.addWidget(self.resume_button)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.command_button, self.try_button):
            buttons.addWidget(button)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        panel = QWidget()
        outer = QVBoxLayout(panel)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll, 1)
        outer.addWidget(self.runs_row)
        outer.addLayout(buttons)
        outer.addWidget(self.error_label)
        panel.setMinimumWidth(400)
        return panel

    def _build_gpu_row(self) -> QWidget:
        """Shown only where there are several GPUs (`_show_gpus`)."""
        self.gpu_row = GpuChecks(self.state.gpu_selection, lambda number, name: f"{number}: {name}",
                                 "Train on this GPU too: one process per GPU, each takes its share of every batch")
        return self.gpu_row

    def _build_advanced(self) -> None:
        s = self.state
        lora, backbone, every = ("content", "style"), ("backbone",), ("content", "style", "backbone")
        self.lr_edit = QLineEdit()
        _bind_float_text(s, "learning_rate", self.lr_edit)
        self.fast_check = self._bound_check("fast", "Compiled step (faster on CUDA)")
        self.fast_check.setToolTip("Compile the training step with torch.compile: several times faster per step "
                                   "on an NVIDIA GPU (replayed as CUDA graphs) after a first compile (2–3 minutes "
                                   "for a full-size SD1.5 UNet on an H200, about 6 for SDXL); the same result. An SDXL "
                                   "backbone step measured 1.9x faster with it")
        rows = [
            ("Steps", self._bound_spin("steps", _spin(1, 1_000_000, 50)), every),
            ("Learning rate", self.lr_edit, every),
            ("Rank", self._bound_spin("rank", _spin(1, 1024)), lora),
            ("Alpha", self._bound_spin("alpha", _double(0, 4096, 1, "= rank")), lora),
            ("Top rank (r max)", self._bound_spin("r_max", _spin(1, 4096)), backbone),
            ("Bottom rank (r min)", self._bound_spin("r_min", _spin(1, 4096)), backbone),
            ("Batch size", self._bound_spin("batch_size", _spin(1, 64)), every),
            ("Resolution", self._bound_spin("resolution", _spin(0, MAX_SIDE, 8, "model's own")), every),
            ("Caption template", self._bound_line("caption", "a photo of {trigger}"), lora),
            ("Content caption", self._bound_line("content_caption"), backbone),
            ("Style caption", self._bound_line("style_caption"), backbone),
            ("Precision", self._bound_combo("mixed_precision", MIXED_PRECISION), every),
            ("", self._bound_check("gradient_checkpointing", "Gradient checkpointing (less memory)"), every),
            ("", self.fast_check, every),
            ("", self._bound_check("adam_8bit", "8-bit Adam (needs bitsandbytes)"), lora),
            ("", self._bound_check("upscale", "Upscale images below the resolution"), every),
            ("Loss", self._bound_combo("loss", LOSSES), every),
            ("Seed", self._bound_spin("seed", _spin(0, 2**31 - 1)), every),
            ("Device", self._bound_combo("device", DEVICES), every),
            ("Sample every", self._bound_spin("sample_every", _spin(0, 1_000_000, 50, "no samples")), lora),
            ("Sample steps", self._bound_spin("sample_steps", _spin(1, 1000)), lora),
            ("Sample prompt", self._bound_line("sample_prompt", "the caption with the role's marker"), lora),
            ("Checkpoint every", self._bound_spin("checkpoint_every", _spin(0, 1_000_000, 50, "never")), every),
            ("Layers", self._bound_combo("routing_preset", ROUTING_PRESETS), lora),
            ("Routing overrides", self._bound_line("routes", "BLOCK=ROLE, … (e.g. mid_block=style)"), lora),
            ("Basis start", self._bound_combo("init", BASIS_INITS), backbone),
            ("Low-pass σ", self._bound_spin("sigma", _double(0.01, 1, 3)), backbone),
            ("Orthogonality λ", self._bound_spin("ortho_weight", _double(0, 1e6, 3)), backbone),
            ("Preservation folder", self._bound_line("keep_dir", "none"), backbone),
            ("Preservation weight κ", self._bound_spin("keep_weight", _double(0, 1e6, 1)), backbone),
            ("Use at most (content)", self._bound_spin("max_content", _spin(1, 10_000)), backbone),
            ("Use at most (style)", self._bound_spin("max_style", _spin(1, 10_000)), backbone),
            ("Title", self._bound_line("title", "the file name"), every),
            ("", self._bound_check("overwrite", "Overwrite an existing output file"), every),
        ]
        for label, widget, kinds in rows:
            self.advanced_form.addRow(label, widget)
            self._advanced_rows.append((widget, kinds))

    def _bound_spin(self, name: str, spin):
        bind_spin(self.state, name, spin)
        return spin

    def _bound_line(self, name: str, placeholder: str = "") -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        bind_line_edit(self.state, name, edit)
        return edit

    def _bound_combo(self, name: str, values) -> QComboBox:
        combo = _combo(values)
        bind_combo(self.state, name, combo)
        return combo

    def _bound_check(self, name: str, text: str) -> QCheckBox:
        box = QCheckBox(text)
        bind_check(self.state, name, box)
        return box

    @staticmethod
    def _with_buttons(edit: QLineEdit, *buttons) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        for text, slot in buttons:
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        return row

    def _build_strips(self) -> QWidget:
        s = self.state
        size = lambda: s.resolution or s.native_size  # noqa: E731
        self.lora_strip = ReferenceStrip(s.images, "References", self._template, size)
        self.content_strip = ReferenceStrip(s.content_refs, "Content references", lambda: s.content_caption,
                                            size)
        self.style_strip = ReferenceStrip(s.style_refs, "Style references", lambda: s.style_caption, size)
        refs = QWidget()
        refs_layout = QVBoxLayout(refs)
        refs_layout.setContentsMargins(0, 6, 0, 6)
        for strip in (self.lora_strip, self.content_strip, self.style_strip):
            refs_layout.addWidget(strip)
        return refs

    def _build_run_view(self) -> QWidget:
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setFixedHeight(10)
        self.progress_label = QLabel("Not running.")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.slow_label = QLabel()
        self.slow_label.setWordWrap(True)
        self.slow_label.setStyleSheet(WARNING_STYLE)
        self.loss_plot = LossPlot()
        self.samples = QListWidget()
        self.samples.setViewMode(QListWidget.ViewMode.IconMode)
        self.samples.setFlow(QListWidget.Flow.LeftToRight)
        self.samples.setWrapping(False)
        self.samples.setMovement(QListWidget.Movement.Static)
        self.samples.setIconSize(QSize(SAMPLE_ICON, SAMPLE_ICON))
        self.samples.setFixedHeight(SAMPLE_ICON + 44)
        self.samples_title = QLabel("<b>Samples</b> — made every N steps (Advanced: Sample every)")
        run = QWidget()
        run_layout = QVBoxLayout(run)
        head = QHBoxLayout()
        head.addWidget(self.progress_label, 1)
        run_layout.addLayout(head)
        run_layout.addWidget(self.progress_bar)
        run_layout.addWidget(self.status_label)
        run_layout.addWidget(self.slow_label)
        run_layout.addWidget(self.loss_plot, 1)
        run_layout.addWidget(self.samples_title)
        run_layout.addWidget(self.samples)
        return run

    # ---------- binding
    def _bind(self) -> None:
        s = self.state
        bind_line_edit(s, "model", self.model_edit)
        bind_line_edit(s, "backbone", self.backbone_edit)
        bind_line_edit(s, "trigger", self.trigger_edit)
        bind_line_edit(s, "name", self.name_edit)
        bind_combo(s, "quality", self.quality_combo)
        bind_combo(s, "memory", self.memory_combo)
        self.kind_buttons.buttonClicked.connect(lambda button: setattr(s, "kind", button.property("kind")))
        s.kind_changed.connect(self._show_kind)
        s.device_label_changed.connect(self._show_device)
        s.is_busy_changed.connect(lambda _busy: self._update_buttons())
        s.output_changed.connect(lambda _out: self._update_buttons())
        s.status_changed.connect(self.status_label.setText)
        s.error_changed.connect(self._show_error)
        s.slow_warning_changed.connect(self._show_slow)
        for signal in (s.step_changed, s.total_changed, s.speed_changed, s.eta_s_changed):
            signal.connect(lambda _value: self._show_progress())
        s.losses_changed.connect(self.loss_plot.set_points)
        s.samples_changed.connect(self._show_samples)
        s.runs_changed.connect(self._show_runs)
        s.gpu_selection.available_changed.connect(lambda _gpus: self._show_gpus())
        s.gpu_selection.chosen_changed.connect(lambda _chosen: self._show_gpu_choice())
        for signal in (s.trigger_changed, s.caption_changed, s.resolution_changed, s.native_size_changed,
                       s.content_caption_changed, s.style_caption_changed):
            signal.connect(lambda _value: self._refresh_strips())
        self.name_edit.setPlaceholderText(s.output_path().stem)
        for signal in (s.trigger_changed, s.kind_changed):
            signal.connect(lambda _value: self.name_edit.setPlaceholderText(s.output_path().stem))
        self._show_kind(s.kind)
        self._show_device(s.device_label)
        self._show_error(s.error)
        self._show_slow(s.slow_warning)
        self._show_runs(s.runs)
        self._show_gpus()
        self._show_progress()
        self._update_buttons()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.state.detect_device()
        self.state.refresh_runs()

    # ---------- showing
    def _template(self) -> str:
        template = self.state.caption_template
        try:
            return template.format(trigger=self.state.trigger.strip() or "{trigger}")
        except (KeyError, IndexError, ValueError):
            return template

    def _refresh_strips(self) -> None:
        for strip in (self.lora_strip, self.content_strip, self.style_strip):
            strip.refresh()

    def _show_kind(self, kind: str) -> None:
        for button in self.kind_buttons.buttons():
            button.setChecked(button.property("kind") == kind)
        self.kind_hint.setText(KIND_HINTS.get(kind, ""))
        is_lora = kind != "backbone"
        for row in (1, 2):  # backbone file and trigger phrase: LoRAs only
            self.essentials.setRowVisible(row, is_lora)
        for widget, kinds in self._advanced_rows:
            self.advanced_form.setRowVisible(widget, kind in kinds)
        self.lora_strip.setVisible(is_lora)
        self.content_strip.setVisible(not is_lora)
        self.style_strip.setVisible(not is_lora)
        self.samples_title.setVisible(is_lora)
        self.samples.setVisible(is_lora)
        self._refresh_strips()

    def _show_gpus(self) -> None:
        self.gpu_row.rebuild()
        self.essentials.setRowVisible(self.gpu_row, self.state.gpu_selection.several)
        self._show_gpu_choice()

    def _show_gpu_choice(self) -> None:
        self.gpu_row.show_choice(self.state.gpu_selection.summary)

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _show_device(self, label: str) -> None:
        self.device_label.setText(label)
        suggested = self.state.suggested_memory
        self.memory_combo.setItemText(0, f"Auto ({suggested})" if suggested else "Auto")

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _show_slow(self, message: str) -> None:
        self.slow_label.setText(message)
        self.slow_label.setVisible(bool(message))

    def _show_progress(self) -> None:
        s = self.state
        self.progress_bar.setRange(0, max(s.total, 1))
        self.progress_bar.setValue(min(s.step, max(s.total, 1)))
        if not s.total:
            self.progress_label.setText("Not running.")
            return
        parts = [f"Step {s.step} / {s.total}"]
        if s.speed:
            parts.append(f"{s.speed:.2f} steps/s" if s.speed >= 1 else f"{1 / s.speed:.1f} s/step")
        if s.is_busy and s.step and s.step < s.total:
            parts.append(f"{_time(s.eta_s)} left")
        self.progress_label.setText("  ·  ".join(parts))

    def _show_samples(self, samples) -> None:
        shown = self.samples.count()
        if len(samples) < shown:
            self.samples.clear()
            shown = 0
        for step, image in samples[shown:]:
            pixmap = QPixmap.fromImage(to_qimage(image)).scaled(
                SAMPLE_ICON, SAMPLE_ICON, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation)  # pixel art stays crisp
            item = QListWidgetItem(QIcon(pixmap), f"step {step}")
            item.setToolTip(f"Sample after step {step}")
            self.samples.addItem(item)
        if self.samples.count():
            self.samples.scrollToItem(self.samples.item(self.samples.count() - 1))

    def _show_runs(self, runs) -> None:
        self.runs_combo.clear()
        for run in runs:
            self.runs_combo.addItem(run.label)
        self.runs_row.setVisible(bool(runs))
        self._update_buttons()

    def _update_buttons(self) -> None:
        s = self.state
        busy = s.is_busy
        self.start_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.resume_button.setEnabled(not busy and bool(s.runs))
        self.try_button.setEnabled(not busy and s.last_output is not None)
        self.start_button.setText("Training…" if busy else "Start training")

    # ---------- actions
    def _copy_command(self) -> None:
        text = self.state.command_line()
        if text:
            QGuiApplication.clipboard().setText(text)
            self.state.status = "Command copied to the clipboard."

    def _resume(self) -> None:
        index = self.runs_combo.currentIndex()
        if 0 <= index < len(self.state.runs):
            self.state.resume(self.state.runs[index])

    def _choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base model folder (diffusers)", self.state.model)
        if folder:
            self.state.model = folder

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Base model checkpoint", self.state.model,
                                              "Checkpoints (*.safetensors)")
        if path:
            self.state.model = path

    def _choose_backbone(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone file", self.state.backbone,
                                              "Backbones (*.safetensors)")
        if path:
            self.state.backbone = path
