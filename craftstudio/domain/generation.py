"""What to generate (`GenerateRequest`) and what came out (`GenerateResult`).

Everything that affects an output is in the request, so every image can be reproduced from the
request recorded in its PNG. Image `i` of a batch uses seed `seed + i`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from craftstudio.domain.curves import CurveSet
from craftstudio.domain.errors import RequestError
from craftstudio.domain.limits import (
    BATCH_RANGE,
    CFG_RANGE,
    LORA_WEIGHT_RANGE,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    SEED_RANGE,
    STEPS_RANGE,
    check_number,
    check_text_size,
    check_utf8,
)

# Scheduler ids and the names A1111 writes in its `Sampler:` field.
SCHEDULERS: dict[str, str] = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "ddim": "DDIM",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
}
DEFAULT_SCHEDULER = "dpmpp_2m_karras"
DEFAULT_CFG = 7.0  # classifier-free guidance scale of a request that names none
DEVICES = ("auto", "cuda", "mps", "cpu")
ROUTING_PRESETS = ("craft", "b-lora")  # engine/routing.py holds their layer maps
DEFAULT_STRENGTH = 0.75  # A1111's default denoising strength
DEFAULT_HIRES_STRENGTH = 0.5
DEFAULT_MASK_BLUR = 4  # pixels, as A1111's "Mask blur"
HIRES_FACTOR_RANGE = (1.0, 4.0)
MASK_BLUR_RANGE = (0, 64)


def steps_skipped(steps: int, strength: float) -> int:
    """Image to image: the first step of the full `steps`-step schedule that runs at `strength`
    (== steps when no step runs; see engine/img2img.py)."""
    return steps - min(int(steps * strength), steps)


def hires_side(side: int, factor: float) -> int:
    """A side enlarged by `factor`, rounded to the nearest multiple of 8 (the VAE's grid)."""
    return max(8, int(round(side * factor / 8.0)) * 8)


class FusionMode(StrEnum):
    """`craft` = every CRAFT component; `direct` = the plain weighted merge other tools do;
    `custom` = some ablation switches off. The peer modes are published training-free ways of
    combining a content and a style LoRA (docs/method.md, "Peer fusion modes"): `k-lora` (K-LoRA,
    arXiv 2502.18461), `switch` (LoRA Switch) and `composite` (LoRA Composite; both arXiv
    2402.16843). They use no CRAFT component."""

    CRAFT = "craft"
    DIRECT = "direct"
    CUSTOM = "custom"
    K_LORA = "k-lora"
    SWITCH = "switch"
    COMPOSITE = "composite"


PEER_MODES = (FusionMode.K_LORA.value, FusionMode.SWITCH.value, FusionMode.COMPOSITE.value)


@dataclass(frozen=True)
class FusionSwitches:
    """The ablation switches of DESIGN.md §1 (all on = `craft`, all off = `direct`)."""

    backbone: bool = True
    routing: bool = True
    asymmetric: bool = True
    gates: bool = True

    @classmethod
    def for_mode(cls, mode: FusionMode | str) -> FusionSwitches:
        """All on for `craft` (and `custom`), all off for `direct` and the peer modes."""
        mode = FusionMode(mode)
        off = mode is FusionMode.DIRECT or mode.value in PEER_MODES
        return cls(False, False, False, False) if off else cls()

    @property
    def mode(self) -> FusionMode:
        flags = dataclasses.astuple(self)
        if all(flags):
            return FusionMode.CRAFT
        if not any(flags):
            return FusionMode.DIRECT
        return FusionMode.CUSTOM


@dataclass(frozen=True)
class LoraRef:
    """A LoRA file and the user's weight for it. `sha256` is filled in once the file is hashed."""

    path: str
    weight: float = 1.0
    sha256: str | None = None


@dataclass(frozen=True)
class GenerateRequest:
    model: str
    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = DEFAULT_CFG
    seed: int = 0
    scheduler: str = DEFAULT_SCHEDULER
    batch_count: int = 1
    device: str = "auto"
    preview_every: int = 0  # 0 = no step previews
    content_lora: LoraRef | None = None
    style_lora: LoraRef | None = None
    backbone: str | None = None
    switches: FusionSwitches = field(default_factory=FusionSwitches)
    # JSON form of the three curves (guidance, content gate, style gate); None = constant
    # curves: gates 1 and guidance `cfg_scale` on every step.
    curves: dict[str, Any] | None = None
    # Per-block routing overrides, e.g. {"up_blocks.1.attentions.0": "style"} (role content|style|none).
    routing_overrides: dict[str, str] | None = None
    # Which layer sets route the LoRAs: "craft" (Eq. 7's I_c / I_s) or "b-lora" (one block each).
    routing_preset: str = "craft"
    # How to run, not what comes out (results match within the reference tolerance):
    # fast = compiled UNet with CUDA graphs; low_vram = CPU offload, VAE tiling, one image per call.
    fast: bool = False
    low_vram: bool = False
    # Image to image (docs/image-to-image.md): start from `init_image` noised to `strength` of the
    # schedule; `mask` (white = redo) limits the change to a region, its edge feathered by
    # `mask_blur` pixels. The sha256 fields are filled in when the files are read.
    init_image: str | None = None
    init_image_sha256: str | None = None
    strength: float = DEFAULT_STRENGTH
    mask: str | None = None
    mask_sha256: str | None = None
    mask_blur: int = DEFAULT_MASK_BLUR
    # Hires: the image made at width×height is enlarged by `hires_factor` (1 = off, Lanczos on the
    # image) and redrawn at `hires_strength` with `hires_steps` steps (0 = `steps`).
    hires_factor: float = 1.0
    hires_strength: float = DEFAULT_HIRES_STRENGTH
    hires_steps: int = 0
    # A peer fusion mode (one of PEER_MODES) instead of CRAFT; None = CRAFT with `switches`.
    # In a peer mode every CRAFT component is off, whatever `switches` says.
    peer_mode: str | None = None

    @property
    def mode(self) -> FusionMode:
        return FusionMode(self.peer_mode) if self.peer_mode else self.switches.mode

    @property
    def effective_switches(self) -> FusionSwitches:
        """The switches the sampler uses: `switches`, or all off in a peer mode."""
        return FusionSwitches.for_mode(self.peer_mode) if self.peer_mode else self.switches

    def validate(self) -> None:
        """Raise `RequestError` with one clear sentence for the first invalid setting."""
        if not isinstance(self.model, str) or not self.model:
            raise RequestError("No model is chosen: pick a base model folder or .safetensors file.")
        for f in dataclasses.fields(self):
            check = _FIELD_CHECKS.get(f.name)
            if check is not None:
                check(getattr(self, f.name))
        if self.init_image == "" or self.mask == "":
            raise RequestError("An empty file name was given for the init image or mask: choose a picture file.")
        if self.mask is not None and self.init_image is None:
            raise RequestError("A mask needs an init image to redraw: choose the picture the mask belongs to.")
        width, height = self.output_size
        if max(width, height) > MAX_SIDE:
            raise RequestError(f"Hires ×{self.hires_factor:g} would make {width}x{height}, larger than "
                               f"{MAX_SIDE} pixels a side: lower the factor or the size.")

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the images made: the request size, enlarged by the hires factor."""
        if self.hires_factor == 1.0:
            return self.width, self.height
        return hires_side(self.width, self.hires_factor), hires_side(self.height, self.hires_factor)

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_count)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateRequest:
        """Build a request from JSON data; unknown keys (from newer versions) are ignored."""
        if not isinstance(data, dict):
            raise RequestError(f"The recorded request is not an object ({type(data).__name__}).")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            for key in ("content_lora", "style_lora"):
                if isinstance(kwargs.get(key), dict):
                    kwargs[key] = LoraRef(**kwargs[key])
            if isinstance(kwargs.get("switches"), dict):
                kwargs["switches"] = FusionSwitches(**kwargs["switches"])
            return cls(**kwargs)
        except TypeError as exc:
            raise RequestError(f"The recorded request is incomplete or malformed ({exc}).") from exc

    @classmethod
    def from_record(cls, data: Any) -> tuple[GenerateRequest, dict[str, str]]:
        """A request from recorded JSON (a PNG, the history) that keeps every valid setting and
        drops each invalid one (wrong type, not finite, out of range; left at its default):
        returns (request, {dropped field: sentence saying why}). A record that is not an object
        is a `RequestError`."""
        if not isinstance(data, dict):
            raise RequestError(f"The recorded request is not an object but {type(data).__name__}.")
        request = cls(model="", prompt="")
        dropped: dict[str, str] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            try:
                value = _coerce(f.name, data[f.name])
                check = _FIELD_CHECKS.get(f.name)
                checked = check(value) if check is not None else None
                if isinstance(checked, int | float):  # 20.0 recorded for steps is 20
                    value = checked
            except RequestError as exc:
                dropped[f.name] = str(exc)
                continue
            except (TypeError, ValueError):
                dropped[f.name] = f"The recorded {f.name.replace('_', ' ')} is malformed."
                continue
            request = dataclasses.replace(request, **{f.name: value})
        return request, dropped


def _lora_check(role: str) -> Callable[[Any], None]:
    def check(ref: Any) -> None:
        if ref is None:
            return
        if not isinstance(ref, LoraRef) or not isinstance(ref.path, str) or not ref.path:
            raise RequestError(f"The {role} LoRA must be a file with a weight, not {ref!r}.")
        if ref.sha256 is not None and not isinstance(ref.sha256, str):
            raise RequestError(f"The {role} LoRA's recorded hash {ref.sha256!r} is not text.")
        check_utf8(f"The {role} LoRA path", ref.path)
        check_number(f"The {role} LoRA weight", ref.weight, *LORA_WEIGHT_RANGE)
    return check


def _side_check(name: str) -> Callable[[Any], Any]:
    def check(side: Any) -> Any:
        side = check_number(f"Image {name}", side, 8, MAX_SIDE, integer=True)
        if side % 8:
            raise RequestError(f"Image {name} {side} is not allowed: use a multiple of 8 between 8 and {MAX_SIDE}.")
        return side
    return check


def _text_check(label: str, *, optional: bool = False) -> Callable[[Any], None]:
    def check(text: Any) -> None:
        if text is None and optional:
            return
        if not isinstance(text, str):
            raise RequestError(f"{label} must be text, not {text!r}.")
        check_utf8(label, text)
        check_text_size(label, text, MAX_PROMPT_CHARS)
    return check


def _choice_check(label: str, choices: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            raise RequestError(f"Unknown {label} {value!r}: choose one of {', '.join(choices)}.")
    return check


def _check_switches(value: Any) -> None:
    if not isinstance(value, FusionSwitches) or not all(isinstance(v, bool) for v in dataclasses.astuple(value)):
        raise RequestError(f"The fusion switches must be four true/false values, not {value!r}.")


def _check_peer_mode(value: Any) -> None:
    if value is not None and value not in PEER_MODES:
        raise RequestError(f"Unknown peer fusion mode {value!r}: choose one of {', '.join(PEER_MODES)}.")


def _check_mapping(label: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value is not None and not isinstance(value, dict):
            raise RequestError(f"{label} must be an object, not {value!r}.")
    return check


def _check_curves(value: Any) -> None:
    if value is not None:
        CurveSet.from_dict(value)  # CurveError (a RequestError) names the curve and point


def _strength_check(label: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        value = check_number(label, value, 0.0, 1.0)
        if value <= 0.0:
            raise RequestError(f"{label} must be above 0 and at most 1 (1 = redraw completely), not {value:g}.")
        return value
    return check


def _check_hires_factor(value: Any) -> Any:
    return check_number("The hires factor", value, *HIRES_FACTOR_RANGE)


def _check_preview(value: Any) -> None:
    check_number("The preview interval", value, 0, 1000, integer=True)


# One check per field: `validate` runs them all, `from_record` drops the fields that fail theirs.
_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "model": _text_check("The model path"),
    "prompt": _text_check("The prompt"),
    "negative_prompt": _text_check("The negative prompt"),
    "width": _side_check("width"),
    "height": _side_check("height"),
    "steps": lambda v: check_number("Steps", v, *STEPS_RANGE, integer=True),
    "cfg_scale": lambda v: check_number("CFG scale", v, *CFG_RANGE),
    "scheduler": _choice_check("scheduler", SCHEDULERS),
    "batch_count": lambda v: check_number("Batch count", v, *BATCH_RANGE, integer=True),
    "seed": lambda v: check_number("Seed", v, *SEED_RANGE, integer=True),
    "device": _choice_check("device", DEVICES),
    "preview_every": _check_preview,
    "content_lora": _lora_check("content"),
    "style_lora": _lora_check("style"),
    "backbone": _text_check("The backbone path", optional=True),
    "switches": _check_switches,
    "curves": _check_curves,
    "routing_overrides": _check_mapping("The routing overrides"),
    "routing_preset": _choice_check("routing preset", ROUTING_PRESETS),
    "init_image": _text_check("The init image path", optional=True),
    "init_image_sha256": _text_check("The init image's recorded hash", optional=True),
    "strength": _strength_check("The denoising strength"),
    "mask": _text_check("The mask path", optional=True),
    "mask_sha256": _text_check("The mask's recorded hash", optional=True),
    "mask_blur": lambda v: check_number("The mask blur", v, *MASK_BLUR_RANGE, integer=True),
    "hires_factor": _check_hires_factor,
    "hires_strength": _strength_check("The hires strength"),
    "hires_steps": lambda v: check_number("Hires steps", v, 0, STEPS_RANGE[1], integer=True),
    "peer_mode": _check_peer_mode,
}


def _coerce(name: str, value: Any) -> Any:
    """JSON form → field value for the nested fields; TypeError when the shape is wrong."""
    if name in ("content_lora", "style_lora") and value is not None:
        if not isinstance(value, dict):
            raise RequestError(f"The {name.split('_')[0]} LoRA must be an object with a path and a weight, "
                               f"not {value!r}.")
        return LoraRef(**value)
    if name == "switches":
        if not isinstance(value, dict):
            raise RequestError(f"The fusion switches must be an object, not {value!r}.")
        return FusionSwitches(**value)
    return value


@dataclass
class GenerateResult:
    """Images (PIL images, opaque here) with the request that made them and what was used."""

    request: GenerateRequest
    images: list[Any]
    seeds: list[int]
    family: str
    model_name: str
    device: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)  # sampler records (curves per step, γ...)
