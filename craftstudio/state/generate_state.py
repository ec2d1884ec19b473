"""`GenerateState`: the view-model of the Generate panel.

Holds the settings the user edits (persisted between sessions), turns them into a validated
`GenerateRequest`, submits a `GenerateJob` to the shared `JobRunner` and follows that job's
signals into observable properties (generate_jobs.py): busy flag, progress, status line, step
preview, results, error message. Errors never raise out of here; they land in `error` for the
window to show.

The CRAFT fusion settings (LoRAs, backbone, switches, curves) live in `craft` (`CraftState`);
they are saved in this state's settings section under one key; so are the pictures of image to
image, inpainting and hires in `pictures` (`PictureState`). The prompt's `<c>`/`<s>` markers
are parsed on every edit for the live γ feedback (`markers` / `marker_error`); a prompt with
malformed markers is never submitted.

Generate never waits: pressing it while a job runs queues another (the queue view shows them);
`repeat` > 1 queues that many jobs with seeds +1 each ("Generate ×N"). Each finished job is
recorded in the history store when one is given, so it appears in the gallery.

First run: with no model configured, the built-in demo (model, LoRAs, backbone, a prompt) is
filled in when it is installed (`demo_defaults`), and `welcome_dismissed` (persisted) says
whether the welcome panel has been closed.

Size follows the model: choosing a model sets width × height to its native size
(`library.native_size`, read from config JSON or the safetensors header); a size far from it
gets a quiet `size_hint`.

Messages follow the current state: `error` remembers what kind of problem it is; editing the
prompt clears a marker error once the prompt parses, changing a setting clears a refused
request's error once the request is valid, and a new error clears the last run's status.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import DEFAULT_SCHEDULER, GenerateRequest, steps_skipped
from craftstudio.domain.image_size import size_for_picture
from craftstudio.domain.markers import MarkerError, parse_prompt
from craftstudio.domain.trigger_phrases import has_trigger, insert_trigger, remove_trigger
from craftstudio.library.history_store import HistoryStore
from craftstudio.library.native_size import native_size
from craftstudio.library.png_params import read_recorded
from craftstudio.state.craft_state import CraftState
from craftstudio.state.demo_defaults import demo_defaults
from craftstudio.state.feedback_text import describe_markers, markers_note
from craftstudio.state.generate_jobs import FollowsGenerateJobs
from craftstudio.state.library_choices import Choice, LibraryChoices
from craftstudio.state.picture_state import PictureState
from craftstudio.state.properties import ObservableObject, Property, persisted, restore, same_object
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.settings_state import SettingsState
from craftstudio.workers.generate_job import GenerateFn, GenerateJob, SplitFn
from craftstudio.workers.job_runner import JobRunner

log = logging.getLogger(__name__)

SETTINGS_SECTION = "generate"
CRAFT_KEY = "craft"  # the CRAFT settings' key inside the section
PICTURES_KEY = "pictures"  # image to image and hires settings
MAX_RANDOM_SEED = 2**31 - 1  # fits a QSpinBox, so the user can see and edit the seed used
# A size whose area is this many times the native one (or that fraction of it) gets a hint.
FAR_FROM_NATIVE = 2.0
# Settings whose change may make a refused request valid (or invalid in another way).
_REQUEST_FIELDS = ("model", "width", "height", "steps", "cfg_scale", "seed", "scheduler", "batch_count")


class GenerateState(FollowsGenerateJobs, ObservableObject):
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
    marker_error_position = Property(0)  # its 1-based position in the prompt, 0 when it parses
    marker_error_position_changed = Signal(int)
    # What the markers mean for the LoRAs loaded, when it may surprise: "the style LoRA is off".
    markers_note = Property("")
    markers_note_changed = Signal(str)
    native_size = Property(None)  # (width, height) the model draws best at; None when unknown
    native_size_changed = Signal(object)
    size_hint = Property("")  # a quiet note when the size is far from the native one
    size_hint_changed = Signal(str)
    progress_text = Property("")  # "step 3/20 · 4.1 it/s · 4 s left", or what is loading
    progress_text_changed = Signal(str)
    progress_busy = Property(False)  # work of unknown length (loading the model): a busy bar
    progress_busy_changed = Signal(bool)
    trigger_phrases = Property([], equal=same_object)  # of the LoRAs loaded, for completion
    trigger_phrases_changed = Signal(object)
    # A LoRA was taken off while its trigger phrase is still in the prompt: (role, trigger).
    trigger_offer = Property(None)
    trigger_offer_changed = Signal(object)
    welcome_dismissed = Property(False, persist=True)
    welcome_dismissed_changed = Signal(bool)
    # A Generate refused for a malformed marker: its 1-based position, for the prompt's cursor.
    marker_error_at = Signal(int)
    # Another page put something to use here (a LoRA, a model, restored settings): show Generate.
    show_requested = Signal()
    # A finished generation was recorded in the history store (its id): the gallery shows it.
    generation_recorded = Signal(int)

    def __init__(self, runner: JobRunner, *, engine: GenerateFn | None = None,
                 settings: SettingsFile | None = None, outputs: Path | None = None,
                 app_settings: SettingsState | None = None, library_home: Path | None = None,
                 history: HistoryStore | None = None, split_engine: SplitFn | None = None,
                 parent: QObject | None = None) -> None:
        """`app_settings`: the Settings page's values (device, previews, output folder and
        names, threads, the GPUs a batch is split over). `split_engine` replaces the real split
        of a batch over several devices (tests), as `engine` replaces `generate`. `library_home`: the app's home, whose catalog feeds the pickers;
        default: the folder of the settings file (the app keeps settings.json in its home)."""
        super().__init__(parent)
        self._app_settings = app_settings
        self._runner = runner
        self._engine = engine
        self._split_engine = split_engine
        self._settings = settings
        self._outputs = outputs
        self._history = history
        self._job_id: int | None = None  # the running job of this state
        self._jobs: list[int] = []  # submitted and not finished, in submission order
        self._error_kind = ""  # "markers", "request" or "" (a job's or a file's error)
        self._clock = time.monotonic
        self._rate_start: tuple[float, int] | None = None  # (time, steps done) at the first step
        self._pass_label = ""  # the denoising pass being counted ("" or "hires pass")
        self._passes = 1  # denoising passes of the running job (2 with hires)
        if library_home is None and settings is not None:
            library_home = settings.path.parent
        self.library = LibraryChoices(library_home)
        self.craft = CraftState(self)
        self.pictures = PictureState(library_home / "masks" if library_home is not None else None, self)
        self.model_changed.connect(self._follow_model)
        for name in ("width", "height", "native_size"):
            getattr(self, f"{name}_changed").connect(self._update_size_hint)
        for name in _REQUEST_FIELDS:
            getattr(self, f"{name}_changed").connect(self._recheck_request)
        if settings is not None:
            section = settings.section(SETTINGS_SECTION)
            restore(self, section)
            self.craft.restore_settings(section.get(CRAFT_KEY))
            if isinstance(section.get(PICTURES_KEY), dict):
                restore(self.pictures, section[PICTURES_KEY])
        if not self.model.strip():
            self._fill_demo_defaults()
        # The curve editor draws the step ticks and sampled values of these two settings.
        curves = self.craft.curves
        curves.steps, curves.cfg_scale = self.steps, self.cfg_scale
        self.steps_changed.connect(lambda steps: setattr(curves, "steps", steps))
        # Image to image skips the schedule's first steps: the curve editor shades them.
        pictures = self.pictures
        for signal in (self.steps_changed, pictures.init_image_changed, pictures.strength_changed):
            signal.connect(self._update_skipped_steps)
        pictures.picture_size_changed.connect(self._follow_picture)
        self._update_skipped_steps()
        self.cfg_scale_changed.connect(lambda cfg: setattr(curves, "cfg_scale", cfg))
        self.prompt_changed.connect(self._parse_markers)
        self._parse_markers(self.prompt)
        self._loras = {"content": self.craft.content_lora, "style": self.craft.style_lora}
        self.craft.content_lora_changed.connect(lambda path: self._lora_changed("content", path))
        self.craft.style_lora_changed.connect(lambda path: self._lora_changed("style", path))
        self.prompt_changed.connect(self._drop_stale_offer)
        self._update_triggers()
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

    def outputs_folder(self) -> Path | None:
        """Where this page's images go: the Settings page's outputs folder when there is one."""
        if self._app_settings is not None:
            return self._app_settings.job_options()["outputs"]
        return self._outputs

    def request(self) -> GenerateRequest:
        """The request the current settings describe (not validated)."""
        return GenerateRequest(
            model=self.model.strip(), prompt=self.prompt, negative_prompt=self.negative_prompt,
            width=self.width, height=self.height, steps=self.steps, cfg_scale=self.cfg_scale,
            seed=self.seed, scheduler=self.scheduler, batch_count=self.batch_count,
            **(self._app_settings.request_fields() if self._app_settings else {"preview_every": 1}),
            **self.craft.request_fields(), **self.pictures.request_fields(),
        )

    def generate(self) -> int | None:
        """Validate and submit `repeat` jobs (seed +1 each); returns the first job's id, or None
        (and sets `error`) if invalid. While a job runs, the new ones wait in the queue."""
        self._set_error("")
        try:
            parse_prompt(self.prompt)
        except MarkerError as exc:
            self._set_error(str(exc), "markers")
            self.marker_error_at.emit(exc.position)
            return None
        if self.random_seed:
            self.seed = random.randint(0, MAX_RANDOM_SEED)
        problem = self.pictures.prepare()  # the painted mask goes to its file with the job
        if problem:
            self._set_error(problem)
            return None
        request = self.request()
        try:
            request.validate()
        except UserError as exc:
            self._set_error(str(exc), "request")
            return None
        self.save_settings()
        options = self._app_settings.job_options() if self._app_settings else {"outputs": self._outputs}
        devices = self._app_settings.batch_devices(request) if self._app_settings else ()
        first = None
        for index in range(max(1, self.repeat)):
            job_request = request if index == 0 else replace(request, seed=request.seed + index * request.batch_count)
            job_id = self._runner.submit(GenerateJob(job_request, engine=self._engine, devices=devices,
                                                     split_engine=self._split_engine, **options))
            self._jobs.append(job_id)
            first = first if first is not None else job_id
        self.is_busy = True
        if self._job_id is None:  # nothing of ours running: show this job's start at once
            self.progress = 0.0
            self.preview = None
            self.status = ""
            self.progress_busy = True
            # Another page's job (a training, a scan) may still hold the runner.
            waiting = self._jobs[0] in self._runner.pending
            self.progress_text = "Waiting for the previous job…" if waiting else "Starting…"
        return first

    def cancel(self) -> None:
        """Stop the running job of this state (queued ones stay: the queue view cancels those)."""
        job_id = self.job_id
        if job_id is not None and self._runner.cancel(job_id):
            self.status = "Cancelling…"

    def use_lora(self, path: str | Path, role: str, trigger: str | None = None) -> None:
        """Load a LoRA as the content or style LoRA (by `role`) and put its trigger phrase in
        the prompt with that role's marker, unless the prompt already names it. Without a
        `trigger`, the LoRA's first one in the library (or its file's metadata) is used."""
        if role not in ("content", "style"):
            raise ValueError(f"role must be content or style, not {role!r}")
        if trigger is None:
            trigger = next(iter(self.library.triggers(str(path))), "")
        setattr(self.craft, f"{role}_lora", str(path))
        self.prompt = insert_trigger(self.prompt, trigger, role)
        self.show_requested.emit()

    def use_init_image(self, path: str | Path) -> None:
        """Start the next runs from this picture (image to image); its mask is cleared."""
        self.pictures.clear_mask()
        self.pictures.init_image = str(path)
        self.show_requested.emit()

    def enlarge(self, index: int = 0, factor: float = 2.0) -> int | None:
        """Make result `index` again, enlarged `factor`× by the hires pass: its recorded settings
        (seed fixed), one image, hires on. Returns the job id, None if it could not start."""
        paths = self.image_paths
        if not 0 <= index < len(paths) or not self.apply_png(paths[index]):
            return None
        self.batch_count, self.repeat = 1, 1
        self.pictures.hires_factor = factor
        return self.generate()

    def use_model(self, path: str | Path) -> None:
        self.model = str(path)
        self.show_requested.emit()

    def choices(self, field: str) -> list[Choice]:
        """Entries of the picker of `field` (model, content_lora, style_lora, backbone): the
        demo's and the library's, LoRAs and backbones for the current model's family."""
        if field == "model":
            return self.library.models()
        if field in ("content_lora", "style_lora"):
            return self.library.loras(field.removesuffix("_lora"), self.model)
        if field == "backbone":
            return self.library.backbones(self.model)
        raise ValueError(f"no picker for {field!r}")

    def use_native_size(self) -> None:
        """Back to the size the model draws best at."""
        if self.native_size:
            self.width, self.height = self.native_size

    # --- welcome -------------------------------------------------------------------------

    @Slot()
    def show_welcome(self) -> None:
        """Show the welcome panel again (Help menu) and bring Generate forward."""
        self.welcome_dismissed = False
        self.show_requested.emit()

    @Slot()
    def dismiss_welcome(self) -> None:
        self.welcome_dismissed = True
        self.save_settings()

    # --- trigger phrases -----------------------------------------------------------------

    def remove_offered_trigger(self) -> None:
        """Take the trigger phrase of the LoRA just removed out of the prompt."""
        offer, self.trigger_offer = self.trigger_offer, None
        if offer is not None:
            self.prompt = remove_trigger(self.prompt, offer[1])

    def keep_offered_trigger(self) -> None:
        self.trigger_offer = None

    def use_backbone(self, path: str | Path) -> None:
        self.craft.backbone = str(path)
        self.show_requested.emit()

    def apply_request(self, request: GenerateRequest) -> list[str]:
        """Show a recorded request's settings (e.g. from a dropped PNG) in the panel. Its
        model is kept only if that file or folder exists here; the seed is fixed, not random.
        Returns the recorded CRAFT files (LoRAs, backbone) that are missing here."""
        if request.model and Path(request.model).exists():
            self.model = request.model
        missing = self.pictures.apply_request(request)  # before the size: a picture sets the size
        self.prompt, self.negative_prompt = request.prompt, request.negative_prompt
        self.steps, self.cfg_scale = request.steps, float(request.cfg_scale)
        self.width, self.height = request.width, request.height
        self.scheduler, self.batch_count = request.scheduler, request.batch_count
        self.seed, self.random_seed = request.seed, False
        return missing + self.craft.apply_request(request)

    def apply_png(self, path: str | Path) -> bool:
        """Restore the settings recorded in a PNG. Never raises: a file without valid settings
        sets `error`; recorded settings that were invalid are left as they were and named in
        `error`, the valid ones are restored."""
        try:
            request, dropped = read_recorded(path)
        except UserError as exc:
            self._set_error(str(exc))
            return False
        except Exception as exc:  # the reading layer words every known fault; this is the last guard
            log.exception("reading the settings of %s failed", path)
            self.error = f"The settings in {Path(path).name} could not be read ({type(exc).__name__})."
            return False
        # An invalid recorded setting is not restored: the panel keeps what it shows now.
        current = self.request()
        request = dataclasses.replace(request, **{name: getattr(current, name) for name in dropped})
        missing = self.apply_request(request)
        reasons = " ".join(dict.fromkeys(dropped.values()))
        self._set_error(f"Not restored from {Path(path).name}: {reasons}" if dropped else "")
        self.status = f"Settings restored from {Path(path).name}."
        if missing:
            self.status += f" Not found here: {', '.join(missing)}."
        return True

    def save_settings(self) -> None:
        if self._settings is not None:
            self._settings.save_section(SETTINGS_SECTION,
                                        {**persisted(self), CRAFT_KEY: self.craft.settings(),
                                         PICTURES_KEY: persisted(self.pictures)})

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
            self.markers, self.marker_error_position, self.marker_error = "", exc.position, str(exc)
            self.markers_note = ""
            if self._error_kind == "markers":  # the refused Generate's message, kept current
                self.error = str(exc)
            return
        self.markers, self.marker_error_position, self.marker_error = describe_markers(parsed), 0, ""
        self.markers_note = markers_note(parsed, self.craft.content_lora, self.craft.style_lora)
        if self._error_kind == "markers":
            self._set_error("")

    def _set_error(self, message: str, kind: str = "") -> None:
        self._error_kind = kind if message else ""
        if message:
            self.status = ""  # the last run's status no longer describes what is on screen
        self.error = message

    def _recheck_request(self, *_args: object) -> None:
        if self._error_kind != "request":
            return
        try:
            self.request().validate()
        except UserError as exc:
            self.error = str(exc)
            return
        self._set_error("")

    # --- size ----------------------------------------------------------------------------

    def _follow_model(self, model: str) -> None:
        size = native_size(model) if model.strip() else None
        self.native_size = size
        if size:
            self.width, self.height = size
        self._update_triggers()

    def _follow_picture(self, size: tuple[int, int] | None) -> None:
        if size:
            self.width, self.height = size_for_picture(size, self.native_size or (self.width, self.height))

    def _update_skipped_steps(self, *_args: object) -> None:
        pictures = self.pictures
        skipped = steps_skipped(self.steps, pictures.strength) if pictures.init_image else 0
        self.craft.curves.skipped_steps = skipped

    def _update_size_hint(self, *_args: object) -> None:
        native = self.native_size
        if not native:
            self.size_hint = ""
            return
        ratio = (self.width * self.height) / (native[0] * native[1])
        far = ratio >= FAR_FROM_NATIVE or ratio <= 1 / FAR_FROM_NATIVE
        self.size_hint = (f"This model draws {native[0]}×{native[1]} pictures; far from that size it is "
                          "slower and its pictures tend to smear or repeat." if far else "")

    # --- LoRAs and their trigger phrases -------------------------------------------------

    def _lora_changed(self, role: str, path: str) -> None:
        old, self._loras[role] = self._loras.get(role, ""), path
        self._update_triggers()
        self._parse_markers(self.prompt)
        if not old.strip() or old.strip() == path.strip():
            return
        still_used = {p.strip() for p in self._loras.values()}
        kept = {t.lower() for p in still_used for t in self.library.triggers(p)}
        for trigger in self.library.triggers(old):
            if has_trigger(self.prompt, trigger) and trigger.lower() not in kept:
                self.trigger_offer = (role, trigger)
                return

    def _drop_stale_offer(self, prompt: str) -> None:
        if self.trigger_offer is not None and not has_trigger(prompt, self.trigger_offer[1]):
            self.trigger_offer = None

    def _update_triggers(self) -> None:
        phrases: list[str] = []
        for path in (self.craft.content_lora, self.craft.style_lora):
            phrases += [t for t in self.library.triggers(path) if t not in phrases]
        if phrases != self.trigger_phrases:
            self.trigger_phrases = phrases
