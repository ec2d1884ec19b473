"""Tools › Merge two LoRAs (ZipLoRA)…: a non-modal dialog bound to `MergeState`.

The two LoRAs come from the Generate page (pickers search the library), with their training
prompts and, optionally, folders of their reference pictures; Merge runs the job on the shared
runner (it also shows in the queue), the bar shows the steps and the loss, Cancel stops it, and
*Use it* loads the merged LoRA on the Generate page.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.merge_state import MergeState
from craftstudio.ui.bindings import bind_line_edit, bind_spin
from craftstudio.ui.search_combo import SearchCombo

ERROR_STYLE = "color: #e74c3c;"
_PROGRESS_RANGE = 1000


class MergeDialog(QDialog):
    def __init__(self, state: MergeState, choices, parent: QWidget | None = None) -> None:
        """`choices(field)`: picker entries (the Generate state's `choices`)."""
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Merge two LoRAs (ZipLoRA)")
        self.setMinimumWidth(560)
        intro = QLabel("ZipLoRA learns how much of each LoRA every layer keeps, so that the merged LoRA "
                       "draws the subject like the content LoRA and the look like the style LoRA. "
                       "About 100 steps; the result is one ordinary LoRA file.")
        intro.setWordWrap(True)
        self.content_edit = SearchCombo(lambda: choices("content_lora"), "The content (subject) LoRA")
        self.style_edit = SearchCombo(lambda: choices("style_lora"), "The style LoRA")
        self.content_prompt_edit = QLineEdit()
        self.content_prompt_edit.setPlaceholderText("its training prompt, e.g. a photo of sks dog")
        self.style_prompt_edit = QLineEdit()
        self.style_prompt_edit.setPlaceholderText("its training prompt, e.g. an image in ohwx style")
        self.content_images_edit, content_row = self._folder_row("content")
        self.style_images_edit, style_row = self._folder_row("style")
        self.steps_spin = QSpinBox(minimum=1, maximum=100_000)
        self.out_edit = QLineEdit()
        form = QFormLayout()
        form.addRow("Content LoRA", self.content_edit)
        form.addRow("Its prompt", self.content_prompt_edit)
        form.addRow("Its pictures", content_row)
        form.addRow("Style LoRA", self.style_edit)
        form.addRow("Its prompt", self.style_prompt_edit)
        form.addRow("Its pictures", style_row)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Save as", self.out_edit)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _PROGRESS_RANGE)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.merge_button = QPushButton("Merge")
        self.merge_button.setDefault(True)
        self.merge_button.clicked.connect(state.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(state.cancel)
        self.use_button = QPushButton("Use it on Generate")
        self.use_button.clicked.connect(state.use_result)
        close = QPushButton("Close")
        close.clicked.connect(self.hide)
        buttons = QHBoxLayout()
        buttons.addWidget(self.merge_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)
        self._bind()

    def _folder_row(self, role: str) -> tuple[QLineEdit, QHBoxLayout]:
        edit = QLineEdit()
        edit.setPlaceholderText("optional: a folder of its reference pictures (else it draws its own)")
        browse = QToolButton(text="…")
        browse.setToolTip(f"Choose the folder of the {role} LoRA's reference pictures")
        browse.clicked.connect(lambda: self._choose_folder(edit, role))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        return edit, row

    def _choose_folder(self, edit: QLineEdit, role: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"The {role} LoRA's reference pictures",
                                                  edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    def _bind(self) -> None:
        s = self.state
        for role, combo in (("content", self.content_edit), ("style", self.style_edit)):
            combo.set_path(getattr(s, f"{role}_lora"))
            getattr(s, f"{role}_lora_changed").connect(combo.set_path)
            combo.path_chosen.connect(lambda path, r=role: self._lora_chosen(r, path))
        bind_line_edit(s, "content_prompt", self.content_prompt_edit)
        bind_line_edit(s, "style_prompt", self.style_prompt_edit)
        bind_line_edit(s, "content_images", self.content_images_edit)
        bind_line_edit(s, "style_images", self.style_images_edit)
        bind_line_edit(s, "out", self.out_edit)
        bind_spin(s, "steps", self.steps_spin)
        s.progress_changed.connect(lambda f: self.progress_bar.setValue(round(f * _PROGRESS_RANGE)))
        s.status_changed.connect(self.status_label.setText)
        s.error_changed.connect(self._show_error)
        for signal in (s.is_busy_changed, s.result_changed):
            signal.connect(self._update_buttons)
        self._show_error(s.error)
        self._update_buttons()

    def _lora_chosen(self, role: str, path: str) -> None:
        setattr(self.state, f"{role}_lora", path)
        self.state.out = self.state.default_out()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _update_buttons(self, *_args: object) -> None:
        busy = self.state.is_busy
        self.merge_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.use_button.setEnabled(bool(self.state.result) and not busy)

    def open_for_generate(self) -> None:
        """Show the dialog filled from the Generate page (unless a merge is running)."""
        if not self.state.is_busy:
            self.state.fill_from_generate()
        self.show()
        self.raise_()
        self.activateWindow()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
