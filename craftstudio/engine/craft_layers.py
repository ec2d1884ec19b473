"""Routed, gated LoRA layers for the CRAFT sampler (Eq. 8 and Eq. 10).

For the length of one generation, each UNet module that a LoRA touches gets an instance-level
`forward` that adds up(down(x))·scale·gate to the rows of the batch selected by the shared
`BranchState` — the conditional rows under asymmetric CFG, so the unconditional branch never
carries a LoRA. No weight is copied and no module is replaced; deleting the instance attributes
restores the class's forward.

Eager path. The UNet's eager step is launch-bound (the CPU enqueues kernels about as fast as the
GPU runs them), so every kernel and Python operation per layer counts:
- projections of one attention that read the same input (q/k/v of self-attention, k/v of
  cross-attention) compute their LoRA-A products in ONE matmul on the concatenated
  down-projections; each projection then adds its slice·Bᵀ into its output rows with one in-place
  addmm. Which input a projection got is checked by identity, so a grouping that does not hold
  (another attention processor) costs speed, never correctness;
- the set of active roles (gate ≠ 0) is decided once per step on the host from the plan, never by
  reading a device value; a LoRA whose gate is 0 costs one tuple lookup;
- the per-layer work that does not change between steps (concatenated A, column slices) is built
  once per set of active roles and kept.

Graph path (`BranchState.graph`, for torch.compile / CUDA graphs): no branch depends on a value.
Every LoRA runs on the same rows every step (the conditional rows under asymmetric CFG, fixed
for the graph's life), scaled by a per-row gate tensor (`row_gates`) that the sampler overwrites
in place each step, so gate or guidance changes never retrace or recompile.

Two hooks serve the peer fusion modes (docs/method.md): a layer's `only` confines it to one role
on the current step (K-LoRA's per-layer winner), and `BranchState.role_rows` gives each role its
own rows of the batch (LoRA Composite: one replica of the batch per LoRA, in one UNet call).
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets


@dataclass
class BranchState:
    """What the LoRA layers do on the current UNet call (set by the sampler before it).

    Change `rows`/`gates` through `update` (it also refreshes `active`, the roles whose gate is not
    0, which the layers read instead of looking at every gate)."""

    rows: slice | None = None  # rows that get LoRA deltas; None = no row
    gates: dict[str, float] = field(default_factory=lambda: {CONTENT: 0.0, STYLE: 0.0})
    active: tuple[str, ...] = ()
    graph: bool = False
    # Graph path: per role a (rows,) tensor of gate·[row carries LoRAs], overwritten in place.
    row_gates: dict[str, torch.Tensor] = field(default_factory=dict)
    # Per-role rows (LoRA Composite): when set, role r's delta goes to rows role_rows[r] only and
    # `rows` is not used.
    role_rows: dict[str, slice] | None = None

    def __post_init__(self) -> None:
        self.active = _active(self.gates)

    def update(self, rows: slice | None, gates: Mapping[str, float], active: tuple[str, ...] | None = None):
        self.rows = rows
        self.gates = dict(gates)
        self.active = _active(gates) if active is None else active


def _active(gates: Mapping[str, float]) -> tuple[str, ...]:
    return tuple(role for role, gate in gates.items() if gate != 0.0)


@dataclass
class Branch:
    role: str
    delta: ModuleDelta
    # For linear deltas: Aᵀ (in × r) and Bᵀ (r × out), pre-transposed for matmul/addmm.
    a_t: torch.Tensor | None
    b_t: torch.Tensor | None

    @property
    def scale(self) -> float:
        return self.delta.scale


def _branch(role: str, delta: ModuleDelta, device: torch.device | None) -> Branch:
    if isinstance(delta.down, nn.Linear) and isinstance(delta.up, nn.Linear) and delta.up.bias is None \
            and delta.down.bias is None:
        a_t, b_t = delta.down.weight.t(), delta.up.weight.t()
        if device is not None and a_t.device != device:
            a_t, b_t = a_t.to(device), b_t.to(device)
        return Branch(role, delta, a_t, b_t)
    if device is not None:  # conv or biased LoRA: go through the modules
        delta.down.to(device)
        delta.up.to(device)
    return Branch(role, delta, None, None)


class SharedInput:
    """LoRA-A products of the projections of one attention that read the same input: one matmul
    on the concatenated down-projections of every active branch, sliced per branch."""

    def __init__(self) -> None:
        self.members: list[CraftLayer] = []
        self._a_cat: dict[tuple[str, ...], tuple[torch.Tensor, dict[int, slice]]] = {}
        self._x: torch.Tensor | None = None
        self._rows: slice | None = None
        self._key: tuple[str, ...] | None = None
        self._h: torch.Tensor | None = None
        self._left = 0  # branches still to read _h; at 0 the references go (no input outlives its use)

    def columns(self, active: tuple[str, ...]) -> dict[int, slice]:
        return self._concat(active)[1]

    def _concat(self, active: tuple[str, ...]):
        found = self._a_cat.get(active)
        if found is None:
            parts, cols, start = [], {}, 0
            for layer in self.members:
                for branch in layer.branches:
                    if branch.a_t is not None and branch.role in active:
                        r = branch.a_t.shape[1]
                        parts.append(branch.a_t)
                        cols[id(branch)] = slice(start, start + r)
                        start += r
            a_cat = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1) if parts else None
            found = self._a_cat[active] = (a_cat, cols)
        return found

    def hidden(self, x: torch.Tensor, rows: slice, active: tuple[str, ...]) -> torch.Tensor:
        """x[rows]·[A…]ᵀ for every active branch of the group, computed once per input."""
        if x is self._x and rows == self._rows and active == self._key:
            h = self._h
        else:
            a_cat, cols = self._concat(active)
            h = x[rows].matmul(a_cat)
            self._x, self._rows, self._key, self._h, self._left = x, rows, active, h, len(cols)
        self._left -= 1
        if self._left <= 0:
            self._x = self._h = None
        return h

    def release(self) -> None:
        self._x = self._h = None
        self._a_cat.clear()


class CraftLayer:
    """The LoRA branches of one UNet module and what it adds to the module's output."""

    __slots__ = ("state", "branches", "group", "only", "_plans")

    def __init__(self, state: BranchState) -> None:
        self.state = state
        self.branches: list[Branch] = []
        self.group: SharedInput | None = None
        self.only: str | None = None  # K-LoRA: the one role this layer carries on this step
        self._plans: dict[tuple[str, ...], tuple] = {}

    def _plan(self, active: tuple[str, ...]) -> tuple:
        """(branch, role, columns in the group's product or None, a_t, b_t) per active branch."""
        cols = self.group.columns(active) if self.group is not None else {}
        plan = tuple((b, b.role, cols.get(id(b)), b.a_t, b.b_t) for b in self.branches if b.role in active)
        self._plans[active] = plan
        return plan

    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        state = self.state
        if state.graph:
            return self._add_graph(x, y)
        if state.role_rows is not None:
            return self._add_per_role(x, y)
        rows = state.rows
        if rows is None:
            return y
        active = state.active
        if self.only is not None:
            active = (self.only,) if self.only in active else ()
        plan = self._plans.get(active)
        if plan is None:
            plan = self._plan(active)
        if not plan:
            return y
        gates = state.gates
        yr = y[rows]
        flat = yr.view(-1, yr.shape[-1]) if yr.is_contiguous() else None
        for branch, role, cols, a_t, b_t in plan:
            alpha = branch.delta.scale * gates[role]
            if a_t is None or flat is None:
                yr.add_(branch.delta.up(branch.delta.down(x[rows])), alpha=alpha)
                continue
            h = self.group.hidden(x, rows, active)[..., cols] if cols is not None else x[rows].matmul(a_t)
            flat.addmm_(h.flatten(0, -2), b_t, alpha=alpha)
        return y

    def _add_per_role(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each active role's delta on its own rows (`BranchState.role_rows`)."""
        state = self.state
        for branch in self.branches:
            role = branch.role
            rows = state.role_rows.get(role)
            if rows is None or role not in state.active:
                continue
            y[rows] += branch.delta.up(branch.delta.down(x[rows])) * (branch.delta.scale * state.gates[role])
        return y

    def _add_graph(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # scale·gate folds into the small (rows, r) factor; h·Bᵀ is added by one addmm (cuBLAS
        # epilogue), so a branch costs a matmul, a small multiply and an addmm. `rows` is fixed for
        # the graph's life (the conditional rows under asymmetric CFG, else every row).
        rows = self.state.rows
        whole = rows is None or rows == slice(None)
        xr, yr = (x, y) if whole else (x[rows], y[rows])
        shape = (-1,) + (1,) * (x.dim() - 1)
        for branch in self.branches:
            gate = (self.state.row_gates[branch.role] * branch.delta.scale).view(shape)
            if branch.a_t is not None:
                h = xr.matmul(branch.a_t) * gate
                yr = torch.addmm(yr.reshape(-1, yr.shape[-1]), h.reshape(-1, h.shape[-1]), branch.b_t).view(yr.shape)
            else:
                yr = yr + branch.delta.up(branch.delta.down(xr)) * gate
        if whole:
            return yr
        return torch.cat([y[:rows.start], yr, y[rows.stop:]])  # rows: one contiguous block

def _craft_forward(self, x, *args, **kwargs):
    return self._craft_layer.add(x, type(self).forward(self, x, *args, **kwargs))


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
    layer = getattr(module, "_craft_layer", None)
    return list(layer.branches) if layer is not None else []


def _shared_inputs(unet: nn.Module, touched: dict[str, nn.Module]) -> list[SharedInput]:
    """Group the touched projections of each attention that read the same input."""
    groups = []
    by_attention: dict[str, dict[str, nn.Module]] = {}
    for name, module in touched.items():
        parent, _, proj = name.rpartition(".")
        if proj in ("to_q", "to_k", "to_v"):
            by_attention.setdefault(parent, {})[proj] = module
    for parent, projections in by_attention.items():
        cross = getattr(unet.get_submodule(parent), "is_cross_attention", True)
        for names in ((("to_k", "to_v"), ("to_q",)) if cross else (("to_q", "to_k", "to_v"),)):
            members = [projections[n] for n in names if n in projections]
            if len(members) < 2:
                continue
            group = SharedInput()
            for module in members:
                group.members.append(module._craft_layer)
                module._craft_layer.group = group
            groups.append(group)
    return groups


@contextmanager
def installed(unet: nn.Module, loras: dict[str, LoraWeights], state: BranchState,
              sets: LayerSets | None, device: torch.device | None = None,
              shared_inputs: bool = True) -> Iterator[InstallReport]:
    """Give the modules the LoRAs touch their LoRA branches (only their own set's when `sets` is
    given, i.e. routing on); restore the modules on exit, whatever happens. `device`: where the
    UNet runs when its weights live elsewhere (CPU offload). `shared_inputs` False computes each
    projection's LoRA-A product on its own (K-LoRA, whose layers carry different roles)."""
    touched: dict[str, nn.Module] = {}
    used = {role: 0 for role in loras}
    dropped = {role: 0 for role in loras}
    groups: list[SharedInput] = []
    try:
        for role, lora in loras.items():
            for name, delta in lora.deltas.items():
                if sets is not None and sets.role_of(name) != role:
                    dropped[role] += 1
                    continue
                module = touched.get(name)
                if module is None:
                    module = touched[name] = unet.get_submodule(name)
                    module._craft_layer = CraftLayer(state)
                    module._craft_state = state
                    module.forward = types.MethodType(_craft_forward, module)
                module._craft_layer.branches.append(_branch(role, delta, device))
                used[role] += 1
        groups = _shared_inputs(unet, touched) if shared_inputs else []
        yield InstallReport(used=used, dropped=dropped, layers=len(touched))
    finally:
        for group in groups:
            group.release()
        for module in touched.values():
            for attr in ("forward", "_craft_state", "_craft_layer"):
                module.__dict__.pop(attr, None)
