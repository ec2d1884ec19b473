"""How `GenerateState` follows its jobs on the shared runner: which job is its own, the progress
bar and its text, step previews, the finished images (recorded in the history), failures and
cancels. A mixin: it reads and sets `GenerateState`'s properties and job lists, and keeps that
module to the settings and requests.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.state.feedback_text import step_text
from craftstudio.workers.generate_job import GenerateOutput

log = logging.getLogger(__name__)

_STAGES = {"load": "Loading model", "encode": "Encoding prompt", "decode": "Decoding",
           "save": "Saving"}


class FollowsGenerateJobs:
    """Runner slots of `GenerateState` (connected in its constructor)."""

    def _mine(self, job_id: int) -> bool:
        return job_id == self._job_id

    def _done(self, job_id: int) -> None:
        if job_id in self._jobs:
            self._jobs.remove(job_id)
        if job_id == self._job_id:
            self._job_id = None
            self.progress_busy = False
        self.is_busy = bool(self._jobs)

    def _record(self, output: GenerateOutput) -> None:
        if self._history is None or not output.paths:
            return
        result = output.result
        try:
            record_id = self._history.add_generation(
                result.request, [str(p) for p in output.paths], seed=result.seeds[0] if result.seeds else None,
                timings={"total": result.seconds}, record=result.details)
        except UserError as exc:  # the images are saved; only the gallery entry is missing
            log.warning("generation not recorded in the history: %s", exc)
            return
        self.generation_recorded.emit(record_id)

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        if job_id in self._jobs:
            self._job_id = job_id
            self.progress = 0.0
            self.preview = None
            self._rate_start, self._pass_label = None, ""
            info = self._runner.info(job_id)
            request = getattr(getattr(info, "job", None), "request", None)
            # A hires request runs two passes: the bar gives each half of its length.
            self._passes = 2 if request is not None and request.hires_factor != 1.0 else 1
            self.progress_busy = True
            self.progress_text = "Starting…"

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if not self._mine(job_id):
            return
        count = max(event.image_count, 1)
        if event.stage == "denoise":
            done_passes = 1 if self._passes == 2 and event.message == "hires pass" else 0
            self.progress = min(1.0, (done_passes + (event.image_index + event.fraction) / count) / self._passes)
            self.progress_busy = False
            if event.message != self._pass_label:  # a new pass (hires): its speed counts afresh
                self._pass_label, self._rate_start = event.message, None
            if self._rate_start is None:  # speed counts from the first step: loading does not skew it
                self._rate_start = (self._clock(), event.image_index * event.total + event.step)
            self.progress_text = step_text(event, count, self._rate_start, self._clock())
        else:
            # Loading and decoding have no steps to count: a busy bar with what is happening.
            self.progress_busy = event.stage != "save"
            text = event.message or _STAGES.get(event.stage, event.stage)
            self.progress_text = text[:1].upper() + text[1:] + "…"

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: PreviewEvent) -> None:
        if self._mine(job_id):
            self.preview = event.image

    @Slot(int, object)
    def _on_finished(self, job_id: int, output: Any) -> None:
        if job_id not in self._jobs:
            return
        assert isinstance(output, GenerateOutput)
        self._record(output)
        self.progress = 1.0
        self.images = list(output.images)
        self.image_paths = list(output.paths)
        self.preview = None
        folder = output.paths[0].parent if output.paths else ""
        seconds = output.result.seconds
        count = len(output.paths)
        split = output.result.details.get("devices") or ()
        every_gpu = all(str(part.get("device", "")).startswith("cuda") for part in split)
        where = f" on {len(split)} {'GPUs' if every_gpu else 'devices'}" if len(split) > 1 else ""
        self.status = f"{count} image{'s' if count != 1 else ''} in {seconds:.1f} s{where}, saved to {folder}"
        self.progress_text = f"Done in {seconds:.1f} s"
        self._done(job_id)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id in self._jobs:
            self._set_error(message)
            self.progress = 0.0
            self.progress_text = ""
            self._done(job_id)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id not in self._jobs:
            return
        if self._mine(job_id) or self._job_id is None:
            # The noisy preview goes: the view shows the previous result again.
            self.status = "Cancelled." + (" Showing the previous result." if self.images else "")
            self.progress = 0.0
            self.progress_text = ""
            self.preview = None
        self._done(job_id)
