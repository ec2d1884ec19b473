"""`JobRunner`: one worker QThread running jobs from a FIFO queue, reporting through signals.

A job is any object with ``run(progress, cancel) -> result``: `progress` takes the engine's
`ProgressEvent` / `PreviewEvent`, `cancel` is the job's `CancelToken`. The runner turns what
happens into signals, always emitted on the runner's (GUI) thread:

- ``started(job_id)``
- ``progress(job_id, ProgressEvent)`` and ``preview(job_id, PreviewEvent)`` (the event carries the
  PIL image and its step; ui converts it, so no image type crosses into this layer)
- exactly one of ``finished(job_id, result)``, ``failed(job_id, message)``, ``cancelled(job_id)``

Every job also has a `JobInfo` (label, kind, status) in `jobs`, in the order they will run or
ran; ``jobs_changed()`` fires whenever that list changes. A job's `label` and `kind` attributes
name it in the queue (any job type: generations, compare runs, training), its class name
otherwise. Pending jobs can be moved (`move`) and any job can be queued again (`duplicate`:
the job's own `duplicate()` when it has one, else a shallow copy).

Why a queue and one thread: the engine keeps one model in memory and a GPU runs one generation
at a time; a second thread would only fight over the device. Why re-emit on the GUI thread:
the worker thread emits private signals that Qt queues to this object; receivers then never run
on the worker thread, whatever kind of callable they connected (PySide runs plain functions
connected to a cross-thread signal on the emitting thread).
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import PreviewEvent, ProgressCallback

log = logging.getLogger(__name__)

_MAX_MESSAGE = 300  # an unexpected exception's text can be huge (tensor reprs); the log has it all


class Job(Protocol):
    def run(self, progress: ProgressCallback, cancel: CancelToken) -> Any: ...


PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
STATUSES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)


@dataclass
class JobInfo:
    """What the queue shows of one job. `message` is the failure's text for failed jobs."""

    job_id: int
    label: str
    kind: str
    status: str = PENDING
    message: str = ""
    job: Any = None

    @property
    def is_finished(self) -> bool:
        return self.status in (DONE, FAILED, CANCELLED)


def describe(job: Any) -> tuple[str, str]:
    """(label, kind) of a job for the queue."""
    label = getattr(job, "label", "") or type(job).__name__
    kind = getattr(job, "kind", "") or "job"
    return str(label), str(kind)


@dataclass
class _Entry:
    job_id: int
    job: Job
    token: CancelToken = field(default_factory=CancelToken)


class _JobQueue:
    """Thread-safe FIFO shared by the GUI thread (submit, cancel) and the worker (take)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: deque[_Entry] = deque()
        self.current: _Entry | None = None
        self.closed = False

    def put(self, entry: _Entry) -> None:
        with self._cond:
            if self.closed:
                raise RuntimeError("the job runner is shut down")
            self._pending.append(entry)
            self._cond.notify()

    def take(self) -> _Entry | None:
        """Block until a job is pending (it becomes `current`) or the queue closes (None)."""
        with self._cond:
            self.current = None
            while not self._pending and not self.closed:
                self._cond.wait()
            if self.closed:
                return None
            self.current = self._pending.popleft()
            return self.current

    def cancel(self, job_id: int) -> tuple[bool, bool]:
        """(dropped from the queue, cancelled while running)."""
        with self._cond:
            for entry in self._pending:
                if entry.job_id == job_id:
                    self._pending.remove(entry)
                    return True, False
            if self.current is not None and self.current.job_id == job_id:
                self.current.token.cancel()
                return False, True
            return False, False

    def move(self, job_id: int, index: int) -> bool:
        """Put a pending job at position `index` of the pending jobs; False if not pending."""
        with self._cond:
            for entry in self._pending:
                if entry.job_id == job_id:
                    self._pending.remove(entry)
                    self._pending.insert(max(0, min(index, len(self._pending))), entry)
                    return True
            return False

    def close(self) -> list[_Entry]:
        """Refuse new jobs, cancel the running one; return the pending ones (dropped)."""
        with self._cond:
            self.closed = True
            dropped = list(self._pending)
            self._pending.clear()
            if self.current is not None:
                self.current.token.cancel()
            self._cond.notify_all()
            return dropped

    @property
    def pending_ids(self) -> list[int]:
        with self._cond:
            return [e.job_id for e in self._pending]


class _WorkerThread(QThread):
    """Runs jobs one after another. Its signals are emitted on the worker thread; the runner
    (living on the GUI thread) receives them queued, in emission order."""

    job_started = Signal(int)
    job_progress = Signal(int, object)
    job_preview = Signal(int, object)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)

    def __init__(self, queue: _JobQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self.setObjectName("craftstudio-jobs")

    def run(self) -> None:
        while (entry := self._queue.take()) is not None:
            self._run_one(entry)

    def _run_one(self, entry: _Entry) -> None:
        job_id = entry.job_id

        def progress(event: Any) -> None:
            if isinstance(event, PreviewEvent):
                self.job_preview.emit(job_id, event)
            else:
                self.job_progress.emit(job_id, event)

        if entry.token.cancelled:  # cancelled between take() and here
            self.job_cancelled.emit(job_id)
            return
        self.job_started.emit(job_id)
        try:
            result = entry.job.run(progress, entry.token)
        except Cancelled:
            self.job_cancelled.emit(job_id)
        except UserError as exc:
            self.job_failed.emit(job_id, str(exc))
        except Exception as exc:  # a bug: report it briefly, keep the traceback in the log
            log.exception("job %d (%s) failed unexpectedly", job_id, type(entry.job).__name__)
            text = str(exc) or type(exc).__name__
            if len(text) > _MAX_MESSAGE:
                text = text[:_MAX_MESSAGE] + "…"
            self.job_failed.emit(job_id, f"Unexpected error: {text}; details in the log.")
        else:
            self.job_finished.emit(job_id, result)


class JobRunner(QObject):
    """Runs submitted jobs one at a time, first in first out, on one worker thread.

    The thread starts with the first job. Call `shutdown()` before the application exits: it
    cancels everything and joins the thread (a QThread destroyed while running aborts the app).
    """

    started = Signal(int)
    progress = Signal(int, object)
    preview = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    jobs_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = _JobQueue()
        self._ids = itertools.count(1)
        self._thread = _WorkerThread(self._queue, self)
        self._thread.job_started.connect(self._on_started)
        self._thread.job_progress.connect(self._on_progress)
        self._thread.job_preview.connect(self._on_preview)
        self._thread.job_finished.connect(self._on_finished)
        self._thread.job_failed.connect(self._on_failed)
        self._thread.job_cancelled.connect(self._on_cancelled)
        self._active: set[int] = set()  # submitted and not yet reported as done
        self._infos: dict[int, JobInfo] = {}  # every job since start (or `clear_finished`)

    def submit(self, job: Job) -> int:
        """Queue `job`; returns its id. Raises RuntimeError after `shutdown()`."""
        job_id = next(self._ids)
        self._queue.put(_Entry(job_id, job))
        self._active.add(job_id)
        label, kind = describe(job)
        self._infos[job_id] = JobInfo(job_id, label, kind, job=job)
        if not self._thread.isRunning():
            self._thread.start()
        self.jobs_changed.emit()
        return job_id

    @property
    def jobs(self) -> list[JobInfo]:
        """Every job: finished ones in submission order, the running one, then the pending
        ones in the order they will run."""
        pending = self._queue.pending_ids
        order = {job_id: i for i, job_id in enumerate(pending)}
        infos = list(self._infos.values())
        # Pending jobs sort after the rest, by queue position.
        return sorted(infos, key=lambda info: (info.job_id in order, order.get(info.job_id, info.job_id)))

    def info(self, job_id: int) -> JobInfo | None:
        return self._infos.get(job_id)

    def move(self, job_id: int, index: int) -> bool:
        """Move a pending job to position `index` among the pending jobs (0 = runs next)."""
        moved = self._queue.move(job_id, index)
        if moved:
            self.jobs_changed.emit()
        return moved

    def duplicate(self, job_id: int) -> int | None:
        """Queue a copy of a job (pending, running or finished); the new id, or None."""
        info = self._infos.get(job_id)
        if info is None or info.job is None:
            return None
        job = info.job.duplicate() if hasattr(info.job, "duplicate") else copy.copy(info.job)
        return self.submit(job)

    def clear_finished(self) -> None:
        """Forget finished jobs (they leave the queue's list)."""
        before = len(self._infos)
        self._infos = {k: v for k, v in self._infos.items() if not v.is_finished}
        if len(self._infos) != before:
            self.jobs_changed.emit()

    def cancel(self, job_id: int) -> bool:
        """Drop a queued job (``cancelled`` at once) or ask a running one to stop (``cancelled``
        when it reaches its next check). False if the job is unknown or already done."""
        dropped, running = self._queue.cancel(job_id)
        if dropped:
            self._report_cancelled(job_id)
        return dropped or running

    @property
    def pending(self) -> list[int]:
        """Ids of jobs waiting to run, in order."""
        return self._queue.pending_ids

    @property
    def is_busy(self) -> bool:
        return bool(self._active)

    @property
    def is_shut_down(self) -> bool:
        return self._queue.closed

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel every job and wait for the worker thread to end. Safe to call twice.

        The running job stops at its next cancel check; a step that cannot be interrupted
        (loading a model) is waited for. Returns False if `timeout_ms` passed first."""
        for entry in self._queue.close():
            self._report_cancelled(entry.job_id)
        if not self._thread.isRunning():
            return True
        done = self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)
        if not done:
            log.warning("the job thread did not stop within %d ms", timeout_ms)
        return bool(done)

    def _set_status(self, job_id: int, status: str, message: str = "") -> None:
        info = self._infos.get(job_id)
        if info is not None:
            info.status, info.message = status, message
            self.jobs_changed.emit()

    def _report_cancelled(self, job_id: int) -> None:
        self._active.discard(job_id)
        self._set_status(job_id, CANCELLED)
        self.cancelled.emit(job_id)

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self._set_status(job_id, RUNNING)
        self.started.emit(job_id)

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: object) -> None:
        self.progress.emit(job_id, event)

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: object) -> None:
        self.preview.emit(job_id, event)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        self._active.discard(job_id)
        self._set_status(job_id, DONE)
        self.finished.emit(job_id, result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._active.discard(job_id)
        self._set_status(job_id, FAILED, message)
        self.failed.emit(job_id, message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        self._report_cancelled(job_id)
