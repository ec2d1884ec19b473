"""`QueueState`: the job queue as the window shows it (pending, running, done, failed).

A `QAbstractListModel` over `JobRunner.jobs`, so every job with a `label` (and a `kind`)
appears, whoever submitted it: generations, compare runs, training runs of the Train page. The
running job's progress and latest step preview are kept here for the queue view. Cancel,
move (pending only) and duplicate go straight to the runner.

Closing the window: `has_unfinished` says whether jobs are waiting or running and
`close_question()` the sentence to ask; `confirm_close` is the hook the window's close event
calls (a callable returning True to close, set by the ui, e.g. a message box; None = close).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot

from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.state.properties import ObservableObject, Property, same_object
from craftstudio.workers.job_runner import PENDING, RUNNING, JobInfo, JobRunner

JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2
KIND_ROLE = Qt.ItemDataRole.UserRole + 3
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 4
STATUS_WORDS = {"pending": "waiting", "running": "running", "done": "done", "failed": "failed",
                "cancelled": "cancelled"}

_Index = QModelIndex | QPersistentModelIndex


class QueueModel(QAbstractListModel):
    """One row per job, in `JobRunner.jobs` order (finished, running, then pending)."""

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._jobs: list[JobInfo] = runner.jobs
        self.progress: dict[int, float] = {}

    def refresh(self) -> None:
        self.beginResetModel()
        self._jobs = self._runner.jobs
        self.endResetModel()

    def job(self, row: int) -> JobInfo:
        return self._jobs[row]

    def row_of(self, job_id: int) -> int:
        return next((i for i, info in enumerate(self._jobs) if info.job_id == job_id), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        return 0 if parent.isValid() else len(self._jobs)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._jobs):
            return None
        info = self._jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = f"{info.label} — {STATUS_WORDS.get(info.status, info.status)}"
            if info.status == RUNNING and info.job_id in self.progress:
                text += f" {self.progress[info.job_id]:.0%}"
            return text
        if role == Qt.ItemDataRole.ToolTipRole:
            return info.message or f"{info.kind}: {info.label}"
        if role == JOB_ID_ROLE:
            return info.job_id
        if role == STATUS_ROLE:
            return info.status
        if role == KIND_ROLE:
            return info.kind
        if role == PROGRESS_ROLE:
            return self.progress.get(info.job_id, 0.0)
        return None


class QueueState(ObservableObject):
    running_label = Property("")  # what runs now, "" when idle
    running_label_changed = Signal(str)
    preview = Property(None, equal=same_object)  # the running job's latest step preview (PIL)
    preview_changed = Signal(object)
    pending_count = Property(0)
    pending_count_changed = Signal(int)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.model = QueueModel(runner, self)
        self.confirm_close: Callable[[str], bool] | None = None
        runner.jobs_changed.connect(self._refresh)
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        self._refresh()

    # --- queries -------------------------------------------------------------------------------
    @property
    def jobs(self) -> list[JobInfo]:
        return self.runner.jobs

    def status_of(self, job_id: int) -> str | None:
        info = self.runner.info(job_id)
        return info.status if info else None

    @property
    def has_unfinished(self) -> bool:
        return any(not info.is_finished for info in self.runner.jobs)

    def close_question(self) -> str:
        """What to ask before closing with jobs left, "" when there are none (or when the runner
        is already shut down: its jobs are cancelled, whatever signal is still on its way)."""
        if self.runner.is_shut_down:
            return ""
        jobs = self.runner.jobs
        running = [i for i in jobs if i.status == RUNNING]
        pending = [i for i in jobs if i.status == PENDING]
        if not running and not pending:
            return ""
        parts = []
        if running:
            parts.append(f"“{running[0].label}” is running")
        if pending:
            parts.append(f"{len(pending)} job{'s' if len(pending) != 1 else ''} {'are' if len(pending) != 1 else 'is'} "
                         "waiting")
        return f"{' and '.join(parts)}. Close CraftStudio and cancel them?"

    def may_close(self) -> bool:
        """True when the window may close: nothing unfinished, or the user confirmed."""
        question = self.close_question()
        if not question or self.confirm_close is None:
            return True
        return bool(self.confirm_close(question))

    # --- actions -------------------------------------------------------------------------------
    def cancel(self, job_id: int) -> bool:
        return self.runner.cancel(job_id)

    def move(self, job_id: int, index: int) -> bool:
        """Move a pending job to `index` among the pending jobs (0 = runs next)."""
        return self.runner.move(job_id, index)

    def move_by(self, job_id: int, delta: int) -> bool:
        """Move a pending job `delta` places earlier (negative) or later among the pending."""
        pending = self.runner.pending
        if job_id not in pending:
            return False
        return self.move(job_id, max(0, pending.index(job_id) + delta))

    def duplicate(self, job_id: int) -> int | None:
        return self.runner.duplicate(job_id)

    def clear_finished(self) -> None:
        self.runner.clear_finished()

    # --- runner signals ------------------------------------------------------------------------
    @Slot()
    def _refresh(self) -> None:
        self.model.refresh()
        jobs = self.runner.jobs
        running = next((i for i in jobs if i.status == RUNNING), None)
        self.pending_count = sum(1 for i in jobs if i.status == PENDING)
        self.running_label = running.label if running else ""
        if running is None:
            self.preview = None

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if event.stage in ("denoise", "train", "cell"):
            count = max(event.image_count, 1)
            self.model.progress[job_id] = min(1.0, (event.image_index + event.fraction) / count)
            row = self.model.row_of(job_id)
            if row >= 0:
                index = self.model.index(row)
                self.model.dataChanged.emit(index, index)

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: PreviewEvent) -> None:
        self.preview = event.image
