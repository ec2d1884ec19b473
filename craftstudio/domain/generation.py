"""What to generate (`GenerateRequest`) and what came out (`GenerateResult`).

Everything that affects an output is in the request, so every image can be reproduced from the
request recorded in its PNG. Image `i` of a batch uses seed `seed + i`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from craftstudio.domain.errors import RequestError

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
MAX_SIDE = 4096


class FusionMode(StrEnum):
    """`craft` = every CRAFT component; `direct` = the plain weighted merge other tools do."""

    CRAFT = "craft"
    DIRECT = "direct"
    CUSTOM = "custom"


@dataclass(frozen=True)
class FusionSwitches:
    """The ablation switches of DESIGN.md §1 (all on = `craft`, all off = `direct`)."""

    backbone: bool = True
    routing: bool = True
    asymmetric: bool = True
    gates: bool = True

    @classmethod
    def for_mode(cls, mode: FusionMode | str) -> FusionSwitches:
        return cls(False, False, False, False) if FusionMode(mode) is FusionMode.DIRECT else cls()

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
    # How to run, not what comes out (results match within the reference tolerance):
    # fast = compiled UNet with CUDA graphs; low_vram = CPU offload, VAE tiling, one image per call.
    fast: bool = False
    low_vram: bool = False

    @property
    def mode(self) -> FusionMode:
        return self.switches.mode

    def validate(self) -> None:
        """Raise `RequestError` with one clear sentence for the first invalid setting."""
        if not self.model:
            raise RequestError("No model is chosen: pick a base model folder or .safetensors file.")
        for name, side in (("width", self.width), ("height", self.height)):
            if side < 8 or side % 8 or side > MAX_SIDE:
                raise RequestError(
                    f"Image {name} {side} is not allowed: use a multiple of 8 between 8 and {MAX_SIDE}."
                )
        if self.steps < 1 or self.steps > 1000:
            raise RequestError(f"Steps must be between 1 and 1000, not {self.steps}.")
        if self.cfg_scale < 0 or self.cfg_scale > 100:
            raise RequestError(f"CFG scale must be between 0 and 100, not {self.cfg_scale}.")
        if self.scheduler not in SCHEDULERS:
            raise RequestError(
                f"Unknown scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}."
            )
        if self.batch_count < 1 or self.batch_count > 100:
            raise RequestError(f"Batch count must be between 1 and 100, not {self.batch_count}.")
        if not 0 <= self.seed < 2**63:
            raise RequestError(f"Seed must be between 0 and 2^63-1, not {self.seed}.")
        if self.device not in DEVICES:
            raise RequestError(f"Unknown device {self.device!r}: choose one of {', '.join(DEVICES)}.")
        if self.preview_every < 0:
            raise RequestError("Preview interval cannot be negative.")

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_count)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateRequest:
        """Build a request from JSON data; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("content_lora", "style_lora"):
            if isinstance(kwargs.get(key), dict):
                kwargs[key] = LoraRef(**kwargs[key])
        if isinstance(kwargs.get("switches"), dict):
            kwargs["switches"] = FusionSwitches(**kwargs["switches"])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise RequestError(f"The recorded request is incomplete or malformed ({exc}).") from exc


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
