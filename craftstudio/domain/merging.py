"""What to merge (`ZipLoraRequest`): a content LoRA and a style LoRA into one LoRA file by ZipLoRA.

ZipLoRA (arXiv 2311.13600) learns, for every layer both LoRAs touch, one merger coefficient per
input column of each LoRA's ΔW, so that the merged LoRA reproduces the content LoRA on content
pictures and the style LoRA on style pictures while the two LoRAs' coefficient vectors are kept
apart (their cosine similarity is penalised). The result is an ordinary LoRA file that any tool
loads. engine/training/ziplora.py says how it is computed.

Pictures: each LoRA's own reference pictures when given (a folder or files, with the prompt it
was trained with); without them, pictures the LoRA draws from its prompt alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import DEVICES
from craftstudio.domain.markers import strip_markers
from craftstudio.domain.training import check_learning_rate, check_resolution, check_seed

# The published recipe: 100 steps, similarity weight 0.01.
DEFAULT_STEPS = 100
DEFAULT_SIMILARITY_WEIGHT = 0.01
# Merger coefficients start at 1 (the direct merge) and move by Adam steps of about this size.
DEFAULT_LEARNING_RATE = 0.01
DEFAULT_SAMPLES = 4  # pictures a LoRA draws for itself when no references are given


@dataclass(frozen=True)
class ZipLoraRequest:
    kind: ClassVar[str] = "ziplora"

    model: str
    content_lora: str
    style_lora: str
    content_prompt: str  # what the content LoRA was trained with, e.g. "a photo of sks dog"
    style_prompt: str  # e.g. "a painting in ohwx style"
    out: str
    content_images: tuple[str, ...] = ()  # reference pictures; () = the LoRA draws its own
    style_images: tuple[str, ...] = ()
    steps: int = DEFAULT_STEPS
    learning_rate: float = DEFAULT_LEARNING_RATE
    similarity_weight: float = DEFAULT_SIMILARITY_WEIGHT
    samples: int = DEFAULT_SAMPLES
    resolution: int = 0  # 0 = the model's native size
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "auto"
    overwrite: bool = False

    def validate(self) -> None:
        if not self.model:
            raise RequestError("No base model is chosen: pick the model both LoRAs were trained for.")
        if not self.content_lora or not self.style_lora:
            raise RequestError("ZipLoRA merges two LoRAs: choose a content LoRA and a style LoRA.")
        if self.content_lora == self.style_lora:
            raise RequestError(f"The content and style LoRA are the same file ({self.content_lora}): choose two.")
        for what, prompt in (("content", self.content_prompt), ("style", self.style_prompt)):
            if not prompt.strip():
                raise RequestError(f"The {what} prompt is empty: give the prompt the {what} LoRA was trained "
                                   "with (its trigger phrase in a caption).")
            strip_markers(prompt)
        if not self.out or not self.out.lower().endswith(".safetensors"):
            raise RequestError(f"Output {self.out or '(none)'} must be a .safetensors file.")
        if not 1 <= self.steps <= 100_000:
            raise RequestError(f"Merge steps must be between 1 and 100000, not {self.steps}.")
        check_learning_rate(self.learning_rate)
        if not 0 <= self.similarity_weight <= 100:
            raise RequestError(f"The similarity weight must be between 0 and 100, not {self.similarity_weight}.")
        if not 1 <= self.samples <= 64:
            raise RequestError(f"Pictures per LoRA must be between 1 and 64, not {self.samples}.")
        check_resolution(self.resolution, "Resolution")
        check_seed(self.seed)
        if self.device not in DEVICES:
            raise RequestError(f"Unknown device {self.device!r}: choose one of {', '.join(DEVICES)}.")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["content_images"], data["style_images"] = list(self.content_images), list(self.style_images)
        return {"kind": self.kind, **data}
