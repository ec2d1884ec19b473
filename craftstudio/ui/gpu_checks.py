"""`GpuChecks`: one check box per GPU of a `GpuSelection`, two to a line, with a note under them.

The Train page (GPUs a run trains on) and the Settings page (GPUs a batch is split over) both
show one; the page decides when the row is visible (only with several GPUs) and what the note
says."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from craftstudio.state.gpu_selection import GpuSelection


class GpuChecks(QWidget):
    def __init__(self, selection: GpuSelection, label: Callable[[int, str], str], tip: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.selection = selection
        self._label, self._tip = label, tip
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._grid)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        column.addWidget(self.note)
        self.boxes: list[QCheckBox] = []

    def rebuild(self) -> None:
        """One box per GPU the selection lists now (the list arrives after the device probe)."""
        for box in self.boxes:
            self._grid.removeWidget(box)
            box.deleteLater()
        self.boxes = []
        for number, name in enumerate(self.selection.available):
            box = QCheckBox(self._label(number, name))
            box.setToolTip(self._tip)
            box.toggled.connect(lambda on, n=number: self.selection.use(n, on))
            self._grid.addWidget(box, number // 2, number % 2)
            self.boxes.append(box)

    def show_choice(self, note: str, enabled: bool = True) -> None:
        """Tick the chosen GPUs (without echoing the ticks back) and show `note`."""
        for number, box in enumerate(self.boxes):
            box.blockSignals(True)
            box.setChecked(self.selection.is_used(number))
            box.blockSignals(False)
            box.setEnabled(enabled)
        self.note.setText(note)
