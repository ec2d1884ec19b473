"""`MergeState`: the ZipLoRA merge dialog's view-model (Tools › Merge two LoRAs).

It starts from what the Generate page holds (the model and its content and style LoRAs, their
trigger phrases in the default captions), names the output after the two LoRAs in the LoRAs
folder, and runs a `MergeJob` on the shared runner, so the merge shows in the queue beside
generations and trainings. The finished file is announced (`merged`) for the library to add, and
`use_result()` loads it on the Generate page as a single LoRA.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from craftstudio.domain.errors import UserError
from craftstudio.domain.merging import DEFAULT_STEPS, ZipLoraRequest
from craftstudio.domain.progress import ProgressEvent
from craftstudio.domain.training import DEFAULT_CAPTIONS
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.properties import ObservableObject, Property
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.merge_job import MergeFn, MergeJob


class MergeState(ObservableObject):
    content_lora = Property("")
    content_lora_changed = Signal(str)
    style_lora = Property("")
    style_lora_changed = Signal(str)
    content_prompt = Property("")
    content_prompt_changed = Signal(str)
    style_prompt = Property("")
    style_prompt_changed = Signal(str)
    content_images = Property("")  # a folder of the content LoRA's references; "" = it draws its own
    content_images_changed = Signal(str)
    style_images = Property("")
    style_images_changed = Signal(str)
    steps = Property(DEFAULT_STEPS)
    steps_changed = Signal(int)
    out = Property("")
    out_changed = Signal(str)
    is_busy = Property(False)
    is_busy_changed = Signal(bool)
    progress = Property(0.0)
    progress_changed = Signal(float)
    status = Property("")
    status_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)
    result = Property("")  # the merged file of the last finished merge
    result_changed = Signal(str)
    merged = Signal(str)  # a merge wrote this file

    def __init__(self, runner: JobRunner, generate: GenerateState, *, folder: Callable[[], str] | None = None,
                 engine: MergeFn | None = None, parent: QObject | None = None) -> None:
        """`folder()`: where merged LoRAs go by default (the Settings page's LoRAs folder)."""
        super().__init__(parent)
        self._runner = runner
        self._generate = generate
        self._folder = folder
        self._engine = engine
        self._job_id: int | None = None
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    def fill_from_generate(self) -> None:
        """The Generate page's LoRAs, their trigger phrases in the default captions, an output name."""
        craft = self._generate.craft
        self.content_lora, self.style_lora = craft.content_lora.strip(), craft.style_lora.strip()
        for role in ("content", "style"):
            lora = getattr(self, f"{role}_lora")
            trigger = next(iter(self._generate.library.triggers(lora)), "") if lora else ""
            setattr(self, f"{role}_prompt", DEFAULT_CAPTIONS[role].format(trigger=trigger) if trigger else "")
        self.out = self.default_out()
        self.error = ""

    def default_out(self) -> str:
        if not self.content_lora or not self.style_lora:
            return ""
        folder = (self._folder() if self._folder else "") or Path(self.content_lora).parent
        name = f"{Path(self.content_lora).stem} + {Path(self.style_lora).stem} (ZipLoRA).safetensors"
        return str(Path(folder) / name)

    def request(self) -> ZipLoraRequest:
        return ZipLoraRequest(
            model=self._generate.model.strip(), content_lora=self.content_lora.strip(),
            style_lora=self.style_lora.strip(), content_prompt=self.content_prompt, style_prompt=self.style_prompt,
            out=self.out.strip(), content_images=(self.content_images,) if self.content_images else (),
            style_images=(self.style_images,) if self.style_images else (), steps=int(self.steps),
            device=self._generate.request().device)

    def start(self) -> int | None:
        """Submit the merge; None (and `error` says why) if the settings are not valid."""
        request = self.request()
        try:
            request.validate()
            if Path(request.out).exists():
                raise UserError(f"{request.out} already exists: choose another output name.")
        except UserError as exc:
            self.error = str(exc)
            return None
        self.error, self.result, self.progress = "", "", 0.0
        self._job_id = self._runner.submit(MergeJob(request, engine=self._engine))
        self.is_busy = True
        self.status = "Waiting for the previous job…" if self._job_id in self._runner.pending else "Starting…"
        return self._job_id

    def cancel(self) -> None:
        if self._job_id is not None and self._runner.cancel(self._job_id):
            self.status = "Cancelling…"

    def use_result(self) -> None:
        """Generate with the merged LoRA alone (it holds both the subject and the style)."""
        if self.result:
            self._generate.craft.style_lora = ""
            self._generate.use_lora(self.result, "content")

    def _mine(self, job_id: int) -> bool:
        return job_id == self._job_id

    def _done(self) -> None:
        self._job_id = None
        self.is_busy = False

    def _on_progress(self, job_id: int, event: Any) -> None:
        if not self._mine(job_id) or not isinstance(event, ProgressEvent):
            return
        if event.stage == "train" and event.values:
            self.progress = event.fraction
            self.status = (f"step {event.step}/{event.total} · loss {event.values.get('loss', 0.0):.4f} · "
                           f"similarity {event.values.get('similarity', 0.0):.3f}")
        elif event.message:
            self.status = event.message[:1].upper() + event.message[1:] + "…"

    def _on_finished(self, job_id: int, result: Any) -> None:
        if self._mine(job_id):
            self._done()
            self.progress = 1.0
            self.result = str(result.out)
            self.status = (f"Merged {result.layers} layers in {result.seconds:.0f} s: {Path(result.out).name} "
                           f"(coefficient similarity {result.similarity:.2f}).")
            self.merged.emit(self.result)

    def _on_failed(self, job_id: int, message: str) -> None:
        if self._mine(job_id):
            self._done()
            self.error, self.status, self.progress = message, "", 0.0

    def _on_cancelled(self, job_id: int) -> None:
        if self._mine(job_id):
            self._done()
            self.status, self.progress = "Cancelled; nothing was written.", 0.0
