"""`MergeJob`: a ZipLoRA merge on the job runner (progress with the loss terms, cancel between
steps; a cancelled merge writes nothing). The engine loads when the job runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.merging import ZipLoraRequest
from craftstudio.domain.progress import ProgressCallback

MergeFn = Callable[..., Any]


def engine_merge(request: ZipLoraRequest, *, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None):
    from craftstudio.engine.training.ziplora import merge_ziplora

    return merge_ziplora(request, progress=progress, cancel=cancel)


class MergeJob:
    kind = "merge"

    def __init__(self, request: ZipLoraRequest, engine: MergeFn | None = None) -> None:
        self.request = request
        self._engine = engine or engine_merge

    @property
    def label(self) -> str:
        return (f"ZipLoRA: {Path(self.request.content_lora).stem} + {Path(self.request.style_lora).stem} "
                f"→ {Path(self.request.out).name}")

    def run(self, progress: ProgressCallback, cancel: CancelToken):
        return self._engine(self.request, progress=progress, cancel=cancel)
