"""Routed, gated LoRA layers for the CRAFT sampler (Eq. 8 and Eq. 10).

Each UNet module that a LoRA touches is wrapped by a `CraftLoraLayer` for the length of one
generation (no weight copy; the original module is put back afterwards). The wrapper adds
up(down(x))·scale·gate to the rows of the batch selected by the shared `BranchState` — the
conditional rows under asymmetric CFG, so the unconditional branch never carries a LoRA — and
skips the LoRA entirely while its gate is 0. Gates are plain floats set once per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn

from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets


@dataclass
class BranchState:
    """What the wrapped layers do on the current UNet call (set by the sampler before it)."""

    rows: slice | None = None  # rows that get LoRA deltas; None = no row
    gates: dict[str, float] = field(default_factory=lambda: {CONTENT: 0.0, STYLE: 0.0})


class CraftLoraLayer(nn.Module):
    def __init__(self, base: nn.Module, state: BranchState) -> None:
        super().__init__()
        self.base = base
        self.state = state
        self.branches: list[tuple[str, ModuleDelta]] = []

    def forward(self, x, *args, **kwargs):
        y = self.base(x, *args, **kwargs)
        rows = self.state.rows
        if rows is None:
            return y
        xr = x[rows]
        for role, delta in self.branches:
            gate = self.state.gates[role]
            if gate == 0.0:
                continue
            # In place on the rows' view of the fresh output: no extra full-size tensor.
            y[rows].add_(delta.up(delta.down(xr)), alpha=delta.scale * gate)
        return y


@dataclass
class InstallReport:
    """How many UNet modules each LoRA acts on, and how many routing dropped."""

    used: dict[str, int]
    dropped: dict[str, int]
    layers: int

    def to_dict(self) -> dict:
        return {"used": self.used, "dropped": self.dropped, "layers": self.layers}


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


@contextmanager
def installed(unet: nn.Module, loras: dict[str, LoraWeights], state: BranchState,
              sets: LayerSets | None) -> Iterator[InstallReport]:
    """Wrap the modules the LoRAs touch (only their own set's when `sets` is given, i.e. routing
    on); restore the original modules on exit, whatever happens."""
    wrappers: dict[str, CraftLoraLayer] = {}
    used = {role: 0 for role in loras}
    dropped = {role: 0 for role in loras}
    try:
        for role, lora in loras.items():
            for name, delta in lora.deltas.items():
                if sets is not None and sets.role_of(name) != role:
                    dropped[role] += 1
                    continue
                if name not in wrappers:
                    wrappers[name] = CraftLoraLayer(unet.get_submodule(name), state)
                    _set_module(unet, name, wrappers[name])
                wrappers[name].branches.append((role, delta))
                used[role] += 1
        yield InstallReport(used=used, dropped=dropped, layers=len(wrappers))
    finally:
        for name, wrapper in wrappers.items():
            _set_module(unet, name, wrapper.base)
