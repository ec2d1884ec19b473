"""`GenerateState`: the view-model of the Generate panel.

Holds the settings the user edits (persisted between sessions), turns them into a validated
`GenerateRequest`, submits a `GenerateJob` to the shared `JobRunner` and follows that job's
signals into observable properties: busy flag, progress, status line, step preview, results,
error message. Errors never raise out of here; they land in `error` for the window to show.

The CRAFT fusion settings (LoRAs, backbone, switches, curves) live in `craft` (`CraftState`);
they are saved in this state's settings section under one key. The prompt's `<c>`/`<s>` markers
are parsed on every edit for the live γ feedback (`markers` / `marker_error`); a prompt with
malformed markers is never submitted.

Generate never waits: pressing it while a job runs queues another (the queue view shows them);
`repeat` > 1 queues that many jobs with seeds +1 each ("Generate ×N"). Each finished job is
recorded in the history store when one is given, so it appears in the gallery.

First run: with no model configured, the built-in demo (model, LoRAs, backbone, a prompt) is
filled in when it is installed (`demo_defaults`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import DEFAULT_SCHEDULER, GenerateRequest
from craftstudio.domain.markers import MarkerError, ParsedPrompt, parse_prompt
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.domain.trigger_phrases import insert_trigger
from craftstudio.library.history_store import HistoryStore
from craftstudio.library.png_params import read_request
from craftstudio.state.craft_state import CraftState
from craftstudio.state.demo_defaults import demo_defaults
from craftstudio.state.properties import ObservableObject, Property, persisted, restore, same_object
from craftstudio.state.settings_file import SettingsFile
from craftstudio.workers.generate_job import GenerateFn, GenerateJob, GenerateOutput
from craftstudio.workers.job_runner import JobRunner

log = logging.getLogger(__name__)

SETTINGS_SECTION = "generate"
CRAFT_KEY = "craft"  # the CRAFT settings' key inside the section
MAX_RANDOM_SEED = 2**31 - 1  # fits a QSpinBox, so the user can see and edit the seed used
_STAGES = {"load": "Loading model", "encode": "Encoding prompt", "decode": "Decoding",
           "save": "Saving"}


class GenerateState(ObservableObject):
    # What to generate (persisted).
    model = Property("", persist=True)
    model_changed = Signal(str)
    prompt = Property("", persist=True)
    prompt_changed = Signal(str)
    negative_prompt = Property("", persist=True)
    negative_prompt_changed = Signal(str)
    steps = Property(20, persist=True)
    steps_changed = Signal(int)
    cfg_scale = Property(7.0, persist=True)
    cfg_scale_changed = Signal(float)
    seed = Property(0, persist=True)
    seed_changed = Signal(object)  # object: seeds may exceed the 32-bit int of Signal(int)
    random_seed = Property(True, persist=True)  # draw a new seed for every Generate
    random_seed_changed = Signal(bool)
    width = Property(512, persist=True)
    width_changed = Signal(int)
    height = Property(512, persist=True)
    height_changed = Signal(int)
    scheduler = Property(DEFAULT_SCHEDULER, persist=True)
    scheduler_changed = Signal(str)
    batch_count = Property(1, persist=True)
    batch_count_changed = Signal(int)
    repeat = Property(1, persist=True)  # "Generate ×N": N jobs, seed +1 each
    repeat_changed = Signal(int)

    # What is happening (not persisted).
    is_busy = Property(False)
    is_busy_changed = Signal(bool)
    progress = Property(0.0)  # 0..1 over the whole job
    progress_changed = Signal(float)
    status = Property("")
    status_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)
    preview = Property(None, equal=same_object)  # PIL image of the step being denoised
    preview_changed = Signal(object)
    images = Property([], equal=same_object)  # PIL images of the last finished job
    images_changed = Signal(object)
    image_paths = Property([], equal=same_object)  # where they were saved
    image_paths_changed = Signal(object)
    markers = Property("")  # the prompt's γ values in words, "" while the markers are malformed
    markers_changed = Signal(str)
    marker_error = Property("")  # MarkerError message of the prompt, "" when it parses
    marker_error_changed = Signal(str)
    # A Generate refused for a malformed marker: its 1-based position, for the prompt's cursor.
    marker_error_at = Signal(int)
    # Another page put something to use here (a LoRA, a model, restored settings): show Generate.
    show_requested = Signal()
    # A finished generation was recorded in the history store (its id): the gallery shows it.
    generation_recorded = Signal(int)

    def __init__(self, runner: JobRunner, *, engine: GenerateFn | None = None,
                 settings: SettingsFile | None = None, outputs: Path | None = None,
                 history: HistoryStore | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._engine = engine
        self._settings = settings
        self._outputs = outputs
        self._history = history
        self._job_id: int | None = None  # the running job of this state
        self._jobs: list[int] = []  # submitted and not finished, in submission order
        self.craft = CraftState(self)
        if settings is not None:
            section = settings.section(SETTINGS_SECTION)
            restore(self, section)
            self.craft.restore_settings(section.get(CRAFT_KEY))
        if not self.model.strip():
            self._fill_demo_defaults()
        # The curve editor draws the step ticks and sampled values of these two settings.
        curves = self.craft.curves
        curves.steps, curves.cfg_scale = self.steps, self.cfg_scale
        self.steps_changed.connect(lambda steps: setattr(curves, "steps", steps))
        self.cfg_scale_changed.connect(lambda cfg: setattr(curves, "cfg_scale", cfg))
        self.prompt_changed.connect(self._parse_markers)
        self._parse_markers(self.prompt)
        runner.started.connect(self._on_started)
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    @property
    def job_id(self) -> int | None:
        """The running (or else the next) job's id, None when idle."""
        return self._job_id if self._job_id is not None else (self._jobs[0] if self._jobs else None)

    @property
    def job_ids(self) -> list[int]:
        """Every job of this state not finished yet, in submission order."""
        return list(self._jobs)

    def request(self) -> GenerateRequest:
        """The request the current settings describe (not validated)."""
        return GenerateRequest(
            model=self.model.strip(), prompt=self.prompt, negative_prompt=self.negative_prompt,
            width=self.width, height=self.height, steps=self.steps, cfg_scale=self.cfg_scale,
            seed=self.seed, scheduler=self.scheduler, batch_count=self.batch_count,
            preview_every=1, **self.craft.request_fields(),
        )

    def generate(self) -> int | None:
        """Validate and submit `repeat` jobs (seed +1 each); returns the first job's id, or None
        (and sets `error`) if invalid. While a job runs, the new ones wait in the queue."""
        self.error = ""
        try:
            parse_prompt(self.prompt)
        except MarkerError as exc:
            self.error = str(exc)
            self.marker_error_at.emit(exc.position)
            return None
        if self.random_seed:
            self.seed = random.randint(0, MAX_RANDOM_SEED)
        request = self.request()
        try:
            request.validate()
        except UserError as exc:
            self.error = str(exc)
            return None
        self.save_settings()
        first = None
        for index in range(max(1, self.repeat)):
            job_request = request if index == 0 else replace(request, seed=request.seed + index * request.batch_count)
            job_id = self._runner.submit(GenerateJob(job_request, engine=self._engine, outputs=self._outputs))
            self._jobs.append(job_id)
            first = first if first is not None else job_id
        if self._job_id is None:
            self.progress = 0.0
            self.preview = None
        self.is_busy = True
        waiting = len(self._runner.pending)
        self.status = f"{waiting} job{'s' if waiting != 1 else ''} waiting in the queue…" if waiting else "Starting…"
        return first

    def cancel(self) -> None:
        """Stop the running job of this state (queued ones stay: the queue view cancels those)."""
        job_id = self.job_id
        if job_id is not None and self._runner.cancel(job_id):
            self.status = "Cancelling…"

    def use_lora(self, path: str | Path, role: str, trigger: str = "") -> None:
        """Load a LoRA as the content or style LoRA (by `role`) and put its trigger phrase in
        the prompt with that role's marker, unless the prompt already names it."""
        if role not in ("content", "style"):
            raise ValueError(f"role must be content or style, not {role!r}")
        setattr(self.craft, f"{role}_lora", str(path))
        self.prompt = insert_trigger(self.prompt, trigger, role)
        self.show_requested.emit()

    def use_model(self, path: str | Path) -> None:
        self.model = str(path)
        self.show_requested.emit()

    def use_backbone(self, path: str | Path) -> None:
        self.craft.backbone = str(path)
        self.show_requested.emit()

    def apply_request(self, request: GenerateRequest) -> list[str]:
        """Show a recorded request's settings (e.g. from a dropped PNG) in the panel. Its
        model is kept only if that file or folder exists here; the seed is fixed, not random.
        Returns the recorded CRAFT files (LoRAs, backbone) that are missing here."""
        if request.model and Path(request.model).exists():
            self.model = request.model
        self.prompt, self.negative_prompt = request.prompt, request.negative_prompt
        self.steps, self.cfg_scale = request.steps, float(request.cfg_scale)
        self.width, self.height = request.width, request.height
        self.scheduler, self.batch_count = request.scheduler, request.batch_count
        self.seed, self.random_seed = request.seed, False
        return self.craft.apply_request(request)

    def apply_png(self, path: str | Path) -> bool:
        """Restore the settings recorded in a PNG; a file without them sets `error`."""
        try:
            request = read_request(path)
        except UserError as exc:
            self.error = str(exc)
            return False
        missing = self.apply_request(request)
        self.error = ""
        self.status = f"Settings restored from {Path(path).name}."
        if missing:
            self.status += f" Not found here: {', '.join(missing)}."
        return True

    def save_settings(self) -> None:
        if self._settings is not None:
            self._settings.save_section(SETTINGS_SECTION,
                                        {**persisted(self), CRAFT_KEY: self.craft.settings()})

    def _fill_demo_defaults(self) -> None:
        defaults = demo_defaults()
        if defaults is None:
            return
        self.model = defaults.model
        craft = self.craft
        # Only empty fields: a user who chose a LoRA but no model keeps that LoRA.
        if not craft.content_lora and not craft.style_lora:
            craft.content_lora, craft.style_lora = defaults.content_lora, defaults.style_lora
        if not craft.backbone:
            craft.backbone = defaults.backbone
        if not self.prompt.strip() and defaults.prompt:
            self.prompt = defaults.prompt
            # The demo prompt's style weight is tuned to this guidance scale and these curves.
            if defaults.cfg_scale:
                self.cfg_scale = defaults.cfg_scale
            if defaults.curves:
                craft.curves.load_preset(defaults.curves, record=False)
        log.info("first run: the demo model %s is filled in", defaults.model)

    def _parse_markers(self, prompt: str) -> None:
        try:
            parsed = parse_prompt(prompt)
        except MarkerError as exc:
            self.markers, self.marker_error = "", str(exc)
            return
        self.markers, self.marker_error = describe_markers(parsed), ""

    def _mine(self, job_id: int) -> bool:
        return job_id == self._job_id

    def _done(self, job_id: int) -> None:
        if job_id in self._jobs:
            self._jobs.remove(job_id)
        if job_id == self._job_id:
            self._job_id = None
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
            self.status = "Starting…"

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if not self._mine(job_id):
            return
        count = max(event.image_count, 1)
        label = f" (image {event.image_index + 1} of {count})" if count > 1 else ""
        if event.stage == "denoise":
            self.progress = min(1.0, (event.image_index + event.fraction) / count)
            self.status = f"Step {event.step} of {event.total}{label}"
        else:
            text = event.message or _STAGES.get(event.stage, event.stage)
            self.status = text[:1].upper() + text[1:] + "…"

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
        self.status = f"{count} image{'s' if count != 1 else ''} in {seconds:.1f} s, saved to {folder}"
        self._done(job_id)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id in self._jobs:
            self.error = message
            self.status = ""
            self.progress = 0.0
            self._done(job_id)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id in self._jobs:
            if self._mine(job_id) or not self._job_id:
                self.status = "Cancelled."
                self.progress = 0.0
                self.preview = None
            self._done(job_id)


def describe_markers(parsed: ParsedPrompt) -> str:
    """The γ values a prompt gives the LoRAs, in words (README: no markers = γ 1 for both)."""
    if not parsed.text:
        return ""
    if not parsed.has_markers:
        return f"No <c>/<s> markers: content γ {_gamma(1.0)} · style γ {_gamma(1.0)}"
    return f"content γ {_gamma(parsed.gamma_content)} · style γ {_gamma(parsed.gamma_style)}"


def _gamma(value: float) -> str:
    # One decimal at least ("1.0", "0.8"), more only when the user typed more ("0.75").
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"
