"""`DeviceProbe`: what this computer computes on, asked once of a worker job and shared by pages.

The Train page needs the accelerator and its memory (its memory preset) and the GPUs (to train on
several); the Settings page needs the GPUs (to split a batch over them). Whichever page is shown
first calls `detect()`, which submits `DeviceProbeJob` to the shared runner: the job imports torch,
so it runs on the worker thread and never at start-up. The answer is kept (`info`) and announced
(`detected`) to every state that listens, so the other page needs no second probe. Where no GPU
driver is installed (`may_have_accelerator`), the answer is "CPU" at once, without torch. A probe
that failed is asked again by the next `detect()`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.train_job import CPU_ONLY, DeviceInfo, DeviceProbeJob, may_have_accelerator


class DeviceProbe(QObject):
    detected = Signal(object)  # DeviceInfo
    failed = Signal(str)  # why the probe job failed

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._job_id: int | None = None
        self.info: DeviceInfo | None = None
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    @property
    def checking(self) -> bool:
        """Whether the probe job is queued or running."""
        return self._job_id is not None

    def detect(self) -> bool:
        """Ask once (later calls do nothing); True while the answer is awaited."""
        if self.info is None and self._job_id is None:
            if may_have_accelerator():
                self._job_id = self._runner.submit(DeviceProbeJob())
            else:
                self.found(CPU_ONLY)
        return self.checking

    def found(self, info: DeviceInfo) -> None:
        """Keep and announce an answer (the probe job's; tests and screenshots give their own)."""
        self.info = info
        self.detected.emit(info)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: Any) -> None:
        if job_id == self._job_id:
            self._job_id = None
            self.found(result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._job_id:
            self._job_id = None
            self.failed.emit(message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job_id:
            self._job_id = None
