"""`Replicas`: the processes that train one run together (data parallel), or just this one.

A run on N processes is N replicas of the same trainer, started by accelerate's launcher
(launcher.py, or a user's own `accelerate launch -m craftstudio train ...`). Each holds the whole
model and the same trainable weights; each takes its share of every global batch; DDP (through
`Accelerator.prepare_model`) averages the gradients in backward, so every replica applies the
same update and the weights stay identical. One process (no launcher) is the same object with
`world == 1`, where every method is the identity: the trainers have one code path.

What makes N processes train what one process trains:

- The global batch of step k is drawn exactly as in one process (a pure function of the seed
  and k, denoising.py) and replica r takes rows [r·b/N, (r+1)·b/N). Each replica's loss is the
  mean over its rows; DDP averages the replicas' gradients, which is the mean over the global
  batch: the one-process gradient, up to float summation order.
- The loss terms are averaged over the replicas before they are logged, so the history, the
  divergence check and the stop decisions are the same number on every replica (they must be:
  a replica that decided differently would leave the others waiting in a collective forever).
- A cancel seen by any replica stops all of them at the same step boundary (`agree`, accelerate's
  trigger: one all-reduce of a flag per step).
- Cached latents and caption embeddings are computed once, by the main process, and broadcast
  (`share`): tensors only, nothing pickled but their names and shapes.
- Only the main process logs, makes sample images, writes checkpoints and the output file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")
WORLD_ENV = "WORLD_SIZE"  # set by torchrun (and so by `accelerate launch --multi_gpu`) in each process


def launched() -> bool:
    """True inside a process that a distributed launcher started as one of several."""
    try:
        return int(os.environ.get(WORLD_ENV, "1")) > 1
    except ValueError:
        return False


@dataclass
class Replicas:
    device: torch.device
    world: int = 1
    rank: int = 0
    accelerator: Any = None  # accelerate.Accelerator when world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def single(cls, device: torch.device) -> Replicas:
        return cls(device)

    @classmethod
    def current(cls, device: torch.device) -> Replicas:
        """This process's place: alone on `device`, or one of the launched processes (then the
        device is accelerate's: cuda:<local rank> on GPUs, the CPU with gloo)."""
        if not launched():
            return cls.single(device)
        from accelerate import Accelerator, DistributedDataParallelKwargs

        # Mixed precision stays ours (precision.py); accelerate only sets up the group and DDP.
        # Every trainable tensor gets a gradient every step, so DDP needs no unused-parameter scan.
        accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="no",
                                  kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
        return cls(accelerator.device, accelerator.num_processes, accelerator.process_index, accelerator)

    # ---------- data
    def rows(self, global_batch: int) -> slice:
        """This replica's rows of a global batch (validated to split evenly)."""
        share = global_batch // self.world
        return slice(self.rank * share, (self.rank + 1) * share)

    # ---------- model
    def wrap(self, module: torch.nn.Module, *, one_bucket: bool = False) -> torch.nn.Module:
        """`module` under DDP (its trainable parameters' gradients averaged in backward). With
        `one_bucket`, every gradient goes into one all-reduce after the backward instead of DDP's
        25 MiB buckets during it: a compiled step is then not split at each bucket (an SDXL
        content LoRA has 228 MiB of fp32 gradients, ten buckets)."""
        if self.world == 1:
            return module
        if not one_bucket:
            return self.accelerator.prepare_model(module, device_placement=False)
        from accelerate import DistributedDataParallelKwargs

        size = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
        usual = self.accelerator.ddp_handler
        self.accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=False,
                                                                     bucket_cap_mb=math.ceil(size / 2**20) + 1)
        try:
            return self.accelerator.prepare_model(module, device_placement=False)
        finally:
            self.accelerator.ddp_handler = usual

    # ---------- agreement
    def mean(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """Loss terms averaged over the replicas, as plain numbers (one all-reduce)."""
        if not terms:
            return {}
        names = list(terms)  # the same order on every replica: the trainers build it so
        stacked = torch.stack([terms[k].detach().float().reshape(()) for k in names])
        if self.world > 1:
            stacked = self.accelerator.reduce(stacked.to(self.device), reduction="mean")
        return dict(zip(names, stacked.cpu().tolist(), strict=True))

    def agree(self, flag: bool) -> bool:
        """True on every replica when `flag` is true on any (a stop decided together)."""
        if self.world == 1:
            return flag
        if flag:
            self.accelerator.set_trigger()
        return bool(self.accelerator.check_trigger())

    def share(self, make: Callable[[], T], cls: type[T]) -> T:
        """`make()` run by the main process only, its tensors broadcast to every replica. `make`
        returns a `cls`, a dataclass whose fields are tensors, dicts of tensors or None."""
        if self.world == 1:
            return make()
        from accelerate.utils import broadcast, broadcast_object_list

        value = make() if self.is_main else None
        flat = _flatten(value) if self.is_main else {}
        spec: list[Any] = [{k: (tuple(t.shape), str(t.dtype).removeprefix("torch.")) for k, t in flat.items()}
                           if self.is_main else None]
        broadcast_object_list(spec)  # names, shapes and dtypes only
        shapes = spec[0]
        out = {}
        for key, (shape, dtype) in shapes.items():
            tensor = flat[key].to(self.device).contiguous() if self.is_main else torch.empty(
                shape, dtype=getattr(torch, dtype), device=self.device)
            out[key] = broadcast(tensor, from_process=0)
        return value if self.is_main else cls(**_unflatten(out))


def _flatten(value: Any) -> dict[str, torch.Tensor]:
    assert is_dataclass(value), type(value)
    flat: dict[str, torch.Tensor] = {}
    for f in fields(value):
        item = getattr(value, f.name)
        if isinstance(item, torch.Tensor):
            flat[f.name] = item
        elif isinstance(item, dict):
            flat.update({f"{f.name}.{k}": v for k, v in item.items()})
    return flat


def _unflatten(flat: dict[str, torch.Tensor]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, tensor in flat.items():
        field_name, _, sub = key.partition(".")
        if sub:
            kwargs.setdefault(field_name, {})[sub] = tensor
        else:
            kwargs[field_name] = tensor
    return kwargs
