"""`GenerateJob`: run one generation on the worker thread and save its images as PNGs.

The engine is imported inside `run` (first call loads torch and diffusers, seconds), never at
module import, so the GUI opens before torch is loaded. The engine function is injectable so
state and UI tests can drive the whole path with a scriptable fake.

The job, not the engine, writes the files: the engine returns images, and saving with the full
request (png_params) belongs to the app's library of outputs.

A job given several `devices` (the Settings page's "GPUs for a batch") splits a batch of
several images over them with `split_engine` (engine/multi_device.py): one model per device,
image i seeded seed + i as on one device, so the saved PNGs are those one device makes; the
result's details list the devices and their seeds (the history records them). The real split
engine first leaves out the GPUs this computer does not have (a settings file from another
computer, or a choice remembered before the GPUs were listed); fewer than two left, it is the
ordinary one-device run. A single image, or fewer than two devices, never splits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
# generate_on_devices(request, devices, *, progress=..., cancel=...) -> GenerateResult
SplitFn = Callable[..., GenerateResult]


def engine_generate(request: GenerateRequest, *, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> GenerateResult:
    """The real engine, imported on first use (on the worker thread)."""
    from craftstudio.engine.generation import generate

    return generate(request, progress=progress, cancel=cancel)


def engine_generate_on_devices(request: GenerateRequest, devices: Sequence[str], *,
                               progress: ProgressCallback | None = None,
                               cancel: CancelToken | None = None) -> GenerateResult:
    """The real split over `devices` (those this computer has), imported on first use."""
    from craftstudio.engine.multi_device import generate_on_devices, present

    here = present(devices)
    return generate_on_devices(request, here if len(here) > 1 else None, progress=progress, cancel=cancel)


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
    this job, 0 = torch's own default; `devices`: split a batch over these ("cuda:0", "cuda:1",
    ...; tests use "cpu", "cpu") with `split_engine`."""

    kind = "generate"

    def __init__(self, request: GenerateRequest, *, engine: GenerateFn | None = None,
                 outputs: Path | None = None, name_template: str = DEFAULT_TEMPLATE,
                 threads: int = 0, devices: Sequence[str] = (), split_engine: SplitFn | None = None) -> None:
        self.request = request
        self.devices = tuple(devices)
        self._engine = engine or engine_generate
        self._split_engine = split_engine or engine_generate_on_devices
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
        if self.splits:
            every_gpu = all(name.startswith("cuda") for name in self.devices)
            extras.append(f"on {len(self.devices)} {'GPUs' if every_gpu else 'devices'}")
        return " · ".join([prompt or "(no prompt)", f"seed {request.seed}", request.mode.value, *extras])

    @property
    def splits(self) -> bool:
        """Whether this job splits its batch over several devices."""
        return len(self.devices) > 1 and self.request.batch_count > 1

    def duplicate(self) -> GenerateJob:
        return GenerateJob(self.request, engine=self._engine, outputs=self._outputs,
                           name_template=self._name_template, threads=self._threads, devices=self.devices,
                           split_engine=self._split_engine)

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> GenerateOutput:
        if self._threads or _torch_default_threads is not None:
            _use_threads(self._threads)
        if self.splits:
            result = self._split_engine(self.request, list(self.devices), progress=progress, cancel=cancel)
        else:
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
