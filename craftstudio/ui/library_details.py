"""`LibraryDetailsPanel`: everything about the selected library item, editable where it is ours.

Preview (large), title, file, size, short sha256 (copyable), family, role, trigger phrases, the
training metadata found in the file (summarised, with the caption tags as trigger hints), tags
(with completion), notes and rating. Edits go to `LibraryState` when a field is left (or Enter
is pressed), so every change lands in the catalog at once. The buttons forward to the state.
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from craftstudio.library.records import Item
from craftstudio.library.training_summary import summary, tag_hints
from craftstudio.state.library_model import KIND_LABELS, date_label, family_label, size_label
from craftstudio.state.library_state import LibraryState

PREVIEW_SIZE = 240
RATINGS = ["no rating", "★", "★★", "★★★", "★★★★", "★★★★★"]


class _NotesEdit(QPlainTextEdit):
    """Notes are saved when the field loses focus (not on every keystroke)."""

    left = Signal()

    def focusOutEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().focusOutEvent(event)
        self.left.emit()


class LibraryDetailsPanel(QScrollArea):
    preview_from_file = Signal()  # the page asks for a file name (a dialog is the page's business)
    show_in_folder = Signal()

    def __init__(self, state: LibraryState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.setWidget(body)
        layout = QVBoxLayout(body)

        self.empty = QLabel("Select a card to see its details.")
        self.empty.setObjectName("placeholderHint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)

        self.content = QWidget()
        layout.addWidget(self.content)
        layout.addStretch(1)
        inner = QVBoxLayout(self.content)
        inner.setContentsMargins(0, 0, 0, 0)
        self.preview = QLabel()
        self.preview.setObjectName("imageCanvas")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedHeight(PREVIEW_SIZE)
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        inner.addWidget(self.preview)
        inner.addLayout(self._build_uses())
        inner.addLayout(self._build_form())
        self.metadata = QLabel()
        self.metadata.setWordWrap(True)
        self.metadata.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.metadata.setTextFormat(Qt.TextFormat.RichText)
        inner.addWidget(self.metadata)
        inner.addLayout(self._build_actions())
        state.selected_changed.connect(self.show_item)
        state.tags_changed.connect(lambda tags: self._tag_words.setStringList(tags))
        self._tag_words.setStringList(state.tags)
        self.show_item(state.selected)
        # As wide as the buttons need: nothing may hide under the right edge (no sideways scrolling).
        self.content.setVisible(True)
        self.setMinimumWidth(body.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 4)
        self.content.setVisible(state.selected is not None)

    # ---------- building
    def _build_uses(self) -> QGridLayout:
        grid = QGridLayout()
        self.use_content = QPushButton("Use as content")
        self.use_content.setToolTip("Use as the content LoRA on the Generate page (trigger phrase with <c>)")
        self.use_style = QPushButton("Use as style")
        self.use_style.setToolTip("Use as the style LoRA on the Generate page (trigger phrase with <s>)")
        self.use_model = QPushButton("Use as base model")
        self.use_backbone = QPushButton("Use as backbone")
        self.use_content.clicked.connect(lambda: self.state.use_as("content"))
        self.use_style.clicked.connect(lambda: self.state.use_as("style"))
        self.use_model.clicked.connect(lambda: self.state.use_as("model"))
        self.use_backbone.clicked.connect(lambda: self.state.use_as("backbone"))
        grid.addWidget(self.use_content, 0, 0)
        grid.addWidget(self.use_style, 0, 1)
        grid.addWidget(self.use_model, 1, 0)
        grid.addWidget(self.use_backbone, 1, 1)
        return grid

    def _build_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.title = QLineEdit()
        self.title.editingFinished.connect(lambda: self._changed(self.title.text(), "title",
                                                                 self.state.set_title))
        form.addRow("Title", self.title)
        self.kind = QLabel()
        form.addRow("Kind", self.kind)
        self.role = QComboBox()
        for role in ("content", "style", "other"):
            self.role.addItem(role, role)
        self.role.activated.connect(lambda _i: self.state.set_role(self.role.currentData()))
        form.addRow("Role", self.role)
        self.triggers = QLineEdit()
        self.triggers.setPlaceholderText("comma-separated phrases")
        self.triggers.editingFinished.connect(
            lambda: self._changed(self.triggers.text(), "triggers", self.state.set_triggers))
        form.addRow("Triggers", self.triggers)
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("comma-separated tags")
        self._tag_words = QStringListModel(self)
        completer = QCompleter(self._tag_words, self.tags)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.tags.setCompleter(completer)
        self.tags.editingFinished.connect(lambda: self._changed(self.tags.text(), "tags", self.state.set_tags))
        form.addRow("Tags", self.tags)
        self.rating = QComboBox()
        for stars, label in enumerate(RATINGS):
            self.rating.addItem(label, stars)
        self.rating.activated.connect(lambda _i: self.state.set_rating(self.rating.currentData()))
        form.addRow("Rating", self.rating)
        self.notes = _NotesEdit()
        self.notes.setPlaceholderText("your notes (weights that work, prompts, sources)")
        self.notes.setFixedHeight(64)
        self.notes.left.connect(lambda: self._changed(self.notes.toPlainText(), "notes", self.state.set_notes))
        form.addRow("Notes", self.notes)
        self.path = QLabel()
        self.path.setWordWrap(True)
        self.path.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("File", self.path)
        self.size = QLabel()
        form.addRow("Size", self.size)
        hash_row = QHBoxLayout()
        self.sha = QLabel()
        self.sha.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_sha = QToolButton()
        self.copy_sha.setText("Copy")
        self.copy_sha.setToolTip("Copy the full sha256")
        self.copy_sha.clicked.connect(self._copy_hash)
        hash_row.addWidget(self.sha, 1)
        hash_row.addWidget(self.copy_sha)
        form.addRow("sha256", hash_row)
        self.dates = QLabel()
        self.dates.setWordWrap(True)
        form.addRow("Added", self.dates)
        return form

    def _build_actions(self) -> QGridLayout:
        grid = QGridLayout()
        self.set_preview = QPushButton("Preview from image…")
        self.set_preview.setToolTip("Set the preview from an image file")
        self.last_preview = QPushButton("Last generated")
        self.last_preview.setToolTip("Use the last image generated on the Generate page as the preview")
        self.make_preview = QPushButton("Make a preview")
        self.make_preview.setToolTip("Generate one picture with the current model and this item's trigger phrase")
        self.reveal = QPushButton("Show in folder")
        self.trash = QPushButton("Move to trash")
        self.set_preview.clicked.connect(self.preview_from_file)
        self.last_preview.clicked.connect(self.state.previews.use_last_generated)
        self.make_preview.clicked.connect(self.state.previews.make)
        self.reveal.clicked.connect(self.show_in_folder)
        self.trash.clicked.connect(self._trash_or_restore)
        self.state.previews.making_changed.connect(self._making)
        for n, button in enumerate((self.set_preview, self.last_preview, self.make_preview, self.reveal,
                                    self.trash)):
            grid.addWidget(button, n // 2, n % 2)
        return grid

    # ---------- showing
    def show_item(self, item: Item | None) -> None:
        self.empty.setVisible(item is None)
        self.content.setVisible(item is not None)
        if item is None:
            return
        self._item = item
        pixmap = QPixmap(item.preview) if item.preview else QPixmap()
        if pixmap.isNull():
            self.preview.setPixmap(QPixmap())
            self.preview.setText("No preview yet.\nSet one from an image, or make one.")
        else:
            self.preview.setPixmap(pixmap.scaled(PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        self.title.setText(item.title or item.name)
        self.kind.setText(f"{KIND_LABELS.get(item.kind, item.kind)} · {family_label(item.family)}"
                          + (f" · rank {item.rank}" if item.rank else "") + (f" · {item.format}" if item.format else ""))
        self.role.setCurrentIndex(max(0, self.role.findData(item.role)))
        self.role.setEnabled(item.kind == "lora")
        self.triggers.setText(", ".join(item.triggers))
        self.tags.setText(", ".join(item.tags))
        self.rating.setCurrentIndex(item.rating)
        if self.notes.toPlainText() != (item.notes or ""):
            self.notes.setPlainText(item.notes or "")
        self.path.setText(breakable(item.path) + ("  (missing)" if item.missing else ""))
        self.size.setText(size_label(item.size))
        self.sha.setText(item.short_id)
        self.dates.setText(f"{date_label(item.created_at)} · last used {date_label(item.last_used_at)}")
        self.metadata.setText(_metadata_html(item))
        lora = item.kind == "lora"
        self.use_content.setEnabled(lora)
        self.use_style.setEnabled(lora)
        self.use_model.setEnabled(item.kind == "model")
        self.use_backbone.setEnabled(item.kind == "backbone")
        self.make_preview.setEnabled(item.kind in ("lora", "model") and not self.state.previews.making)
        self.trash.setText("Restore" if item.trashed else "Move to trash")

    def _changed(self, text: str, field: str, apply) -> None:
        item = getattr(self, "_item", None)
        if item is None:
            return
        current = {"title": item.title or item.name, "triggers": ", ".join(item.triggers),
                   "tags": ", ".join(item.tags), "notes": item.notes or ""}[field]
        if text != current:
            apply(text)

    def _copy_hash(self) -> None:
        item = getattr(self, "_item", None)
        if item is not None:
            QGuiApplication.clipboard().setText(item.id)
            self.state.status = "sha256 copied."

    def _trash_or_restore(self) -> None:
        item = self.state.selected
        if item is not None and item.trashed:
            self.state.restore()
        else:
            self.state.trash()

    def _making(self, making: bool) -> None:
        self.make_preview.setEnabled(not making)
        self.make_preview.setText("Making…" if making else "Make a preview")


def _metadata_html(item: Item) -> str:
    rows = summary(item.meta)
    hints = tag_hints(item.meta)
    if not rows and not hints:
        return "<i>No training metadata in the file.</i>"
    html = ["<b>In the file</b>"]
    html.extend(f"<br><span style='opacity:0.7'>{_escape(label)}:</span> {_breakable(value)}" for label, value in rows)
    html.append("<br>")
    if hints:
        tags = ", ".join(f"{_escape(tag)} ({count})" for tag, count in hints)
        html.append(f"<br><b>Caption tags</b> (trigger hints): {tags}")
    return "".join(html)


def _breakable(text: str, run: int = 24) -> str:
    """Escaped, with break opportunities (zero-width spaces) after punctuation and inside long runs:
    hashes, JSON and paths have no spaces to wrap at, and one long word would widen the panel."""
    return _escape(breakable(text, run))


def breakable(text: str, run: int = 24) -> str:
    out: list[str] = []
    since = 0
    for char in text:
        out.append(char)
        since = 0 if char.isspace() else since + 1
        if char in ",/._:-\\" or since >= run:
            out.append("\u200b")
            since = 0
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
