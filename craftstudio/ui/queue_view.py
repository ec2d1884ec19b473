"""`QueueView`: the job queue — what runs (with its step preview), what waits, what ended.

Every job on the shared runner appears (generations, compare runs, training); waiting jobs can
be moved up and down, any job cancelled or queued again. Bound to `QueueState`.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from craftstudio.state.queue_state import JOB_ID_ROLE, PROGRESS_ROLE, STATUS_ROLE, QueueState
from craftstudio.ui.image_view import to_qimage

STATUS_COLORS = {"pending": "#8e9aaf", "running": "#2e86de", "done": "#27ae60", "failed": "#c0392b",
                 "cancelled": "#a0a0a0"}
PREVIEW_SIDE = 96


class _StatusDelegate(QStyledItemDelegate):
    """The row's text, with a coloured status bar on the left and the running job's progress."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        super().paint(painter, option, index)
        status = index.data(STATUS_ROLE)
        rect = option.rect
        painter.save()
        painter.fillRect(rect.left(), rect.top() + 2, 4, rect.height() - 4, QColor(STATUS_COLORS.get(status, "#888")))
        if status == "running":
            done = float(index.data(PROGRESS_ROLE) or 0.0)
            painter.fillRect(rect.left() + 6, rect.bottom() - 2, round((rect.width() - 8) * done), 2,
                             QColor(STATUS_COLORS["running"]))
        painter.restore()

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:  # noqa: N802 (Qt API)
        super().initStyleOption(option, index)
        option.rect.adjust(8, 0, 0, 0)


class QueueView(QWidget):
    def __init__(self, state: QueueState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.list = QListView()
        self.list.setModel(state.model)
        self.list.setItemDelegate(_StatusDelegate(self.list))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAlternatingRowColors(True)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setObjectName("imageCanvas")
        self.running_label = QLabel()
        self.running_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.preview)
        top.addWidget(self.running_label, 1)

        self.cancel_button = QPushButton("Cancel")
        self.up_button = QPushButton("Up")
        self.up_button.setToolTip("Run this waiting job earlier")
        self.down_button = QPushButton("Down")
        self.down_button.setToolTip("Run this waiting job later")
        self.duplicate_button = QPushButton("Again")
        self.duplicate_button.setToolTip("Queue this job once more")
        self.clear_button = QPushButton("Clear finished")
        self.cancel_button.clicked.connect(lambda: self._with_selected(state.cancel))
        self.up_button.clicked.connect(lambda: self._with_selected(lambda j: state.move_by(j, -1)))
        self.down_button.clicked.connect(lambda: self._with_selected(lambda j: state.move_by(j, +1)))
        self.duplicate_button.clicked.connect(lambda: self._with_selected(state.duplicate))
        self.clear_button.clicked.connect(state.clear_finished)
        buttons = QHBoxLayout()
        for button in (self.cancel_button, self.up_button, self.down_button, self.duplicate_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        state.preview_changed.connect(self._show_preview)
        state.running_label_changed.connect(self._show_running)
        state.pending_count_changed.connect(lambda _n: self._show_running(state.running_label))
        state.model.modelReset.connect(self._update_buttons)
        self.list.selectionModel().selectionChanged.connect(self._update_buttons)
        self._show_running(state.running_label)
        self._update_buttons()

    def selected_job(self) -> int | None:
        index = self.list.currentIndex()
        rows = self.list.selectionModel().selectedRows()
        return rows[0].data(JOB_ID_ROLE) if rows else (index.data(JOB_ID_ROLE) if index.isValid() else None)

    def select_job(self, job_id: int) -> None:
        row = self.state.model.row_of(job_id)
        if row >= 0:
            self.list.setCurrentIndex(self.state.model.index(row))

    def _with_selected(self, action) -> None:
        job_id = self.selected_job()
        if job_id is not None:
            action(job_id)
            self.select_job(job_id)

    def _show_preview(self, image) -> None:
        if image is None:
            self.preview.clear()
            return
        pixmap = QPixmap.fromImage(to_qimage(image))
        self.preview.setPixmap(pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation))

    def _show_running(self, label: str) -> None:
        waiting = self.state.pending_count
        text = f"Running: {label}" if label else "Nothing is running."
        if waiting:
            text += f"\n{waiting} waiting."
        self.running_label.setText(text)

    def _update_buttons(self, *_args: object) -> None:
        job_id = self.selected_job()
        status = self.state.status_of(job_id) if job_id is not None else None
        self.cancel_button.setEnabled(status in ("pending", "running"))
        self.up_button.setEnabled(status == "pending")
        self.down_button.setEnabled(status == "pending")
        self.duplicate_button.setEnabled(status is not None)
        self._show_running(self.state.running_label)
