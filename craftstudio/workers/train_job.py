"""`TrainJob`: train a LoRA or backbone on the worker thread, then put it in the library.

The job runs `engine.training.train` (imported inside `run`, so the GUI opens before torch
loads) with the page's request, exactly as `python -m craftstudio train` does, and adds what the
command line leaves to the user:

- every sample image (a `PreviewEvent`) is saved as `<out>.samples/step-000100.png`, the CLI's
  layout, before the event is passed on to the page;
- the last sample becomes `<stem>.preview.png` beside the file, which the library shows;
- the file is registered in the library (in place: a file inside the library folders belongs to
  it, one elsewhere stays where the user put it) with its role and trigger phrase, which the
  library reads from the file's metadata, and the base model it was trained on.

`DeviceProbeJob` answers what the Train page needs to pick a memory preset: the accelerator
and its memory, or the CPU, and every CUDA GPU (for training on several). It imports torch, so
it too runs only on the worker thread.
"""

from __future__ import annotations

import importlib.util
import io
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import PreviewEvent, ProgressCallback, ProgressEvent
from craftstudio.domain.training import LoraTrainRequest, TrainRequest, TrainResult

# train(request, *, progress=..., cancel=..., resume=...) -> TrainResult (craftstudio.engine.training)
TrainFn = Callable[..., TrainResult]
PREVIEW_SUFFIX = ".preview.png"


def engine_train(request: TrainRequest, *, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    """The real engine, imported on first use (on the worker thread)."""
    from craftstudio.engine.training import train

    return train(request, progress=progress, cancel=cancel, resume=resume)


def samples_folder(out: str | Path) -> Path:
    """Where a run's sample images go (the same place the CLI puts them)."""
    out = Path(out).expanduser()
    return out.with_name(out.name + ".samples")


def preview_path(out: str | Path) -> Path:
    """`name.preview.png` beside `name.safetensors`: the preview the library reads."""
    out = Path(out).expanduser()
    return out.with_name(out.stem + PREVIEW_SUFFIX)


@dataclass
class TrainOutput:
    """What a finished `TrainJob` hands back."""

    result: TrainResult
    samples: list[Path] = field(default_factory=list)
    preview: Path | None = None
    item_id: str | None = None  # the library item, None when it could not be registered
    library_note: str = ""  # why registering failed (the file itself is fine)

    @property
    def path(self) -> Path:
        return Path(self.result.out)


class TrainJob:
    def __init__(self, request: TrainRequest, *, resume: bool = False, engine: TrainFn | None = None,
                 library_home: Path | None = None) -> None:
        self.request = request
        self.resume = resume
        self._engine = engine or engine_train
        self._home = library_home

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> TrainOutput:
        samples: list[Path] = []
        folder = samples_folder(self.request.out)
        if not self.resume and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)  # a fresh run: old samples would mislead

        def forward(event: Any) -> None:
            if isinstance(event, PreviewEvent):
                path = folder / f"step-{event.step:06d}.png"
                _save_png(event.image, path)
                samples.append(path)
            progress(event)

        result = self._engine(self.request, progress=forward, cancel=cancel, resume=self.resume)
        out = TrainOutput(result, samples)
        if not samples and folder.is_dir():  # a resumed run made its samples before the stop
            samples.extend(sorted(folder.glob("step-*.png")))
        if samples:
            out.preview = preview_path(result.out)
            shutil.copyfile(samples[-1], _tmp_beside(out.preview))
            _tmp_beside(out.preview).replace(out.preview)
        progress(ProgressEvent("register", 0, 1, message="adding to the library"))
        out.item_id, out.library_note = self._register(result)
        return out

    def _register(self, result: TrainResult) -> tuple[str | None, str]:
        from craftstudio.library.catalog import Catalog
        from craftstudio.library.header import read_header

        request = result.request
        try:
            with Catalog.open(self._home) as catalog:
                registered = catalog.import_file(result.out, in_place=True)
                item = registered.item
                if item is None:
                    return None, registered.reason or "not recognised"
                meta = {**item.meta, "base_model": request.model}
                if isinstance(request, LoraTrainRequest):
                    meta["trigger"] = request.trigger
                    if request.backbone:
                        meta["backbone"] = request.backbone
                # A LoRA names its base model by fingerprint, as a backbone does (identify reads that).
                fingerprint = read_header(Path(result.out)).metadata.get("craft.base_fingerprint")
                fields: dict[str, Any] = {"meta": meta}
                if fingerprint and not item.base_model_hash:
                    fields["base_model_hash"] = fingerprint
                catalog.items.update_fields(item.id, **fields)
                return item.id, ""
        except UserError as exc:  # the trained file is written and fine; only the catalog failed
            return None, str(exc)


def _tmp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _save_png(image: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    tmp = _tmp_beside(path)
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


@dataclass(frozen=True)
class DeviceInfo:
    """The training device: "cuda", "mps" or "cpu", its name and memory (0 when unknown)."""

    kind: str
    name: str
    memory_gb: float = 0.0
    has_bitsandbytes: bool = False
    gpus: tuple[str, ...] = ()  # every CUDA GPU's label, by number (as nvidia-smi counts them)

    @property
    def label(self) -> str:
        if self.kind == "cpu":
            return "CPU"
        size = f", {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.name}{size}"


def may_have_accelerator() -> bool:
    """False when this computer surely has no GPU torch could use (no NVIDIA or AMD driver on
    Linux or Windows, an Intel Mac): the page then says "CPU" without loading torch at all."""
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/kfd")
    if sys.platform == "win32":
        system = os.path.join(os.environ.get("SYSTEMROOT", r"C:\Windows"), "System32")
        return any(os.path.exists(os.path.join(system, dll)) for dll in ("nvcuda.dll", "amdhip64.dll"))
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return True


CPU_ONLY = DeviceInfo("cpu", "CPU")


class DeviceProbeJob:
    """Which device training would use and how much memory it has."""

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> DeviceInfo:
        import torch

        bnb = importlib.util.find_spec("bitsandbytes") is not None
        if torch.cuda.is_available():
            every = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
            gpus = tuple(f"{p.name}, {p.total_memory / 2**30:.0f} GB" for p in every)
            return DeviceInfo("cuda", every[0].name, every[0].total_memory / 2**30, bnb, gpus)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            # Apple silicon shares system memory with the GPU; torch reports the allocator's cap.
            memory = torch.mps.recommended_max_memory() / 2**30 if hasattr(torch.mps, "recommended_max_memory") \
                else 0.0
            return DeviceInfo("mps", "Apple GPU", memory, False)
        return DeviceInfo("cpu", "CPU", 0.0, False)
