"""What to train (`BackboneTrainRequest`, `LoraTrainRequest`) and what came out (`TrainResult`).

Everything that affects a trained file is in its request, and the request is written into the
file's metadata, so every backbone and LoRA can be trained again from what it records. Settings
that only change how a run is watched (sample images, checkpoint interval) are recorded too but
do not change the result: a run resumed from a checkpoint ends with the same weights as an
uninterrupted one.

`resolution = 0` means the base model's native size (512 for SD1.x, 1024 for SDXL); the engine
records the resolved value in the result and the file.

`num_processes` and `gpus` say how a run is spread over several processes (data parallel, one
GPU each, engine/training/launcher.py). They do not change what is learnt: `batch_size` stays
the global batch, every process takes `batch_size / num_processes` rows of it, and the gradients
are averaged, so a run on N processes trains the weights a one-process run trains (up to float
rounding). Caption templates may hold `{trigger}`;
prompt markers (`<c>`, `<s>`) in captions are stripped before encoding, as at inference (Eq. 6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import DEVICES, MAX_SIDE, ROUTING_PRESETS
from craftstudio.domain.markers import strip_markers

ROLES = ("content", "style")
MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
LOSSES = ("mse", "min_snr")  # see engine/training/losses.py
DEFAULT_CAPTIONS = {"content": "a photo of {trigger}", "style": "an image in {trigger} style"}
NEUTRAL_CONTENT_CAPTION = "a photo"
STYLE_CAPTION = "a painting in a distinctive style"

# Rank-FT basis initialisations (engine/training/rank_ft.py): W0's minor input directions, or Gaussian.
MINOR_INIT, RANDOM_INIT = "minor", "random"
BASIS_INITS = (MINOR_INIT, RANDOM_INIT)

# Fields that change how a run is watched or stored, not the trained weights; a checkpoint made
# with other values of these may still be resumed.
RUN_ONLY_FIELDS = frozenset({"out", "overwrite", "checkpoint_every", "sample_every", "sample_prompt",
                             "sample_steps", "device", "title", "num_processes", "gpus", "fast"})
MAX_PROCESSES = 64


def check_resolution(value: int, what: str) -> None:
    """A training-like resolution: 0 (the model's native size) or a multiple of 8 up to MAX_SIDE."""
    if value and (value < 8 or value % 8 or value > MAX_SIDE):
        raise RequestError(f"{what} {value} is not allowed: use a multiple of 8 between 8 and {MAX_SIDE} "
                           "(or 0 for the model's native size).")


def check_learning_rate(value: float) -> None:
    if not 0 < value <= 1.0:
        raise RequestError(f"Learning rate must be above 0 and at most 1, not {value}.")


def check_seed(value: int) -> None:
    if not 0 <= value < 2**63:
        raise RequestError(f"Seed must be between 0 and 2^63-1, not {value}.")


def _check_common(r: Any) -> None:
    """Checks shared by both request kinds (they have these fields under the same names)."""
    if not r.model:
        raise RequestError("No base model is chosen: pick a model folder or .safetensors file.")
    if not r.out:
        raise RequestError("No output file is given: name the .safetensors file to write.")
    if not r.out.lower().endswith(".safetensors"):
        raise RequestError(f"Output {r.out} must be a .safetensors file.")
    if not 1 <= r.steps <= 1_000_000:
        raise RequestError(f"Training steps must be between 1 and 1000000, not {r.steps}.")
    if not 1 <= r.batch_size <= 64:
        raise RequestError(f"Batch size must be between 1 and 64, not {r.batch_size}.")
    check_resolution(r.resolution, "Training resolution")
    check_learning_rate(r.learning_rate)
    check_seed(r.seed)
    if r.device not in DEVICES:
        raise RequestError(f"Unknown device {r.device!r}: choose one of {', '.join(DEVICES)}.")
    if r.mixed_precision not in MIXED_PRECISION:
        raise RequestError(f"Unknown mixed precision {r.mixed_precision!r}: choose one of "
                           f"{', '.join(MIXED_PRECISION)}.")
    if r.loss not in LOSSES:
        raise RequestError(f"Unknown loss {r.loss!r}: choose one of {', '.join(LOSSES)}.")
    if r.checkpoint_every < 0:
        raise RequestError("The checkpoint interval cannot be negative (0 = no checkpoints).")
    _check_processes(r)


def _check_processes(r: Any) -> None:
    """Several processes split every global batch evenly, one GPU each (or CPU processes)."""
    n, gpus = r.num_processes, tuple(r.gpus)
    if not 1 <= n <= MAX_PROCESSES:
        raise RequestError(f"The number of processes must be between 1 and {MAX_PROCESSES}, not {n}.")
    if any(isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise RequestError(f"GPUs are named by distinct numbers 0, 1, ... (as nvidia-smi counts them), not "
                           f"{','.join(str(g) for g in gpus)}.")
    if gpus and len(gpus) != n:
        raise RequestError(f"{len(gpus)} GPUs ({','.join(str(g) for g in gpus)}) were chosen for {n} "
                           f"process{'es' if n > 1 else ''}: one process runs on each GPU, so give as many of each.")
    if gpus and r.device not in ("auto", "cuda"):
        raise RequestError(f"GPUs were chosen but the device is {r.device}: choose device cuda (or auto), or no GPUs.")
    if n > 1 and r.device == "mps":
        raise RequestError("Apple GPUs train in one process: choose 1 process, or device cpu for CPU processes.")
    if r.batch_size % n:
        raise RequestError(f"The batch size {r.batch_size} does not split evenly over {n} processes: use a "
                           f"multiple of {n} (each process takes batch/{n} of every step's images).")


def _check_caption(template: str, what: str) -> None:
    try:
        text = template.format(trigger="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise RequestError(f"The {what} {template!r} is not a valid template: only {{trigger}} may "
                           "appear in braces.") from exc
    strip_markers(text)  # a malformed marker raises MarkerError, which names its position


@dataclass(frozen=True)
class BackboneTrainRequest:
    """Rank-FT (Eq. 1–4): learn content and style bases per attention projection, save Q_merged."""

    kind: ClassVar[str] = "backbone"

    model: str
    content_dir: str
    style_dir: str
    out: str
    r_max: int = 128
    r_min: int = 4
    # Where the bases start: W0's minor input directions (W_init ≈ W0 at step 0) or Gaussian.
    init: str = MINOR_INIT
    sigma: float = 0.35  # normalised low-pass cutoff for content images (see engine/training/data.py)
    ortho_weight: float = 1.0  # λ of the orthogonality penalty λ·mean_l ‖Q_cᵀQ_s‖²_F
    # Prior preservation (README, The backbone): a folder of pictures the base model should go on drawing
    # (each may have a caption file); every step adds κ·‖ε(W_init) − ε(W0)‖² on one of them.
    keep_dir: str = ""
    # κ; unused without keep_dir. The preservation loss is small (≈1e-3 once the bases have moved),
    # so κ must be large to matter; 1000 kept the demo model at 0.875 of W0's 0.911 (README).
    keep_weight: float = 1000.0
    steps: int = 5000  # UNet passes; even steps train content bases, odd steps style bases
    learning_rate: float = 1e-3
    batch_size: int = 1
    resolution: int = 0
    max_content: int = 10
    max_style: int = 10
    content_caption: str = NEUTRAL_CONTENT_CAPTION
    style_caption: str = STYLE_CAPTION
    loss: str = "mse"
    seed: int = 0
    device: str = "auto"
    num_processes: int = 1  # data-parallel processes; batch_size is split over them
    gpus: tuple[int, ...] = ()  # which CUDA GPUs (one per process); () = the first num_processes
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = True
    fast: bool = False  # compiled training step (engine/training/compiled_step.py); same weights
    upscale: bool = False  # enlarge images smaller than the resolution instead of refusing them
    checkpoint_every: int = 500
    overwrite: bool = False
    title: str = ""

    def validate(self) -> None:
        """Raise `RequestError` with one clear sentence for the first invalid setting."""
        _check_common(self)
        if not self.content_dir or not self.style_dir:
            raise RequestError("A backbone needs a folder of content references and a folder of style "
                               "references.")
        if not 1 <= self.r_min <= self.r_max <= 4096:
            raise RequestError(f"Ranks must satisfy 1 <= r_min <= r_max <= 4096, not r_max {self.r_max} "
                               f"and r_min {self.r_min}.")
        if self.init not in BASIS_INITS:
            raise RequestError(f"The basis initialisation must be one of {', '.join(BASIS_INITS)}, not "
                               f"{self.init!r}.")
        if not 0 < self.sigma <= 1:
            raise RequestError(f"The low-pass cutoff σ must be above 0 and at most 1, not {self.sigma}.")
        if not 0 <= self.ortho_weight <= 1e6:
            raise RequestError(f"The orthogonality weight λ must be between 0 and 1e6, not {self.ortho_weight}.")
        if not 0 <= self.keep_weight <= 1e6:
            raise RequestError(f"The preservation weight κ must be between 0 and 1e6, not {self.keep_weight}.")
        for name, value in (("content", self.max_content), ("style", self.max_style)):
            if not 1 <= value <= 10_000:
                raise RequestError(f"The number of {name} references must be between 1 and 10000, not {value}.")
        _check_caption(self.content_caption, "content caption")
        _check_caption(self.style_caption, "style caption")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["gpus"] = list(self.gpus)
        return {"kind": self.kind, **data}


@dataclass(frozen=True)
class LoraTrainRequest:
    """A routed LoRA: a content LoRA trains only I_c modules, a style LoRA only I_s modules."""

    kind: ClassVar[str] = "lora"

    role: str
    model: str
    images: tuple[str, ...]  # image files and/or folders of images
    trigger: str
    out: str
    backbone: str | None = None  # W_init is applied before training; None = the plain base
    caption: str = ""  # template with {trigger}; "" = DEFAULT_CAPTIONS[role]
    rank: int = 16
    alpha: float | None = None  # None = rank (scale 1)
    learning_rate: float = 1e-4
    steps: int = 500
    batch_size: int = 1
    resolution: int = 0
    loss: str = "mse"
    seed: int = 0
    device: str = "auto"
    num_processes: int = 1  # data-parallel processes; batch_size is split over them
    gpus: tuple[int, ...] = ()  # which CUDA GPUs (one per process); () = the first num_processes
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = True
    fast: bool = False  # compiled training step (engine/training/compiled_step.py); same weights
    adam_8bit: bool = False  # needs bitsandbytes
    upscale: bool = False
    sample_every: int = 0  # 0 = no sample images
    sample_prompt: str = ""  # "" = the caption with the role's marker
    sample_steps: int = 20
    checkpoint_every: int = 100
    routing_overrides: dict[str, str] | None = None  # per-block role overrides, as at inference
    routing_preset: str = "craft"  # "b-lora": the role's one B-LoRA block (engine/routing.py)
    # κ_u of the unconditional term: every step adds κ_u·‖ε_L(x_t, "") − ε_0(x_t, "")‖², so the
    # LoRA learns to leave the empty prompt's prediction alone and its change follows the caption
    # (docs/demo-research.md, Probes: asymmetric CFG then leaves it at its trained strength). 0 = off.
    uncond_weight: float = 0.0
    overwrite: bool = False
    title: str = ""

    @property
    def caption_template(self) -> str:
        return self.caption or DEFAULT_CAPTIONS.get(self.role, "{trigger}")

    @property
    def caption_text(self) -> str:
        """The caption the text encoder sees: template filled, markers stripped (Eq. 6)."""
        return strip_markers(self.caption_template.format(trigger=self.trigger))

    def image_caption(self, sidecar: str | None, source: str = "") -> str:
        """The caption of one image: its caption file's text (`sidecar`) when it has one, else the
        template. A caption file may hold `{trigger}` or the trigger phrase itself (the kohya
        convention); one with neither would train the LoRA without its trigger and is refused."""
        if sidecar is None:
            return self.caption_text
        text = " ".join(sidecar.split())
        where = f"The caption file {source}" if source else "A caption file"
        if not text:
            raise RequestError(f"{where} is empty: write the image's caption in it (with {{trigger}}) or "
                               "delete it to use the caption template.")
        try:
            filled = text.format(trigger=self.trigger) if "{" in text else text
        except (KeyError, IndexError, ValueError) as exc:
            raise RequestError(f"{where} is not a valid caption: only {{trigger}} may appear in braces.") from exc
        if "{trigger}" not in text and self.trigger not in text:
            raise RequestError(f"{where} does not name the trigger: put {{trigger}} or {self.trigger!r} in "
                               "it, or the LoRA cannot be called up by its trigger.")
        return strip_markers(filled)

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else float(self.rank)

    def validate(self) -> None:
        _check_common(self)
        if self.role not in ROLES:
            raise RequestError(f"A LoRA's role must be content or style, not {self.role!r}.")
        if not self.images:
            raise RequestError("No training images are given: pass image files or a folder of images.")
        if not self.trigger.strip():
            raise RequestError("The trigger phrase is empty: give the words that will call up this LoRA "
                               "(e.g. 'sks cat').")
        strip_markers(self.trigger)
        _check_caption(self.caption_template, "caption")
        if "{trigger}" not in self.caption_template:
            raise RequestError(f"The caption {self.caption_template!r} does not hold {{trigger}}: the "
                               "trigger phrase must be part of the caption.")
        if not 1 <= self.rank <= 1024:
            raise RequestError(f"LoRA rank must be between 1 and 1024, not {self.rank}.")
        if self.alpha is not None and not 0 < self.alpha <= 4096:
            raise RequestError(f"LoRA alpha must be above 0 and at most 4096, not {self.alpha}.")
        if self.sample_every < 0 or not 1 <= self.sample_steps <= 1000:
            raise RequestError("Sample images need an interval of 0 or more steps and 1 to 1000 "
                               "denoising steps.")
        if self.sample_prompt:
            strip_markers(self.sample_prompt)
        if self.routing_preset not in ROUTING_PRESETS:
            raise RequestError(f"Unknown routing preset {self.routing_preset!r}: choose one of "
                               f"{', '.join(ROUTING_PRESETS)}.")
        if not 0 <= self.uncond_weight <= 1e6:
            raise RequestError(f"The unconditional weight κ_u must be between 0 and 1e6, not {self.uncond_weight}.")
        if self.uncond_weight and self.num_processes > 1:
            raise RequestError("The unconditional term (--uncond-weight) trains on one process only: train "
                               "without --num-processes or set the weight to 0.")
        for block, role in (self.routing_overrides or {}).items():
            if role not in (*ROLES, "none"):
                raise RequestError(f"Routing override for {block!r} must be content, style or none, "
                                   f"not {role!r}.")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["images"] = list(self.images)
        data["gpus"] = list(self.gpus)
        return {"kind": self.kind, **data}


TrainRequest = BackboneTrainRequest | LoraTrainRequest
_KINDS: dict[str, type] = {"backbone": BackboneTrainRequest, "lora": LoraTrainRequest}


def train_request_from_dict(data: dict[str, Any]) -> TrainRequest:
    """Build a request from its JSON form (`to_dict`); unknown keys (newer versions) are ignored."""
    cls = _KINDS.get(str(data.get("kind", "")))
    if cls is None:
        raise RequestError(f"The recorded training request has an unknown kind {data.get('kind')!r}.")
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    if cls is LoraTrainRequest and isinstance(kwargs.get("images"), list | tuple):
        kwargs["images"] = tuple(str(p) for p in kwargs["images"])
    if isinstance(kwargs.get("gpus"), list | tuple):
        kwargs["gpus"] = tuple(kwargs["gpus"])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RequestError(f"The recorded training request is incomplete or malformed ({exc}).") from exc


def comparable(request: TrainRequest) -> dict[str, Any]:
    """The request's settings that decide the trained weights (for matching a checkpoint)."""
    return {k: v for k, v in request.to_dict().items() if k not in RUN_ONLY_FIELDS}


@dataclass
class TrainResult:
    """A trained file with the (resolved) request that made it and how the run went."""

    request: TrainRequest
    out: str
    steps: int
    seconds: float
    device: str
    resolution: int
    losses: list[dict[str, float]] = field(default_factory=list)  # every step's loss terms
    resumed_from: int = 0  # the step a resumed run continued from (0 = a fresh run)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) not used
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1].get("loss") if self.losses else None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["request"] = self.request.to_dict()
        data["skipped"] = [list(item) for item in self.skipped]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["request"] = train_request_from_dict(data.get("request") or {})
        kwargs["skipped"] = [tuple(item) for item in kwargs.get("skipped", [])]
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise RequestError(f"The recorded training result is incomplete or malformed ({exc}).") from exc

