"""Dropping a LoRA file on the Generate page's content or style field loads it there.

A card dragged from the Library page carries its file as a URL (so does a file manager), and
`GenerateState.use_lora` puts the LoRA's trigger phrase in the prompt with the field's marker,
exactly as the Library's "Use as content/style LoRA" does.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from craftstudio.state.generate_state import GenerateState

LORA_SUFFIX = ".safetensors"


def dropped_lora(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The first local `.safetensors` file a drag carries, or None."""
    for url in event.mimeData().urls():
        path = url.toLocalFile()
        if path.lower().endswith(LORA_SUFFIX):
            return path
    return None


class LoraDrop(QObject):
    """Event filter that makes `widgets` accept LoRA files for `role` ("content" or "style")."""

    def __init__(self, state: GenerateState, role: str, widgets: list[QWidget]) -> None:
        super().__init__(widgets[0])
        self.state, self.role = state, role
        for widget in widgets:
            widget.setAcceptDrops(True)
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if dropped_lora(event) is not None:
                event.acceptProposedAction()
                return True
        elif event.type() == QEvent.Type.Drop:
            path = dropped_lora(event)
            if path is not None:
                self.state.use_lora(path, self.role)
                event.acceptProposedAction()
                return True
        return False
