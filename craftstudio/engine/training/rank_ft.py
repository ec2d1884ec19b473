"""Rank-FT (Eq. 1–4): learnable bases, their orthonormal Q, the projection, and the merge.

Rank schedule (Eq. 2). Attention modules are numbered l = 0 … L−1 in depth order (down → mid →
up, routing.attention_modules); the four projections of one attention share l. The scheduled
rank falls linearly, r_l = round(r_max + (r_min − r_max)·l/(L−1)). Each basis is then clamped to
1 ≤ r ≤ min(d_out, ⌊d_in/2⌋): *decision:* the halving makes the merged rank r_c + r_s fit d_in,
so QR([Q_c | Q_s]) never spans (and so zeroes) a whole input space by construction.

Bases are stored per shape group (d_in, r) as one (G, d_in, r) parameter for content and one
for style, so Q for hundreds of layers takes one orthonormalisation call per group, not per
layer. That call is CholeskyQR2: Q = B·L⁻ᵀ with L = chol(BᵀB), done twice (the second pass
restores orthogonality to working precision). It is a QR of B (the one whose R has a positive
diagonal) built from batched matmuls, a batched Cholesky and a batched triangular solve, all
truly batched kernels; batched Householder QR (torch.linalg.qr) runs matrix by matrix and its
backward is slower still (on a CPU, 500 bases of 128 × 64 with backward: 14 s against 0.8 s).
Gaussian bases with r ≤ d_in/2 are well conditioned; should a Cholesky still fail, that step
falls back to Householder QR. The final merge uses Householder QR in float64.

Projection (Eq. 1) without copying the UNet: a forward hook on every target Linear returns
y − (x·Q)·(W0·Q)ᵀ, which equals x·(W0 − W0·Q·Qᵀ)ᵀ + b. W0 stays frozen; gradients reach only Q
(and through it B). W0·Q is computed once per step, outside gradient checkpointing's recompute.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from craftstudio.domain.training import BASIS_INITS, MINOR_INIT, RANDOM_INIT
from craftstudio.engine.routing import attention_modules, target_modules

CONTENT, STYLE = "content", "style"


@dataclass(frozen=True)
class LayerSpec:
    name: str
    depth: int  # l: the attention module's index in depth order
    d_in: int
    d_out: int
    rank: int  # per basis (content and style each)


def scheduled_rank(depth: int, layers: int, r_max: int, r_min: int) -> int:
    if layers <= 1:
        return r_max
    return round(r_max + (r_min - r_max) * depth / (layers - 1))


def clamp_rank(rank: int, d_in: int, d_out: int) -> int:
    return max(1, min(rank, d_out, d_in // 2))


def layer_specs(unet: nn.Module, r_max: int, r_min: int) -> list[LayerSpec]:
    """Every target projection with its depth and clamped rank, in depth order."""
    attentions = attention_modules(unet)
    depth_of = {name: depth for depth, name in enumerate(attentions)}
    specs = []
    for name in target_modules(unet):
        d_out, d_in = unet.get_submodule(name).weight.shape
        depth = depth_of[name.rsplit(".", 2)[0] if name.endswith("to_out.0") else name.rsplit(".", 1)[0]]
        rank = clamp_rank(scheduled_rank(depth, len(attentions), r_max, r_min), d_in, d_out)
        specs.append(LayerSpec(name, depth, d_in, d_out, rank))
    return specs


def householder_q(b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(b, mode="reduced").Q


def _cholesky_pass(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    chol, info = torch.linalg.cholesky_ex(b.mT @ b)
    # Q = B·L⁻ᵀ  ⇔  Qᵀ = L⁻¹·Bᵀ: one batched lower-triangular solve.
    q = torch.linalg.solve_triangular(chol, b.mT, upper=False).mT
    return q, info


def cholesky_qr2(b: torch.Tensor) -> torch.Tensor:
    q, info1 = _cholesky_pass(b)
    q, info2 = _cholesky_pass(q)
    if bool((info1 != 0).any() or (info2 != 0).any()):
        return householder_q(b)
    return q


def orthonormalize(b: torch.Tensor, method: str) -> torch.Tensor:
    """Orthonormal Q (…, d, r) spanning the columns of B (…, d, r)."""
    return cholesky_qr2(b) if method == "cholesky_qr2" else householder_q(b)


@torch.no_grad()
def minor_directions(weights: list[torch.Tensor], count: int) -> torch.Tensor:
    """(G, d_in, count): for each W0 (d_out × d_in), the `count` input directions it responds to
    least: eigenvectors of W0ᵀW0 with the smallest eigenvalues, smallest first (float32, on the CPU).
    Projecting them out changes W0 by exactly those singular values, so W_init starts close to W0."""
    # float64 for well-separated small eigenvalues; on CUDA where the weights are (MPS has no float64).
    device = weights[0].device if weights[0].device.type == "cuda" else torch.device("cpu")
    grams = torch.stack([w.T @ w for w in (w.detach().to(device, torch.float64) for w in weights)])
    _, vectors = torch.linalg.eigh(grams)  # eigenvalues ascending
    return vectors[..., :count].float().cpu()


def _group_key(d_in: int, rank: int) -> str:
    return f"{d_in}x{rank}"


class ProjectionBases(nn.Module):
    """Content and style bases B of every target layer, one (G, d_in, r) parameter per shape group.

    `init` "random": Gaussian columns (a random subspace). "minor" (needs the layers' `weights`):
    the content basis starts on W0's r least-used input directions and the style basis on the next
    r (minor_directions), so Q_c ⟂ Q_s and W_init starts as the closest rank-reduced W0."""

    def __init__(self, specs: list[LayerSpec], seed: int, device: torch.device, method: str = "cholesky_qr2",
                 init: str = RANDOM_INIT, weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        if init not in BASIS_INITS:
            raise ValueError(f"unknown basis initialisation {init!r}; use one of {', '.join(BASIS_INITS)}")
        if init == MINOR_INIT and weights is None:
            raise ValueError("minor-direction bases need the layers' weights")
        self.specs = specs
        self.method = method
        groups: dict[str, list[str]] = {}
        for spec in specs:
            groups.setdefault(_group_key(spec.d_in, spec.rank), []).append(spec.name)
        self.groups = groups
        self.slot = {name: (key, i) for key, names in groups.items() for i, name in enumerate(names)}
        gen = torch.Generator("cpu").manual_seed(seed)
        self.content = nn.ParameterDict()
        self.style = nn.ParameterDict()
        for key, names in groups.items():
            d_in, rank = (int(v) for v in key.split("x"))
            if init == MINOR_INIT:
                first = minor_directions([weights[name] for name in names], 2 * rank)
                self.content[key] = nn.Parameter(first[..., :rank].contiguous().to(device))
                self.style[key] = nn.Parameter(first[..., rank:].contiguous().to(device))
                continue
            for bank in (self.content, self.style):
                # Gaussian columns are well conditioned (r ≤ d_in/2) and span a random subspace.
                bank[key] = nn.Parameter(torch.randn(len(names), d_in, rank, generator=gen).to(device))

    def bank(self, role: str) -> nn.ParameterDict:
        return self.content if role == CONTENT else self.style

    def forward(self, roles: tuple[str, ...] = (CONTENT, STYLE)) -> list[dict[str, torch.Tensor]]:
        """The Q stacks of each role's bank: one step's bases. A module call, so that DDP
        (replicas.py) sees the step's use of the bases and averages their gradients. (The roles
        are an argument because DDP on a GPU cannot forward a call without one.)"""
        return [self.orthonormal(role) for role in roles]

    def orthonormal(self, role: str) -> dict[str, torch.Tensor]:
        """Group key → Q stack (G, d_in, r), one orthonormalisation call per group."""
        return {key: orthonormalize(b, self.method) for key, b in self.bank(role).items()}

    def per_layer(self, stacks: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Layer name → its Q, cast to `dtype` once per group. `unbind` (not indexing) keeps the
        backward to one stack per group instead of one group-sized zero tensor per layer."""
        out: dict[str, torch.Tensor] = {}
        for key, names in self.groups.items():
            stack = stacks[key] if dtype is None else stacks[key].to(dtype)
            out.update(zip(names, stack.unbind(0), strict=True))
        return out

    @torch.no_grad()
    def merged(self) -> dict[str, torch.Tensor]:
        """Q_merged = QR([Q_c | Q_s]) per layer (Eq. 3–4), in float64 Householder QR for accuracy."""
        out: dict[str, torch.Tensor] = {}
        for key, names in self.groups.items():
            q_c = householder_q(self.content[key].double())
            q_s = householder_q(self.style[key].double())
            q = householder_q(torch.cat([q_c, q_s], dim=-1)).float().cpu()
            for i, name in enumerate(names):
                out[name] = q[i].contiguous()
        return out


class Projection:
    """Forward hooks giving each target layer W = W0 − (W0·Q)·Qᵀ for the active Q (none: W0).

    `staged` (for a UNet replayed as CUDA graphs): the hooks read persistent leaf tensors that
    hold a copy of each step's Q and W0·Q, so the graph sees the same addresses every step, as it
    does for parameters, instead of 2 new tensors per layer (which it copies in or records anew:
    that made the compiled SDXL Rank-FT step 2.34x slower than eager; staged it is 1.90x faster).
    The backward then stops at those copies, and `backward_into_bases` carries their gradients
    on to the bases in one more backward pass (the chain rule split at the copy: the same
    gradients, summed in another order)."""

    def __init__(self, unet: nn.Module, names: list[str], staged: bool = False) -> None:
        self.layers = {name: unet.get_submodule(name) for name in names}
        self.dtype = next(iter(self.layers.values())).weight.dtype if self.layers else torch.float32
        self.active: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.staged = staged
        self._stage: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name -> (Q copy, W0·Q copy)
        self._sources: list[tuple[torch.Tensor, torch.Tensor]] = []  # (this step's tensor, its copy)

    def set_bases(self, q_by_name: dict[str, torch.Tensor] | None) -> None:
        """Use these Q (d_in × r, with grad) from now on; computes W0·Q once for the step."""
        self.active, self._sources = {}, []
        for name, q in (q_by_name or {}).items():
            weight = self.layers[name].weight
            q = q.to(weight.dtype)
            pair = (q, weight @ q)
            if self.staged:
                pair = self._staged(name, pair)
            self.active[name] = pair

    def _staged(self, name: str, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        stage = self._stage.get(name)
        if stage is None or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(stage, pair, strict=True)):
            stage = tuple(torch.empty_like(t, requires_grad=True) for t in pair)
            for tensor in stage:
                torch._dynamo.mark_static_address(tensor)  # a fixed input of the graph, like a weight
            self._stage[name] = stage
        with torch.no_grad():
            for copy, tensor in zip(stage, pair, strict=True):
                copy.copy_(tensor)
                copy.grad = None
        self._sources += list(zip(pair, stage, strict=True))
        return stage

    def backward_into_bases(self, loss: torch.Tensor | None = None) -> None:
        """Staged only, after the backward of the terms that ran through the UNet: carry the
        copies' gradients on to this step's Q (and so to the bases), together with the backward
        of `loss` (terms computed on Q directly, already scaled like the first)."""
        tensors, grads = [], []
        for tensor, copy in self._sources:
            if copy.grad is not None:
                tensors.append(tensor)
                grads.append(copy.grad)
        if loss is not None:
            tensors.append(loss)
            grads.append(torch.ones_like(loss))
        if tensors:
            torch.autograd.backward(tensors, grads)
        for _, copy in self._sources:
            copy.grad = None

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """W0 inside the block (the preservation term's teacher); the active Q are kept for after."""
        active, self.active = self.active, {}
        try:
            yield
        finally:
            self.active = active

    def _hook(self, name: str):
        def hook(module, inputs, output):
            pair = self.active.get(name)
            if pair is None:
                return output
            q, wq = pair
            x = inputs[0]
            flat_x = x.reshape(-1, x.shape[-1])
            flat_y = output.reshape(-1, output.shape[-1])
            # y − (x·Q)·(W0·Q)ᵀ in one fused multiply-add.
            return torch.addmm(flat_y, flat_x @ q.to(flat_x.dtype), wq.T.to(flat_x.dtype),
                               alpha=-1).view_as(output)
        return hook

    @contextmanager
    def installed(self) -> Iterator[Projection]:
        handles = [layer.register_forward_hook(self._hook(name)) for name, layer in self.layers.items()]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self.active = {}
