"""`GenerateJob`: run one generation on the worker thread and save its images as PNGs.

The engine is imported inside `run` (first call loads torch and diffusers, seconds), never at
module import, so the GUI opens before torch is loaded. The engine function is injectable so
state and UI tests can drive the whole path with a scriptable fake.

The job, not the engine, writes the files: the engine returns images, and saving with the full
request (png_params) belongs to the app's library of outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.file_names import DEFAULT_TEMPLATE, render_name
from craftstudio.domain.generation import GenerateRequest, GenerateResult
from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.library.paths import AppPaths
from craftstudio.library.png_params import save_png

# generate(request, *, progress=..., cancel=...) -> GenerateResult (craftstudio.engine.generation)
GenerateFn = Callable[..., GenerateResult]


def engine_generate(request: GenerateRequest, *, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> GenerateResult:
    """The real engine, imported on first use (on the worker thread)."""
    from craftstudio.engine.generation import generate

    return generate(request, progress=progress, cancel=cancel)


@dataclass
class GenerateOutput:
    """What a finished `GenerateJob` hands back: the engine's result and the saved files."""

    result: GenerateResult
    paths: list[Path] = field(default_factory=list)

    @property
    def images(self) -> list[Any]:
        return self.result.images


class GenerateJob:
    """`name_template`: the file stem (domain/file_names.py); `threads`: torch's CPU threads for
    this job, 0 = torch's own default."""

    kind = "generate"

    def __init__(self, request: GenerateRequest, *, engine: GenerateFn | None = None,
                 outputs: Path | None = None, name_template: str = DEFAULT_TEMPLATE,
                 threads: int = 0) -> None:
        self.request = request
        self._engine = engine or engine_generate
        self._outputs = outputs
        self._name_template = name_template
        self._threads = threads

    @property
    def label(self) -> str:
        """How the queue names this job: the prompt's start, the seed, the mode, and whether it
        starts from a picture or enlarges."""
        prompt = " ".join(self.request.prompt.split())
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        request = self.request
        extras = []
        if request.init_image is not None:
            extras.append(f"{'inpaint' if request.mask else 'from picture'} {request.strength:g}")
        if request.hires_factor != 1.0:
            extras.append(f"hires ×{request.hires_factor:g}")
        return " · ".join([prompt or "(no prompt)", f"seed {request.seed}", request.mode.value, *extras])

    def duplicate(self) -> GenerateJob:
        return GenerateJob(self.request, engine=self._engine, outputs=self._outputs,
                           name_template=self._name_template, threads=self._threads)

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> GenerateOutput:
        if self._threads or _torch_default_threads is not None:
            _use_threads(self._threads)
        result = self._engine(self.request, progress=progress, cancel=cancel)
        # Cancel pressed after the last step: the user no longer wants these images.
        cancel.raise_if_cancelled()
        folder = self._outputs or AppPaths.default().outputs
        when = time.localtime()
        paths: list[Path] = []
        count = len(result.images)
        for index, (image, seed) in enumerate(zip(result.images, result.seeds, strict=True)):
            progress(ProgressEvent("save", index, count, image_index=index, image_count=count))
            stem = render_name(self._name_template, self.request, seed=seed, index=index, when=when,
                               model_name=result.model_name)
            # The engine's copy of the request carries the hashes of the files it read.
            paths.append(save_new_png(image, folder, stem, result.request, seed, result.model_name))
        return GenerateOutput(result, paths)


def save_new_png(image: Any, folder: Path, stem: str, request: GenerateRequest, seed: int, model_name: str) -> Path:
    """Save under a free name; the GUI never replaces a file, even one another program (or a
    second CraftStudio) created under the same name while this one was being written."""
    while True:
        try:
            return save_png(image, free_name(folder, stem), request, seed=seed, model_name=model_name,
                            overwrite=False)
        except FileExistsError:
            continue


_torch_default_threads: int | None = None  # torch's own thread count, kept for "0 = default"


def _use_threads(count: int) -> None:
    """Set torch's CPU threads (process-wide; jobs run one at a time on one worker thread)."""
    global _torch_default_threads
    import torch

    if _torch_default_threads is None:
        _torch_default_threads = torch.get_num_threads()
    wanted = count or _torch_default_threads
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def free_name(folder: Path, stem: str) -> Path:
    """`stem.png`, or `stem-2.png`... when that name is taken: an image never overwrites another."""
    path = folder / f"{stem}.png"
    counter = 2
    while path.exists():
        path = folder / f"{stem}-{counter}.png"
        counter += 1
    return path
