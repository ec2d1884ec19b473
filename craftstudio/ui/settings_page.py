"""`SettingsPage`: the app's settings, bound to `SettingsState`.

Every change goes through `SettingsState.change`, which refuses an invalid value with a
sentence; the page shows that sentence under the settings and puts the widget back to the
value in force. Folder and template fields are checked when editing finishes (Enter or leaving
the field), so a half-typed path is not refused mid-word; the template's example file name
follows every keystroke.

On a computer with several CUDA GPUs the engine section has a "GPUs for a batch" row: one check
box per GPU (listed by the state's device probe, asked when the page is first shown) and a line
saying what the choice does now. With no GPU or one, the row stays hidden.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from craftstudio.domain.errors import UserError
from craftstudio.domain.file_names import PLACEHOLDERS, check_template, example_name
from craftstudio.state.settings_state import FOLDERS, MAX_PREVIEW_EVERY, MAX_THREADS, SettingsState
from craftstudio.ui.gpu_checks import GpuChecks

DEVICE_CHOICES = {
    "auto": "Automatic (CUDA, then Apple MPS, then CPU)",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
    "cpu": "CPU",
}
THEME_CHOICES = {"dark": "Dark", "light": "Light", "system": "Follow the system"}
FOLDER_TIPS = {
    "outputs_folder": "Where generated images are saved (the folder is made when needed).",
    "models_folder": "A folder of base models (diffusers folders, .safetensors checkpoints). "
                     "File › Scan library folders adds what it holds to the library.",
    "loras_folder": "A folder of LoRA files. File › Scan library folders adds what it holds to "
                    "the library.",
}


class SettingsPage(QWidget):
    def __init__(self, state: SettingsState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.folder_edits: dict[str, QLineEdit] = {}
        self.browse_buttons: dict[str, QPushButton] = {}

        self.device_combo = self._combo("device", DEVICE_CHOICES,
                                        "Where images are made. Automatic picks an NVIDIA GPU, then an "
                                        "Apple GPU, then the CPU. Recorded in every image's settings.")
        self.preview_spin = self._spin("preview_every", MAX_PREVIEW_EVERY, "Off",
                                       "Show the image being denoised every N steps while it is made. "
                                       "0 turns previews off (slightly faster).")
        self.preview_spin.valueChanged.connect(self._preview_suffix)
        self._preview_suffix(self.preview_spin.value())
        self.threads_spin = self._spin("cpu_threads", MAX_THREADS, "Automatic",
                                       "How many CPU threads the engine uses. Automatic lets torch "
                                       "decide (all cores); fewer keeps the computer responsive.")
        self.fast_check = self._check("fast", "Fast path (compiled, CUDA)",
                                      "Compile the UNet with CUDA graphs: steps run several times faster "
                                      "on an NVIDIA GPU, but the first image at a new size waits about a "
                                      "minute to compile (kept on disk for the next launch). Off on the CPU.")
        self.low_vram_check = self._check("low_vram", "Low VRAM (6–12 GB cards)",
                                          "Keep the model in CPU memory and move each part to the GPU when "
                                          "it runs, and decode large images in tiles: slower, but SDXL "
                                          "fits in about 6 GB.")
        self.theme_combo = self._combo("theme", THEME_CHOICES,
                                       "The colours of the whole window. Changes at once.")
        engine = QFormLayout()
        engine.addRow("Device", self.device_combo)
        engine.addRow("Step preview every", self.preview_spin)
        engine.addRow("CPU threads", self.threads_spin)
        engine.addRow("", self.fast_check)
        engine.addRow("", self.low_vram_check)
        engine.addRow("GPUs for a batch", self._build_gpu_row())
        self.engine_form = engine

        folders = QFormLayout()
        for name, label in (("outputs_folder", "Outputs"), ("models_folder", "Models"),
                            ("loras_folder", "LoRAs")):
            folders.addRow(label, self._folder_row(name))

        self.template_edit = QLineEdit(state.file_name_template)
        self.template_edit.setToolTip(_template_help())
        self.template_edit.textEdited.connect(self._preview_template)
        self.template_edit.editingFinished.connect(
            lambda: self._commit("file_name_template", self.template_edit.text()))
        self.example_label = QLabel()
        self.example_label.setObjectName("templateExample")
        self.example_label.setToolTip("The name the template gives an image made now; a name "
                                      "already taken gets -2, -3, ... so no image is overwritten.")
        placeholders = QLabel("Placeholders: " + "  ".join("{" + n + "}" for n in PLACEHOLDERS))
        placeholders.setWordWrap(True)
        placeholders.setToolTip(_template_help())
        placeholders.setObjectName("templatePlaceholders")
        names = QFormLayout()
        names.addRow("File name", self.template_edit)
        names.addRow("", self.example_label)
        names.addRow("", placeholders)

        look = QFormLayout()
        look.addRow("Theme", self.theme_combo)

        self.error_label = QLabel()
        self.error_label.setObjectName("errorMessage")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #e0604f; font-weight: bold;")
        note = QLabel("Settings are saved as you change them.")
        note.setObjectName("settingsNote")

        column = QVBoxLayout()
        for title, form in (("Engine", engine), ("Folders", folders), ("Image file names", names),
                            ("Appearance", look)):
            box = QGroupBox(title)
            box.setLayout(form)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            column.addWidget(box)
        column.addWidget(self.error_label)
        column.addWidget(note)
        column.addStretch(1)
        inner = QWidget()
        inner.setLayout(column)
        inner.setMaximumWidth(760)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(scroll)

        state.error_changed.connect(self._show_error)
        state.example_name_changed.connect(lambda name: self.example_label.setText(f"e.g. {name}"))
        state.file_name_template_changed.connect(self._show_template)
        self._show_error(state.error)
        self.example_label.setText(f"e.g. {state.example_name}")
        selection = state.gpu_selection
        selection.available_changed.connect(lambda _gpus: self._show_gpus())
        selection.chosen_changed.connect(lambda _chosen: self._show_gpu_choice())
        for signal in (state.gpu_note_changed, state.device_changed, state.low_vram_changed):
            signal.connect(lambda _value: self._show_gpu_choice())
        self._show_gpus()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.state.detect_gpus()

    # ---------- building
    def _build_gpu_row(self) -> QWidget:
        self.gpu_row = GpuChecks(self.state.gpu_selection, lambda number, name: f"GPU {number} · {name}",
                                 "Split a batch over this GPU too: it loads its own copy of the model and "
                                 "makes its share of the images")
        self.gpu_row.note.setObjectName("gpuNote")
        return self.gpu_row

    def _combo(self, name: str, choices: dict[str, str], tip: str) -> QComboBox:
        combo = QComboBox()
        combo.setToolTip(tip)
        for value, label in choices.items():
            combo.addItem(label, value)

        def to_widget(value: str) -> None:
            combo.setCurrentIndex(max(combo.findData(value), 0))

        to_widget(getattr(self.state, name))
        getattr(self.state, f"{name}_changed").connect(to_widget)
        combo.activated.connect(lambda _i: self._commit(name, combo.currentData()))
        return combo

    def _check(self, name: str, text: str, tip: str) -> QCheckBox:
        check = QCheckBox(text)
        check.setToolTip(tip)
        check.setChecked(getattr(self.state, name))
        getattr(self.state, f"{name}_changed").connect(check.setChecked)
        check.toggled.connect(lambda on: self._commit(name, bool(on)))
        return check

    def _spin(self, name: str, maximum: int, zero_text: str, tip: str) -> QSpinBox:
        spin = QSpinBox(minimum=0, maximum=maximum)
        spin.setSpecialValueText(zero_text)
        spin.setToolTip(tip)
        spin.setValue(getattr(self.state, name))
        getattr(self.state, f"{name}_changed").connect(spin.setValue)
        spin.valueChanged.connect(lambda value: self._commit(name, int(value)))
        return spin

    def _folder_row(self, name: str) -> QWidget:
        edit = QLineEdit(getattr(self.state, name))
        edit.setToolTip(FOLDER_TIPS[name])
        edit.editingFinished.connect(lambda: self._commit(name, edit.text()))
        getattr(self.state, f"{name}_changed").connect(edit.setText)
        button = QPushButton("Browse…")
        button.setToolTip(f"Choose the {FOLDERS[name]} folder")
        button.clicked.connect(lambda: self._browse(name))
        self.folder_edits[name] = edit
        self.browse_buttons[name] = button
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(button)
        return row

    # ---------- reacting
    def _show_gpus(self) -> None:
        self.gpu_row.rebuild()
        self.engine_form.setRowVisible(self.gpu_row, self.state.gpu_selection.several)
        self._show_gpu_choice()

    def _show_gpu_choice(self) -> None:
        usable = self.state.device in ("auto", "cuda") and not self.state.low_vram
        self.gpu_row.show_choice(self.state.gpu_note, usable)

    def _preview_suffix(self, value: int) -> None:
        self.preview_spin.setSuffix(" step" if value == 1 else " steps")

    def _commit(self, name: str, value: object) -> None:
        if getattr(self.state, name) == value and not self.state.error:
            return
        if not self.state.change(name, value):
            self._revert(name)

    def _revert(self, name: str) -> None:
        # Spin boxes and combos show the value in force again; text fields keep what was typed,
        # so it can be corrected, until the user leaves the page or fixes it.
        current = getattr(self.state, name)
        if name == "preview_every":
            self.preview_spin.setValue(current)
        elif name == "cpu_threads":
            self.threads_spin.setValue(current)
        elif name in ("device", "theme"):
            combo = self.device_combo if name == "device" else self.theme_combo
            combo.setCurrentIndex(max(combo.findData(current), 0))

    def _browse(self, name: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Choose the {FOLDERS[name]} folder",
                                                  getattr(self.state, name))
        if folder:
            self.folder_edits[name].setText(folder)
            self._commit(name, folder)

    def _preview_template(self, text: str) -> None:
        try:
            check_template(text)
        except UserError as exc:
            self.example_label.setText(str(exc))
            return
        self.example_label.setText(f"e.g. {example_name(text)}")

    def _show_template(self, template: str) -> None:
        if self.template_edit.text() != template:
            self.template_edit.setText(template)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))
        if not message:
            self.example_label.setText(f"e.g. {self.state.example_name}")


def _template_help() -> str:
    lines = ["How generated images are named. Placeholders:"]
    lines += [f"{{{name}}}: {meaning}" for name, meaning in PLACEHOLDERS.items()]
    lines.append("A name already taken gets -2, -3, ... so no image is overwritten.")
    return "\n".join(lines)
