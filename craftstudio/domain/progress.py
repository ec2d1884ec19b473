"""Progress events sent by long engine calls to their `progress` callback."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One unit of work done. `stage` is e.g. "load", "denoise", "decode", "train"."""

    stage: str
    step: int
    total: int
    image_index: int = 0
    image_count: int = 1
    message: str = ""
    values: dict[str, float] | None = None  # e.g. {"loss": 0.12, "eta_s": 30.0}

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


@dataclass(frozen=True)
class PreviewEvent:
    """A cheap preview of the image being denoised (a PIL image, kept opaque here)."""

    step: int
    total: int
    image: Any
    image_index: int = 0


ProgressCallback = Callable[[ProgressEvent | PreviewEvent], None]
