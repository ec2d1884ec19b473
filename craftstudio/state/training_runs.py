"""Stopped training runs that can be resumed, and a base model's native training size.

A run stopped by Cancel (or a crash) leaves `<out>.checkpoints/last.safetensors`
(engine/training/checkpoint.py): safetensors whose metadata holds a JSON document with the step
reached, the loss history and the settings that decide the weights. The Train page lists such
runs from that header alone (no tensors read, no torch, nothing unpickled) and rebuilds the
request to resume from it: the recorded settings, the output file the folder belongs to, and
the page's current choices for what only changes how a run is watched (sample images,
checkpoint interval, device), which a resume may change (domain.training.RUN_ONLY_FIELDS).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import UserError
from craftstudio.domain.training import RUN_ONLY_FIELDS, TrainRequest, train_request_from_dict
from craftstudio.library.header import UnreadableFile, read_header

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".checkpoints"
CHECKPOINT_FILE = "last.safetensors"  # engine/training/checkpoint.py FILE_NAME
METADATA_KEY = "craft.checkpoint"


@dataclass(frozen=True)
class CheckpointRun:
    """A stopped run: its output file, the step it reached and what it was training."""

    out: Path
    step: int
    settings: dict[str, Any]  # the checkpoint's weight-deciding request fields
    losses: list[dict[str, float]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return int(self.settings.get("steps", 0))

    @property
    def what(self) -> str:
        """"content LoRA", "style LoRA" or "backbone"."""
        if self.settings.get("kind") == "backbone":
            return "backbone"
        return f"{self.settings.get('role', '')} LoRA".strip()

    @property
    def label(self) -> str:
        return f"{self.out.name}: {self.what}, step {self.step} of {self.total}"

    def request(self, run_only: dict[str, Any]) -> TrainRequest:
        """The request that resumes this run; `run_only` supplies the watch-only fields."""
        data = {**self.settings, **{k: v for k, v in run_only.items() if k in RUN_ONLY_FIELDS},
                "out": str(self.out)}
        return train_request_from_dict(data)


def read_run(folder: Path) -> CheckpointRun | None:
    """The run whose checkpoint folder is `folder`, None when it has no readable checkpoint."""
    path = folder / CHECKPOINT_FILE
    try:
        document = json.loads(read_header(path).metadata[METADATA_KEY])
        return CheckpointRun(out=folder.with_name(folder.name[: -len(CHECKPOINT_SUFFIX)]),
                             step=int(document["step"]), settings=dict(document["request"]),
                             losses=list(document.get("losses") or []))
    except (OSError, UnreadableFile, KeyError, ValueError, TypeError) as exc:
        log.info("no resumable run in %s: %s", folder, exc)
        return None


def find_runs(folders: list[Path]) -> list[CheckpointRun]:
    """Resumable runs whose outputs lie in `folders`, newest checkpoint first."""
    found: dict[Path, tuple[float, CheckpointRun]] = {}
    for folder in folders:
        try:
            candidates = [p for p in folder.iterdir() if p.name.endswith(CHECKPOINT_SUFFIX) and p.is_dir()]
        except OSError:
            continue
        for candidate in candidates:
            run = read_run(candidate)
            if run is not None and run.out not in found:
                found[run.out] = ((candidate / CHECKPOINT_FILE).stat().st_mtime, run)
    return [run for _, run in sorted(found.values(), key=lambda item: -item[0])]


def native_resolution(model: str) -> int:
    """The size a model trains at by default (the engine's rule: UNet sample size × VAE scale),
    read from a diffusers folder's configs; 1024 for an SDXL checkpoint file, else 512; 0 when
    the model cannot be read (the page then shows no size warnings)."""
    path = Path(model).expanduser()
    try:
        if path.is_dir():
            unet = json.loads((path / "unet" / "config.json").read_text())
            vae = json.loads((path / "vae" / "config.json").read_text())
            return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
        if path.is_file():
            from craftstudio.library.identify import identify

            family = identify(read_header(path), path).family
            return 1024 if family.value == "sdxl" else 512
    except (OSError, UserError, UnreadableFile, KeyError, ValueError, TypeError) as exc:
        log.info("native size of %s unknown: %s", model, exc)
    except Exception as exc:  # noqa: BLE001 - identify may refuse an odd file in its own ways
        log.info("native size of %s unknown: %s", model, exc)
    return 0
