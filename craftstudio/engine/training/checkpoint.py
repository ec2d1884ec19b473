"""Training checkpoints for resuming after a crash or a cancel, without pickle.

One safetensors file, `<out>.checkpoints/last.safetensors`, written atomically (temp file, then
rename), holds the trainable tensors (`param.<name>`), the optimizer's state tensors
(`optim.<index>.<key>`) and, in its metadata, a JSON document with everything else: the step
reached, the optimizer's scalars and parameter groups, the loss scaler, the loss history and the
training request the run was started with. Nothing is unpickled on resume (torch.save and
torch.load of an optimizer state would use pickle).

A run's randomness is a pure function of (seed, step) (see denoising.py), so parameters,
optimizer state and step are all a resume needs to continue exactly as an uninterrupted run.

Runs on several processes (replicas.py): every process holds the same weights and optimizer
state (DDP keeps them identical), so the main process writes the one checkpoint and every
process resumes from it. The checkpoint records how many processes made it; a resume on another
number is exact all the same (nothing is sharded: each process's rows of a step are a pure
function of the step, the seed, its rank and the count, and the global batch is the same), so it
is allowed and said, not refused. The number of processes must still divide the batch size,
which the request's validation checks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from craftstudio.domain.errors import UserError

FORMAT = "craft-train-checkpoint"
FILE_NAME = "last.safetensors"


def checkpoint_folder(out: str | Path) -> Path:
    out = Path(out).expanduser()
    return out.with_name(out.name + ".checkpoints")


@dataclass
class Checkpoint:
    step: int
    params: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch optimizer state_dict()
    request: dict[str, Any]  # domain.training.comparable(request)
    losses: list[dict[str, float]] = field(default_factory=list)
    scaler: dict[str, float] = field(default_factory=dict)
    processes: int = 1  # how many data-parallel processes made it


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().to("cpu").clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    from safetensors.torch import save_file

    from craftstudio.engine.atomic import atomic_path

    optim_tensors, optim_meta = _split_optimizer(checkpoint.optimizer)
    tensors = {f"param.{k}": v.detach().to("cpu").clone().contiguous() for k, v in checkpoint.params.items()}
    tensors.update(optim_tensors)
    document = {"format": FORMAT, "step": checkpoint.step, "optimizer": optim_meta,
                "request": checkpoint.request, "losses": checkpoint.losses, "scaler": checkpoint.scaler,
                "processes": checkpoint.processes}
    path = folder / FILE_NAME
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"craft.checkpoint": json.dumps(document)})
    return path


def load_checkpoint(folder: Path, total_steps: int | None = None) -> Checkpoint | None:
    """The checkpoint in `folder`, or None if there is none. A damaged or implausible one (step
    outside 0..`total_steps`, NaN/Inf in any tensor, a malformed document) is a `UserError`."""
    from safetensors import safe_open

    path = folder / FILE_NAME
    if not path.is_file():
        return None
    start_over = f"delete the folder {folder} and train without resuming"
    try:
        with safe_open(str(path), framework="pt") as fh:
            document = json.loads((fh.metadata() or {})["craft.checkpoint"])
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # any damage: the message tells what to do
        raise UserError(f"The checkpoint {path} is damaged ({type(exc).__name__}): {start_over}.") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path} is not a CraftStudio training checkpoint: {start_over}.")
    step = document.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or (
            total_steps is not None and step > total_steps):
        limit = f" of a run of {total_steps} steps" if total_steps is not None else ""
        raise UserError(f"The checkpoint {path} records step {step!r}, not a step{limit}: {start_over}.")
    bad = next((name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())),
               None)
    if bad is not None:
        raise UserError(f"The checkpoint {path} holds non-finite values (NaN or Inf) in {bad}: {start_over}.")
    try:
        params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        losses, scaler = document.get("losses", []), document.get("scaler", {})
        if not isinstance(losses, list) or not isinstance(scaler, dict) or not isinstance(document["request"], dict):
            raise TypeError("losses, scaler or request")
        processes = document.get("processes", 1)
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise TypeError("processes")
        return Checkpoint(step=step, params=params, optimizer=_join_optimizer(optim, document["optimizer"]),
                          request=document["request"], losses=losses, scaler=scaler, processes=processes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"The checkpoint {path} is damaged (malformed {exc}): {start_over}.") from exc


def check_matches(checkpoint: Checkpoint, request: dict[str, Any], folder: Path) -> None:
    """Refuse to resume a run whose weight-deciding settings differ from this request's."""
    differing = sorted(k for k in set(request) | set(checkpoint.request)
                       if request.get(k) != checkpoint.request.get(k))
    if differing:
        shown = ", ".join(f"{k} ({checkpoint.request.get(k)!r} there, {request.get(k)!r} now)"
                          for k in differing[:3])
        raise UserError(f"The checkpoint in {folder} was made with other settings: {shown}. Use the same "
                        "settings to resume, or start over without resuming.")


def restore(checkpoint: Checkpoint, params: dict[str, torch.nn.Parameter],
            optimizer: torch.optim.Optimizer, folder: Path) -> None:
    missing = sorted(set(params) ^ set(checkpoint.params))
    if missing:
        raise UserError(f"The checkpoint in {folder} does not fit this model ({missing[0]}): start over "
                        "without resuming.")
    with torch.no_grad():
        for name, param in params.items():
            saved = checkpoint.params[name]
            if saved.shape != param.shape:
                raise UserError(f"The checkpoint in {folder} does not fit this model ({name} has shape "
                                f"{tuple(saved.shape)}): start over without resuming.")
            param.copy_(saved.to(param.device, param.dtype))
    try:
        optimizer.load_state_dict(checkpoint.optimizer)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise UserError(f"The checkpoint in {folder} has an optimizer state that does not fit this run "
                        f"({type(exc).__name__}): start over without resuming.") from exc


def resume_or_start(folder: Path, resume: bool, request: dict[str, Any], params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, precision, losses: list[dict[str, float]],
                    say: Callable[[str], None], total_steps: int | None = None, *, is_main: bool = True,
                    processes: int = 1) -> int:
    """The step to start from: a matching checkpoint's when resuming, else 0 (old ones removed,
    by the main process only)."""
    if not resume:
        if is_main and (folder / FILE_NAME).is_file():
            say(f"starting over: the checkpoint of an earlier run in {folder} is replaced (resume to keep it)")
        if is_main:
            remove_checkpoints(folder)
        return 0
    saved = load_checkpoint(folder, total_steps)
    if saved is None:
        say(f"no checkpoint in {folder}: starting from step 0")
        return 0
    check_matches(saved, request, folder)
    restore(saved, params, optimizer, folder)
    precision.load_state(saved.scaler)
    losses.extend(saved.losses)
    moved = "" if saved.processes == processes else (
        f" (made by {saved.processes} process{'es' if saved.processes > 1 else ''}, continued by {processes}: "
        "every process holds the whole state, so it carries over exactly)")
    say(f"resuming from step {saved.step}{moved}")
    return saved.step


def remove_checkpoints(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
