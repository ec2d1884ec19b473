"""`CraftPanel`: the "CRAFT fusion" section of the Generate panel.

Content and style LoRA files with their weights, the optional backbone, the fusion mode with
its four switches, the curve preset and the visual curve editor. LoRAs and backbones are picked
from the library with a searchable drop-down (`SearchCombo`, entries from `choices`: those of
the current model's family plus the demo's) or with "…" (a file dialog). Bound to `CraftState`; the
mode combo only mirrors `CraftState.mode` (derived from the switches, or a peer mode), so choosing
craft or direct sets the check boxes, a peer mode (k-lora, switch, composite) clears them, and
ticking one by hand shows "custom".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QToolButton,
    QWidget,
)

from craftstudio.domain.curves import CURVE_NAMES, Interpolation
from craftstudio.state.craft_state import MAX_LORA_WEIGHT, MODES, SWITCH_LABELS, SWITCHES, CraftState
from craftstudio.state.library_choices import Choice
from craftstudio.ui.bindings import bind_check, bind_combo, bind_spin
from craftstudio.ui.curve_editor import COLORS, CurveEditor
from craftstudio.ui.search_combo import SearchCombo

# Entries of the pickers, by field name ("content_lora", "style_lora", "backbone").
ChoicesFn = Callable[[str], list[Choice]]

SAFETENSORS = "Safetensors files (*.safetensors)"
MODE_TIPS = {
    "craft": "All CRAFT components: backbone, routing, asymmetric CFG and gates.",
    "direct": "The plain weighted merge other tools do: every switch off.",
    "custom": "Some switches on, some off (toggle the check boxes).",
    "k-lora": "K-LoRA (arXiv 2502.18461): per layer, the LoRA with the larger Top-K |ΔW| entries; "
              "content favoured early, style late. No CRAFT component.",
    "switch": "LoRA Switch (arXiv 2402.16843): one LoRA at a time, content and style in turn every "
              "5 steps. No CRAFT component.",
    "composite": "LoRA Composite (arXiv 2402.16843): each LoRA's own guided prediction every step, "
                 "averaged. No CRAFT component.",
}
CURVE_LABELS = {"guidance": "Guidance", "content": "Content gate", "style": "Style gate"}


class CraftPanel(QGroupBox):
    def __init__(self, state: CraftState, choices: ChoicesFn | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__("CRAFT fusion", parent)
        self.state = state
        self.curves = state.curves
        self._choices = choices or (lambda _name: [])
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.content_edit, self.content_button, self.content_weight = self._file_row(
            form, "Content LoRA", "content_lora", "content_weight", "A content LoRA (.safetensors)")
        self.style_edit, self.style_button, self.style_weight = self._file_row(
            form, "Style LoRA", "style_lora", "style_weight", "A style LoRA (.safetensors)")
        self.backbone_edit, self.backbone_button, _ = self._file_row(
            form, "Backbone", "backbone", None, "Optional: a CRAFT backbone (.safetensors)")

        self.mode_combo = QComboBox()
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
            self.mode_combo.setItemData(self.mode_combo.count() - 1, MODE_TIPS[mode],
                                        Qt.ItemDataRole.ToolTipRole)
        # "custom" is where the switches lead, not something to pick.
        self.mode_combo.model().item(MODES.index("custom")).setEnabled(False)
        self.mode_combo.activated.connect(lambda i: state.set_mode(self.mode_combo.itemData(i)))
        state.mode_changed.connect(self._show_mode)
        self._show_mode(state.mode)
        form.addRow("Mode", self.mode_combo)
        self.switch_checks: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, name in enumerate(SWITCHES):
            check = QCheckBox(SWITCH_LABELS[name])
            bind_check(state, f"use_{name}", check)
            self.switch_checks[name] = check
            grid.addWidget(check, i // 2, i % 2)
        form.addRow("", grid)
        self.routing_combo = QComboBox()
        self.routing_combo.addItem("CRAFT sets (I_c, I_s)", "craft")
        self.routing_combo.addItem("B-LoRA blocks (one each)", "b-lora")
        self.routing_combo.setToolTip("Which UNet layers each LoRA may touch under Routing: CRAFT's content and "
                                      "style sets (Eq. 7), or B-LoRA's single block per role (arXiv 2403.14572)")
        bind_combo(state, "routing_preset", self.routing_combo)
        for signal in (state.use_routing_changed, state.peer_mode_changed):
            signal.connect(self._update_routing_combo)
        self._update_routing_combo()
        form.addRow("Layers", self.routing_combo)

        form.addRow("Curves", self._preset_row())
        form.addRow(self._curve_row())
        self.editor = CurveEditor(self.curves)
        form.addRow(self.editor)
        self.curve_message = QLabel()
        self.curve_message.setWordWrap(True)
        message_row = QHBoxLayout()
        message_row.addWidget(self.curve_message, 1)
        message_row.addWidget(self.undo_button, 0, Qt.AlignmentFlag.AlignTop)
        message_row.addWidget(self.redo_button, 0, Qt.AlignmentFlag.AlignTop)
        form.addRow(message_row)
        state.use_gates_changed.connect(self.editor.setEnabled)
        self.editor.setEnabled(state.use_gates)
        for signal in (self.curves.curve_set_changed, self.curves.active_changed,
                       self.curves.selected_changed, self.curves.error_changed,
                       self.curves.preset_changed, self.curves.edited_changed):
            signal.connect(self._refresh_curve_widgets)
        self._refresh_curve_widgets()

    def _update_routing_combo(self, *_args: object) -> None:
        self.routing_combo.setEnabled(self.state.use_routing and not self.state.peer_mode)

    def add_below_editor(self, widget: QWidget) -> None:
        """Place `widget` (the step-preview timeline) right under the curve editor."""
        form = self.layout()
        assert isinstance(form, QFormLayout)
        row, _role = form.getWidgetPosition(self.editor)
        form.insertRow(row + 1, widget)

    def _file_row(self, form: QFormLayout, label: str, name: str, weight: str | None,
                  hint: str) -> tuple[SearchCombo, QPushButton, QDoubleSpinBox | None]:
        edit = SearchCombo(lambda: self._choices(name), hint)
        edit.set_path(getattr(self.state, name))
        getattr(self.state, f"{name}_changed").connect(edit.set_path)
        edit.path_chosen.connect(lambda path: setattr(self.state, name, path))
        button = QPushButton("…")
        button.setFixedWidth(32)
        button.setToolTip(f"Browse for a {label.lower()} file outside the library")
        button.clicked.connect(lambda: self._choose_file(name, label))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        spin = None
        if weight is not None:
            spin = QDoubleSpinBox(minimum=0.0, maximum=MAX_LORA_WEIGHT, singleStep=0.05, decimals=2)
            spin.setToolTip(f"{label} weight w (0–2): its gate on a step is w · γ · curve")
            bind_spin(self.state, weight, spin)
            row.addWidget(spin)
        form.addRow(label, row)
        return edit, button, spin

    def _preset_row(self) -> QHBoxLayout:
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(self.curves.presets())
        # Long preset names must not widen the whole settings column.
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.setMinimumContentsLength(12)
        self.preset_combo.setToolTip("Shipped curve presets (resources/curves)")
        self.preset_combo.activated.connect(
            lambda i: self.curves.load_preset(self.preset_combo.itemText(i)))
        self.edited_label = QLabel()
        self.edited_label.setObjectName("curvesEdited")
        self.revert_button = QToolButton(text="Revert")
        self.revert_button.setToolTip("Back to the preset, dropping your edits")
        self.revert_button.clicked.connect(self.curves.revert)
        self.undo_button = QToolButton(text="Undo")
        self.undo_button.clicked.connect(self.curves.undo)
        self.redo_button = QToolButton(text="Redo")
        self.redo_button.clicked.connect(self.curves.redo)
        self.curves.can_undo_changed.connect(self.undo_button.setEnabled)
        self.curves.can_redo_changed.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(self.curves.can_undo)
        self.redo_button.setEnabled(self.curves.can_redo)
        row = QHBoxLayout()
        row.addWidget(self.preset_combo, 1)
        for widget in (self.edited_label, self.revert_button):
            row.addWidget(widget)
        return row

    def _curve_row(self) -> QHBoxLayout:
        self.curve_buttons: dict[str, QRadioButton] = {}
        self.curve_group = QButtonGroup(self)
        row = QHBoxLayout()
        for role in CURVE_NAMES:
            button = QRadioButton(CURVE_LABELS[role])
            button.setStyleSheet(f"color: {COLORS[role].name()};")
            button.toggled.connect(lambda on, r=role: on and self.curves.select(r))
            self.curve_group.addButton(button)
            self.curve_buttons[role] = button
            row.addWidget(button)
        row.addStretch(1)
        self.interpolation_combo = QComboBox()
        for interpolation in Interpolation:
            self.interpolation_combo.addItem(interpolation.value, interpolation.value)
        self.interpolation_combo.setToolTip("How the active curve runs between its points")
        self.interpolation_combo.activated.connect(
            lambda i: self.curves.set_interpolation(self.interpolation_combo.itemData(i)))
        row.addWidget(self.interpolation_combo)
        return row

    def _refresh_curve_widgets(self, *_args: object) -> None:
        curves = self.curves
        index = self.preset_combo.findText(curves.preset) if curves.preset else -1
        self.preset_combo.setCurrentIndex(index)
        self.edited_label.setText("edited" if curves.edited and curves.preset else
                                  "custom" if curves.edited else "")
        self.revert_button.setEnabled(curves.edited and bool(curves.preset))
        self.curve_buttons[curves.active].setChecked(True)
        curve = curves.curve()
        self.interpolation_combo.setCurrentIndex(self.interpolation_combo.findData(
            curve.interpolation.value))
        self.curve_message.setStyleSheet("color: #c0392b;" if curves.error else "")
        self.curve_message.setText(curves.error or self._describe_point())

    def _describe_point(self) -> str:
        curves = self.curves
        if curves.selected < 0:
            return "Drag points, double-click to add, right-click or Delete to remove."
        x, y = curves.curve().points[curves.selected]
        unit = " × CFG strength" if curves.active == "guidance" and curves.curve().relative else ""
        return f"{CURVE_LABELS[curves.active]} point {curves.selected + 1}: x = {x:g}, y = {y:g}{unit}"

    def _show_mode(self, mode: str) -> None:
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def _choose_file(self, name: str, label: str) -> None:
        current = Path(getattr(self.state, name)) if getattr(self.state, name) else None
        start = str(current.parent) if current and current.parent.exists() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the {label.lower()}", start, SAFETENSORS)
        if path:
            setattr(self.state, name, path)
