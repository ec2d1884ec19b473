"""Routed, gated LoRA layers for the CRAFT sampler (Eq. 8 and Eq. 10).

For the length of one generation, each UNet module that a LoRA touches gets an instance-level
`forward` that adds up(down(x))·scale·gate to the rows of the batch selected by the shared
`BranchState` — the conditional rows under asymmetric CFG, so the unconditional branch never
carries a LoRA — and skips a LoRA entirely while its gate is 0. No weight is copied and no module
is replaced; deleting the instance attribute restores the class's forward.

Speed: the UNet's eager step is launch-bound, so the extra work per layer is kept to two kernels
(x·Aᵀ, then an in-place addmm of h·Bᵀ into the output rows) and a few Python operations; gates are
plain floats set once per step.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets


@dataclass
class BranchState:
    """What the LoRA layers do on the current UNet call (set by the sampler before it)."""

    rows: slice | None = None  # rows that get LoRA deltas; None = no row
    gates: dict[str, float] = field(default_factory=lambda: {CONTENT: 0.0, STYLE: 0.0})


@dataclass
class Branch:
    role: str
    delta: ModuleDelta
    # For linear deltas: Aᵀ (in × r) and Bᵀ (r × out), pre-transposed views for matmul/addmm.
    a_t: torch.Tensor | None
    b_t: torch.Tensor | None


def _branch(role: str, delta: ModuleDelta) -> Branch:
    if isinstance(delta.down, nn.Linear) and isinstance(delta.up, nn.Linear) and delta.up.bias is None:
        return Branch(role, delta, delta.down.weight.t(), delta.up.weight.t())
    return Branch(role, delta, None, None)  # conv or biased LoRA: go through the modules


def _craft_forward(self, x, *args, **kwargs):
    y = type(self).forward(self, x, *args, **kwargs)
    state = self._craft_state
    rows = state.rows
    if rows is None:
        return y
    for branch in self._craft_branches:
        gate = state.gates[branch.role]
        if gate == 0.0:
            continue
        alpha = branch.delta.scale * gate
        yr = y[rows]
        xr = x[rows]
        if branch.a_t is not None and yr.is_contiguous():
            h = xr.matmul(branch.a_t)
            yr.view(-1, yr.shape[-1]).addmm_(h.view(-1, h.shape[-1]), branch.b_t, alpha=alpha)
        else:
            yr.add_(branch.delta.up(branch.delta.down(xr)), alpha=alpha)
    return y


@dataclass
class InstallReport:
    """How many UNet modules each LoRA acts on, and how many routing dropped."""

    used: dict[str, int]
    dropped: dict[str, int]
    layers: int

    def to_dict(self) -> dict:
        return {"used": self.used, "dropped": self.dropped, "layers": self.layers}


def lora_branches(module: nn.Module) -> list[Branch]:
    """The LoRA branches installed on `module` (empty when none)."""
    return list(getattr(module, "_craft_branches", ()))


@contextmanager
def installed(unet: nn.Module, loras: dict[str, LoraWeights], state: BranchState,
              sets: LayerSets | None) -> Iterator[InstallReport]:
    """Give the modules the LoRAs touch their LoRA branches (only their own set's when `sets` is
    given, i.e. routing on); restore the modules on exit, whatever happens."""
    touched: dict[str, nn.Module] = {}
    used = {role: 0 for role in loras}
    dropped = {role: 0 for role in loras}
    try:
        for role, lora in loras.items():
            for name, delta in lora.deltas.items():
                if sets is not None and sets.role_of(name) != role:
                    dropped[role] += 1
                    continue
                module = touched.get(name)
                if module is None:
                    module = touched[name] = unet.get_submodule(name)
                    module._craft_state = state
                    module._craft_branches = []
                    module.forward = types.MethodType(_craft_forward, module)
                module._craft_branches.append(_branch(role, delta))
                used[role] += 1
        yield InstallReport(used=used, dropped=dropped, layers=len(touched))
    finally:
        for module in touched.values():
            for attr in ("forward", "_craft_state", "_craft_branches"):
                module.__dict__.pop(attr, None)
