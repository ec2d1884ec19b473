"""What both trainers share: loading the model to train, the step loop (cancel checks, progress
with loss and ETA, checkpoints, sample images), and the user-facing errors of a run (output
exists, out of memory, a diverged loss).

A cancel is honoured between steps: the loop writes a checkpoint of the steps done (when
checkpoints are on), then raises `Cancelled`; the trainer has written no output file by then.
On several processes (replicas.py) the processes agree on the stop at the same step boundary,
and only the main one writes the checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import OutOfMemory, RequestError, UserError
from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.engine.devices import is_out_of_memory, pick_device
from craftstudio.engine.loader import LoadedModel, load_model
from craftstudio.engine.training.denoising import native_resolution
from craftstudio.engine.training.precision import Precision, resolve_precision
from craftstudio.engine.training.replicas import Replicas

STAGE = "train"
# Non-finite losses in a row that mean the weights are ruined. One alone is not: with fp16 loss
# scaling an overflowing step is skipped and the scale lowered, and training goes on.
DIVERGED_AFTER = 5


class OutputExists(UserError):
    """The output file exists and overwriting was not asked for."""


class Diverged(UserError):
    """The loss stayed NaN or infinite: the weights are ruined, so nothing is saved."""


def check_output(out: str | Path, overwrite: bool) -> Path:
    path = Path(out).expanduser()
    if path.exists() and not overwrite:
        raise OutputExists(f"{path} already exists: choose another output name or allow overwriting "
                           "(--overwrite).")
    if path.is_dir():
        raise UserError(f"{path} is a folder: name a .safetensors file to write.")
    return path


@dataclass
class TrainingModel:
    device: torch.device
    precision: Precision
    model: LoadedModel  # loaded fresh, never the shared cached instance: training changes it
    resolution: int  # the request's, else the model's native size
    replicas: Replicas  # this process alone, or its place among the launched processes


def load_training_model(request, progress: ProgressCallback | None) -> TrainingModel:
    """Device, precision and model of a training request (`device`, `mixed_precision`, `model`,
    `resolution` fields). In a launched process the device is that process's own GPU."""
    replicas = Replicas.current(pick_device(request.device))
    if replicas.world > 1 and request.batch_size % replicas.world:  # a user's `accelerate launch` chose it
        raise RequestError(f"The batch size {request.batch_size} does not split evenly over {replicas.world} "
                           f"processes: use a multiple of {replicas.world}.")
    device = replicas.device
    precision = resolve_precision(request.mixed_precision, device)
    tell(progress, "load", "loading model")
    model = load_model(request.model, device, precision.load_dtype)
    return TrainingModel(device, precision, model, request.resolution or native_resolution(model), replicas)


def report_skipped(progress: ProgressCallback | None, skipped: list[tuple[str, str]]) -> None:
    for path, reason in skipped:
        tell(progress, "prepare", f"skipped {path}: {reason}")


def tell(progress: ProgressCallback | None, stage: str, message: str, step: int = 0, total: int = 1) -> None:
    if progress is not None:
        progress(ProgressEvent(stage, step, total, message=message))


@contextmanager
def user_errors(device: torch.device, what: str):
    """Turn running out of device memory into a clear `OutOfMemory`."""
    try:
        yield
    except Exception as exc:
        if is_out_of_memory(exc):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemory(f"{device.type.upper()} ran out of memory while {what}: lower the resolution, "
                              "batch size or rank, keep gradient checkpointing on, or close other GPU "
                              "programs.") from exc
        raise


def raise_if_cancelled(cancel: CancelToken | None, replicas: Replicas) -> None:
    """`Cancelled` on every process when any was cancelled (before the step loop)."""
    if replicas.agree(cancel is not None and cancel.cancelled):
        raise Cancelled("cancelled by the user")


@dataclass
class LoopHooks:
    """What the trainer does per step; the loop does the rest."""

    step: Callable[[int], dict[str, float]]  # one optimisation step → its loss terms
    checkpoint: Callable[[int], None]  # write a checkpoint after `step` steps are done
    sample: Callable[[int], None] | None = None  # make a sample image after `step` steps


def run_steps(hooks: LoopHooks, *, start: int, total: int, checkpoint_every: int, sample_every: int,
              losses: list[dict[str, float]], progress: ProgressCallback | None,
              cancel: CancelToken | None, replicas: Replicas | None = None) -> None:
    """Steps `start` … `total`−1, appending each step's loss terms to `losses`. With several
    `replicas` the loss terms must already be their mean (the same on every process), so every
    process takes the same decisions here."""
    agree = replicas.agree if replicas is not None else (lambda flag: flag)

    def cancelled() -> bool:
        return agree(cancel is not None and cancel.cancelled)

    began = time.perf_counter()
    last_checkpoint = start
    bad_in_a_row = 0

    def stop(done: int) -> None:
        # Keep the work done so far for a resume, then leave (Cancelled).
        if checkpoint_every and done > last_checkpoint:
            hooks.checkpoint(done)
        raise Cancelled("cancelled by the user")

    for step in range(start, total):
        if cancelled():
            stop(step)
        terms = hooks.step(step)
        losses.append(terms)
        done = step + 1
        loss = terms.get("loss", 0.0)
        bad_in_a_row = 0 if math.isfinite(loss) else bad_in_a_row + 1
        if bad_in_a_row >= DIVERGED_AFTER:
            # Checkpoints skip steps with a bad loss, so the last one (if any) predates the trouble.
            raise Diverged(f"Training diverged at step {done} of {total}: the loss has been {loss} for "
                           f"{bad_in_a_row} steps in a row, so nothing was saved. Lower the learning rate "
                           "(--lr) and train again.")
        elapsed = time.perf_counter() - began
        eta = elapsed / (done - start) * (total - done)
        if progress is not None:
            progress(ProgressEvent(STAGE, done, total, message=f"step {done}/{total}",
                                   values={**terms, "eta_s": eta}))
        if checkpoint_every and done % checkpoint_every == 0 and done < total and not bad_in_a_row:
            hooks.checkpoint(done)
            last_checkpoint = done
        if hooks.sample is not None and sample_every and (done % sample_every == 0 or done == total):
            try:
                hooks.sample(done)
            except Cancelled:
                stop(done)
    if cancelled():
        stop(total)
