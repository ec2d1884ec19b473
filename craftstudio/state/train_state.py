"""`TrainState`: the view-model of the Train page (content LoRA, style LoRA, backbone).

It holds every setting of `python -m craftstudio train lora|backbone` (persisted between
sessions), the reference sets (`ReferenceSet`), and builds the same request object the command
line builds; `command_line()` is that command. Start submits a `TrainJob` to the shared
`JobRunner`; the job's events become observable progress: step of total, steps per second, time
left, the loss history (one dict of terms per step) and the sample images with their steps. A
run stopped by Cancel keeps its checkpoint; `runs` lists those and `resume(run)` continues one.
When the job is done the file is in the library, and `try_it()` hands it to Generate
(`GenerateState.use_lora` / `use_backbone`).

The base model defaults to the built-in demo model, as on the Generate page. The device memory
is asked of a worker job (`DeviceProbeJob`, through the app's shared `DeviceProbe`) the first time
the page is shown, so opening the window never loads torch; the memory preset follows it until the
user picks one. The same probe lists the GPUs: with several, `gpu_selection` (remembered) picks
those a run trains on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.domain.training import (
    DEFAULT_CAPTIONS,
    NEUTRAL_CONTENT_CAPTION,
    STYLE_CAPTION,
    BackboneTrainRequest,
    LoraTrainRequest,
    TrainRequest,
)
from craftstudio.state.demo_defaults import demo_defaults
from craftstudio.state.device_probe import DeviceProbe
from craftstudio.state.gpu_selection import GpuSelection
from craftstudio.state.properties import ObservableObject, Property, persisted, restore
from craftstudio.state.reference_set import ReferenceSet
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.train_command import command_line
from craftstudio.state.train_presets import (
    BACKBONE_QUALITY,
    CPU_PRESET,
    LORA_QUALITY,
    memory_preset,
    preset_for_device,
)
from craftstudio.state.training_runs import CheckpointRun, find_runs, native_resolution
from craftstudio.state.training_speed import SpeedWatch
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.train_job import DeviceInfo, TrainFn, TrainJob, TrainOutput

log = logging.getLogger(__name__)

SETTINGS_SECTION = "train"
KINDS = ("content", "style", "backbone")
SLOW_MESSAGE = ("Training slowed to {now:.2f} steps/s from {then:.2f} at the start: the GPU memory is "
                "probably spilling into system memory. Cancel (the checkpoint is kept), choose a smaller "
                "memory preset or resolution, and resume.")


def parse_routes(text: str) -> dict[str, str] | None:
    """`up_blocks.1.attentions.0=style, mid_block=none` → a routing-override dict."""
    routes: dict[str, str] = {}
    for item in (part.strip() for part in text.replace(";", ",").split(",")):
        if not item:
            continue
        block, sep, role = item.partition("=")
        if not sep or not block.strip():
            raise UserError(f"A routing override reads BLOCK=ROLE (e.g. up_blocks.1.attentions.0=style), "
                            f"not {item!r}.")
        routes[block.strip()] = role.strip()
    return routes or None


class TrainState(ObservableObject):
    # What to train (persisted).
    kind = Property("content", persist=True)
    kind_changed = Signal(str)
    model = Property("", persist=True)
    model_changed = Signal(str)
    backbone = Property("", persist=True)
    backbone_changed = Signal(str)
    trigger = Property("", persist=True)
    trigger_changed = Signal(str)
    name = Property("", persist=True)  # output file name without .safetensors ("" = from the trigger)
    name_changed = Signal(str)
    quality = Property("Standard", persist=True)
    quality_changed = Signal(str)
    memory = Property("", persist=True)  # a memory preset label; "" = follow the device
    memory_changed = Signal(str)
    # Advanced: every option of the command line.
    steps = Property(1000, persist=True)
    steps_changed = Signal(int)
    learning_rate = Property(1e-4, persist=True)
    learning_rate_changed = Signal(float)
    rank = Property(16, persist=True)
    rank_changed = Signal(int)
    alpha = Property(0.0, persist=True)  # 0 = the rank
    alpha_changed = Signal(float)
    batch_size = Property(1, persist=True)
    batch_size_changed = Signal(int)
    resolution = Property(0, persist=True)  # 0 = the model's native size
    resolution_changed = Signal(int)
    caption = Property("", persist=True)  # "" = the role's default template
    caption_changed = Signal(str)
    mixed_precision = Property("auto", persist=True)
    mixed_precision_changed = Signal(str)
    gradient_checkpointing = Property(True, persist=True)
    gradient_checkpointing_changed = Signal(bool)
    fast = Property(False, persist=True)  # compiled training step (the request's `fast`)
    fast_changed = Signal(bool)
    adam_8bit = Property(False, persist=True)
    adam_8bit_changed = Signal(bool)
    loss = Property("mse", persist=True)
    loss_changed = Signal(str)
    seed = Property(0, persist=True)
    seed_changed = Signal(int)
    routes = Property("", persist=True)  # "BLOCK=ROLE, ..."
    routes_changed = Signal(str)
    routing_preset = Property("craft", persist=True)  # the role's layer set: craft or b-lora
    routing_preset_changed = Signal(str)
    upscale = Property(False, persist=True)
    upscale_changed = Signal(bool)
    device = Property("auto", persist=True)
    device_changed = Signal(str)
    sample_every = Property(100, persist=True)
    sample_every_changed = Signal(int)
    sample_steps = Property(20, persist=True)
    sample_steps_changed = Signal(int)
    sample_prompt = Property("", persist=True)
    sample_prompt_changed = Signal(str)
    checkpoint_every = Property(100, persist=True)
    checkpoint_every_changed = Signal(int)
    overwrite = Property(False, persist=True)
    overwrite_changed = Signal(bool)
    title = Property("", persist=True)  # written into the file's metadata ("" = the file name)
    title_changed = Signal(str)
    # Backbone only.
    r_max = Property(128, persist=True)
    r_max_changed = Signal(int)
    r_min = Property(4, persist=True)
    r_min_changed = Signal(int)
    init = Property("minor", persist=True)
    init_changed = Signal(str)
    sigma = Property(0.35, persist=True)
    sigma_changed = Signal(float)
    ortho_weight = Property(1.0, persist=True)
    ortho_weight_changed = Signal(float)
    keep_dir = Property("", persist=True)
    keep_dir_changed = Signal(str)
    keep_weight = Property(1000.0, persist=True)
    keep_weight_changed = Signal(float)
    content_caption = Property(NEUTRAL_CONTENT_CAPTION, persist=True)
    content_caption_changed = Signal(str)
    style_caption = Property(STYLE_CAPTION, persist=True)
    style_caption_changed = Signal(str)
    max_content = Property(10, persist=True)
    max_content_changed = Signal(int)
    max_style = Property(10, persist=True)
    max_style_changed = Signal(int)

    # What is happening (not persisted).
    device_label = Property("Device: not checked yet")
    device_label_changed = Signal(str)
    native_size = Property(0)  # the model's native training size (0 = unknown)
    native_size_changed = Signal(int)
    is_busy = Property(False)
    is_busy_changed = Signal(bool)
    step = Property(0)
    step_changed = Signal(int)
    total = Property(0)
    total_changed = Signal(int)
    speed = Property(0.0)  # steps per second, recent
    speed_changed = Signal(float)
    eta_s = Property(0.0)
    eta_s_changed = Signal(float)
    status = Property("")
    status_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)
    slow_warning = Property("")
    slow_warning_changed = Signal(str)
    output = Property("")  # the last finished file
    output_changed = Signal(str)
    runs = Property([], equal=lambda a, b: a == b)  # list[CheckpointRun]
    runs_changed = Signal(object)
    # Growing lists, emitted whole (the same list object) on every change.
    losses_changed = Signal(object)  # list[dict[str, float]], one per step, with "step"
    samples_changed = Signal(object)  # list[(step, PIL image)]
    finished = Signal(object)  # TrainOutput of a finished run

    def __init__(self, runner: JobRunner, *, library_home: Path, engine: TrainFn | None = None,
                 settings: SettingsFile | None = None, generate: Any = None,
                 probe: DeviceProbe | None = None, parent: QObject | None = None) -> None:
        """`probe`: the app's shared device probe (default: one of this state's own)."""
        super().__init__(parent)
        self._runner = runner
        self._home = library_home
        self._engine = engine
        self._settings = settings
        self._generate = generate  # GenerateState, for "Try it"
        self._job_id: int | None = None
        self._device: DeviceInfo | None = None
        self.probe = probe or DeviceProbe(runner, self)
        self.probe.detected.connect(self._on_device)
        self.probe.failed.connect(lambda _message: setattr(self, "device_label", "Device: unknown"))
        self._request: TrainRequest | None = None
        self._watch = SpeedWatch()
        self.losses: list[dict[str, float]] = []
        self.samples: list[tuple[int, Any]] = []
        self.last_output: TrainOutput | None = None
        self.images = ReferenceSet(self)  # a LoRA's references
        self.content_refs = ReferenceSet(self)  # a backbone's
        self.style_refs = ReferenceSet(self)
        self._folders = {"lora_folder": self.images, "content_folder": self.content_refs,
                         "style_folder": self.style_refs}
        self.gpu_selection = GpuSelection(self)
        if settings is not None:
            section = settings.section(SETTINGS_SECTION)
            restore(self, section)
            if isinstance(section.get("gpus"), str):
                self.gpu_selection.chosen = section["gpus"]
            for key, refs in self._folders.items():
                folder = section.get(key)
                if isinstance(folder, str) and folder and Path(folder).is_dir():
                    refs.set_folder(folder)
        if not self.model.strip():
            defaults = demo_defaults()
            if defaults is not None:
                # As on Generate: the demo model with its backbone, so a LoRA trained here fits the
                # W_init it will be used on (the demo LoRAs were trained on it too).
                self.model = defaults.model
                if not self.backbone.strip():
                    self.backbone = defaults.backbone
        self.model_changed.connect(self._update_native_size)
        self._update_native_size(self.model)
        self.quality_changed.connect(lambda _q: self.apply_quality())
        self.kind_changed.connect(lambda _k: self.apply_quality())
        self.memory_changed.connect(lambda _m: self.apply_memory())
        runner.started.connect(self._on_started)
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        self.refresh_runs()

    # ---------- presets
    def apply_quality(self) -> None:
        """Set steps, learning rate and rank (LoRA) or top rank (backbone) from the quality preset."""
        table = BACKBONE_QUALITY if self.kind == "backbone" else LORA_QUALITY
        preset = table.get(self.quality)
        if preset is None:
            return
        self.steps, self.learning_rate = preset.steps, preset.learning_rate
        if preset.rank:
            self.rank = preset.rank
        if preset.r_max:
            self.r_max = preset.r_max

    def apply_memory(self) -> None:
        """Set batch size, gradient checkpointing and 8-bit Adam from the memory preset."""
        label = self.memory or self.suggested_memory
        try:
            preset = memory_preset(label)
        except KeyError:
            return
        self.batch_size = preset.batch_size
        self.gradient_checkpointing = preset.gradient_checkpointing
        self.adam_8bit = preset.adam_8bit and bool(self._device and self._device.has_bitsandbytes)

    @property
    def suggested_memory(self) -> str:
        if self._device is None:
            return ""
        return preset_for_device(self._device.kind, self._device.memory_gb)

    def detect_device(self) -> None:
        """Ask a worker job which device training uses (once; it loads torch on the worker)."""
        if self._device is not None:
            return
        if self.probe.info is not None:  # another page asked first
            self._on_device(self.probe.info)
        elif self.probe.detect():
            self.device_label = "Device: checking…"

    # ---------- outputs and requests
    @property
    def output_folder(self) -> Path:
        return self._home / ("backbones" if self.kind == "backbone" else "loras")

    def output_path(self) -> Path:
        name = self.name.strip() or _default_name(self.kind, self.trigger)
        return self.output_folder / f"{name}.safetensors"

    @property
    def caption_template(self) -> str:
        """The caption an image without a caption file gets (shown greyed in the strip)."""
        if self.kind == "backbone":
            return self.content_caption
        return self.caption or DEFAULT_CAPTIONS.get(self.kind, "{trigger}")

    def request(self) -> TrainRequest:
        """The request the current settings describe (not validated). A backbone set with
        images removed is linked into a folder first (ReferenceSet.selection_folder)."""
        common = dict(model=self.model.strip(), out=str(self.output_path()), steps=self.steps,
                      learning_rate=self.learning_rate, batch_size=self.batch_size, resolution=self.resolution,
                      loss=self.loss, seed=self.seed, device=self.device, mixed_precision=self.mixed_precision,
                      gradient_checkpointing=self.gradient_checkpointing, fast=self.fast, upscale=self.upscale,
                      checkpoint_every=self.checkpoint_every, overwrite=self.overwrite, title=self.title.strip(),
                      **self.gpu_selection.request_fields(self.device))
        if self.kind == "backbone":
            selections = self._home / "training-sets"
            return BackboneTrainRequest(
                content_dir=self.content_refs.selection_folder(selections) if self.content_refs.images else "",
                style_dir=self.style_refs.selection_folder(selections) if self.style_refs.images else "",
                r_max=self.r_max, r_min=self.r_min, init=self.init, sigma=self.sigma,
                ortho_weight=self.ortho_weight, keep_dir=self.keep_dir.strip(), keep_weight=self.keep_weight,
                content_caption=self.content_caption, style_caption=self.style_caption,
                max_content=self.max_content, max_style=self.max_style, **common)
        return LoraTrainRequest(
            role=self.kind, images=self.images.sources(), trigger=self.trigger.strip(),
            backbone=self.backbone.strip() or None, caption=self.caption, rank=self.rank,
            alpha=self.alpha or None, adam_8bit=self.adam_8bit, sample_every=self.sample_every,
            sample_prompt=self.sample_prompt, sample_steps=self.sample_steps,
            routing_overrides=parse_routes(self.routes), routing_preset=self.routing_preset, **common)

    def command_line(self) -> str:
        """`python -m craftstudio train …` for the current settings ("" and `error` set if invalid)."""
        try:
            request = self.request()
            request.validate()
        except UserError as exc:
            self.error = str(exc)
            return ""
        self.error = ""
        return command_line(request)

    # ---------- running
    def start(self) -> int | None:
        """Validate and submit a fresh run; returns the job id, or None (and `error`) if refused."""
        if self.is_busy:
            return None
        try:
            request = self.request()
            request.validate()
            self._check_references(request)
        except UserError as exc:
            self.error = str(exc)
            return None
        return self._submit(request, resume=False, earlier=[])

    def resume(self, run: CheckpointRun) -> int | None:
        """Continue a stopped run from its checkpoint (its own settings; this page's sample and
        checkpoint intervals)."""
        if self.is_busy:
            return None
        watch = {"sample_every": self.sample_every, "sample_steps": self.sample_steps,
                 "sample_prompt": self.sample_prompt, "checkpoint_every": self.checkpoint_every,
                 "device": self.device, "overwrite": self.overwrite, "num_processes": 1, "gpus": (),
                 **self.gpu_selection.request_fields(self.device)}
        try:
            request = run.request(watch)
            request.validate()
        except UserError as exc:
            self.error = str(exc)
            return None
        return self._submit(request, resume=True, earlier=[{"step": i + 1, **terms}
                                                           for i, terms in enumerate(run.losses)])

    def cancel(self) -> None:
        if self._job_id is not None and self._runner.cancel(self._job_id):
            self.status = "Stopping after this step…"

    def try_it(self) -> bool:
        """Open Generate with the last trained file loaded (LoRA by its role, trigger inserted)."""
        output = self.last_output
        if output is None or self._generate is None:
            return False
        request = output.result.request
        if isinstance(request, LoraTrainRequest):
            if request.backbone:
                self._generate.craft.backbone = request.backbone
            self._generate.model = request.model
            self._generate.use_lora(output.path, request.role, request.trigger)
        else:
            self._generate.model = request.model
            self._generate.use_backbone(output.path)
        return True

    def refresh_runs(self) -> None:
        folders = {self._home / "loras", self._home / "backbones", self.output_folder}
        self.runs = find_runs(sorted(folders))

    def save_settings(self) -> None:
        if self._settings is not None:
            # The reference folders come back on the next start (removed images do not).
            folders = {key: refs.folder for key, refs in self._folders.items()}
            self._settings.save_section(SETTINGS_SECTION, {**persisted(self), **folders,
                                                           "gpus": self.gpu_selection.chosen})

    # ---------- internals
    def _check_references(self, request: TrainRequest) -> None:
        sets = [self.images] if isinstance(request, LoraTrainRequest) else [self.content_refs, self.style_refs]
        resolution = request.resolution or self.native_size
        for refs in sets:
            small = refs.smaller_than(resolution)
            if small and not request.upscale:
                names = ", ".join(f"{i.path.name} ({i.width}x{i.height})" for i in small[:3])
                raise UserError(f"{len(small)} reference image(s) are smaller than the training resolution "
                                f"{resolution}: {names}. Remove them, lower the resolution, or allow upscaling.")
        if isinstance(request, LoraTrainRequest) and not self.images.images:
            raise UserError("No reference images: pick a folder of images or drop images on the strip.")

    def _submit(self, request: TrainRequest, *, resume: bool, earlier: list[dict[str, float]]) -> int:
        self.error = self.slow_warning = ""
        self.save_settings()
        self._request = request
        self._job_id = self._runner.submit(TrainJob(request, resume=resume, engine=self._engine,
                                                    library_home=self._home))
        self.losses = list(earlier)
        self.samples = []
        self.losses_changed.emit(self.losses)
        self.samples_changed.emit(self.samples)
        self._watch.reset()
        self.step, self.total, self.speed, self.eta_s = (earlier[-1]["step"] if earlier else 0), request.steps, 0.0, 0.0
        self.is_busy = True
        self.status = "Waiting for the previous job…" if self._runner.pending else "Starting…"
        return self._job_id

    def _update_native_size(self, model: str) -> None:
        self.native_size = native_resolution(model) if model.strip() else 0

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        if job_id == self._job_id:
            self.status = "Loading the model…"

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if job_id != self._job_id:
            return
        if event.stage == "train" and event.values:
            now = time.monotonic()
            terms = {k: v for k, v in event.values.items() if k != "eta_s"}
            self.losses.append({"step": event.step, **terms})
            self.losses_changed.emit(self.losses)
            self._watch.step(now)
            self.step, self.total = event.step, event.total
            self.speed = self._watch.steps_per_second
            self.eta_s = float(event.values.get("eta_s", 0.0))
            self.status = "Training…"
            if self._watch.is_slow:
                self.slow_warning = SLOW_MESSAGE.format(now=self.speed, then=self._watch.reference)
        elif event.message:
            self.status = event.message[:1].upper() + event.message[1:] + "…"

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: PreviewEvent) -> None:
        if job_id == self._job_id:
            self.samples.append((event.step, event.image))
            self.samples_changed.emit(self.samples)
            self._watch.pause(time.monotonic())

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: Any) -> None:
        if job_id != self._job_id:
            return
        assert isinstance(result, TrainOutput)
        self.last_output = result
        self.output = str(result.path)
        note = f" (not added to the library: {result.library_note})" if result.library_note else \
            " and added to the library"
        self.status = f"Saved {result.path.name} in {result.result.seconds:.0f} s{note}."
        self._done()
        self.finished.emit(result)

    def _on_device(self, device: DeviceInfo) -> None:
        self._device = device
        self.device_label = f"Device: {device.label}"
        self.gpu_selection.available = list(device.gpus)
        if not self.memory:
            self.apply_memory()

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._job_id:
            self.error = message
            self.status = ""
            self._done()

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job_id:
            self._done()
            out = Path(self._request.out) if self._request is not None else None
            kept = next((run for run in self.runs if run.out == out), None)
            self.status = (f"Stopped; the checkpoint at step {kept.step} is kept: Resume continues it."
                           if kept else f"Stopped at step {self.step}; no checkpoint was kept.")

    def _done(self) -> None:
        self._job_id = None
        self.is_busy = False
        self.slow_warning = ""
        self.refresh_runs()


def _default_name(kind: str, trigger: str) -> str:
    stem = "-".join(trigger.split()) or "my"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-") or "my"
    return f"{safe}-{'backbone' if kind == 'backbone' else kind}"


__all__ = ["KINDS", "CPU_PRESET", "TrainState", "parse_routes"]
