"""K-LoRA (Ouyang, Li, Hou: "K-LoRA: Unlocking Training-Free Fusion of Any Subject and Style
LoRAs", CVPR 2025, arXiv 2502.18461), the `k-lora` peer fusion mode.

In every LoRA layer one of the two LoRAs is applied, never both. For a layer with deltas ΔW_c
(content) and ΔW_s (style):

    S_c = Σ of the K largest |ΔW_c| entries,   S_s = likewise for ΔW_s      (Top-K, K = 64)
    γ   = mean over the layers both touch of Σ|ΔW_c| / Σ|ΔW_s|               (balance factor)
    s_k = α · x_k + β,   x_k = k/(N−1) the fraction of denoising done           (α = 1.5, β = 0.5)
    step k applies ΔW_c if S_c / γ > S_s · s_k, else ΔW_s.

The rising s_k favours content early (structure forms first) and style late (texture last), the
paper's step-dependent scaling. K, α and β are the values of the authors' implementation
(github.com/HVision-NKU/K-LoRA, `klora.py`, the SDXL default); γ divides the content sum as there.
*Decisions:* ΔW is a layer's delta as a file applies it (up·down·alpha/rank), without the user's
weight, so the comparison depends only on the two files and is cached by their sha256; the
winner is applied at its user weight w·γ_marker (as `direct` applies it). A "layer" is one LoRA
layer, i.e. one attention projection (to_q, to_k, to_v, to_out.0), as in the authors' code. A
layer only one LoRA touches carries that LoRA. The step fraction x_k is the curves' convention
(the authors count forward calls instead, the same fraction up to rounding). K is clamped to the
layer's entry count (tiny test models).

CRAFT components: none. Standard CFG with the LoRAs in both branches, base weights W0, no
routing, constant guidance — the paper plugs K-LoRA into a stock pipeline.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from craftstudio.engine.craft_layers import BranchState, CraftLayer
from craftstudio.engine.craft_plan import CraftHooks, CraftPlan
from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE

TOP_K = 64  # K: entries of |ΔW| summed per layer
ALPHA = 1.5  # slope of the step scaling s = α·x + β
BETA = 0.5  # its value on the first step
_CACHE_SIZE = 8


@dataclass(frozen=True)
class KLoraTable:
    """The per-layer Top-K sums of one (content, style) file pair and their balance factor γ."""

    content_sha256: str
    style_sha256: str
    sums: dict[str, tuple[float, float]]  # layer → (S_c, S_s)
    balance: float  # γ

    def step_scale(self, step: int, n_steps: int) -> float:
        x = step / (n_steps - 1) if n_steps > 1 else 0.0
        return ALPHA * x + BETA

    def winners(self, step: int, n_steps: int) -> dict[str, str]:
        """Layer → the role (content|style) applied there on `step` of `n_steps`."""
        scale = self.step_scale(step, n_steps)
        return {name: CONTENT if s_c / self.balance > s_s * scale else STYLE
                for name, (s_c, s_s) in self.sums.items()}


_tables: OrderedDict[tuple[str, str], KLoraTable] = OrderedDict()


def table_for(content: LoraWeights, style: LoraWeights) -> KLoraTable:
    """The comparison table of this pair, computed once and kept (keyed by both files' sha256)."""
    key = (content.sha256, style.sha256)
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = compute_table(content, style)
        while len(_tables) > _CACHE_SIZE:
            _tables.popitem(last=False)
    _tables.move_to_end(key)
    return table


def _delta_matrix(delta: ModuleDelta) -> torch.Tensor:
    """ΔW of a linear or conv LoRA layer as a 2-D matrix (out × in·kernel), in float32."""
    up = delta.up.weight.detach().float().flatten(1)
    down = delta.down.weight.detach().float().flatten(1)
    return (up @ down) * delta.scale


def _top_k_sum(values: torch.Tensor) -> float:
    flat = values.flatten()
    return float(torch.topk(flat, min(TOP_K, flat.numel())).values.sum())


@torch.no_grad()
def compute_table(content: LoraWeights, style: LoraWeights) -> KLoraTable:
    sums: dict[str, tuple[float, float]] = {}
    ratios: list[float] = []
    for name in sorted(set(content.deltas) & set(style.deltas)):
        abs_c = _delta_matrix(content.deltas[name]).abs()
        abs_s = _delta_matrix(style.deltas[name]).abs()
        sums[name] = (_top_k_sum(abs_c), _top_k_sum(abs_s))
        total_s = float(abs_s.sum())
        if total_s > 0.0:  # *decision:* a layer whose style delta is all zero does not count in γ
            ratios.append(float(abs_c.sum()) / total_s)
    balance = sum(ratios) / len(ratios) if ratios else 1.0
    return KLoraTable(content.sha256, style.sha256, sums, balance if balance > 0.0 else 1.0)


class KLoraHooks(CraftHooks):
    """CraftHooks (constant gates w·γ, LoRAs in both CFG branches) plus each compared layer's
    winner on the step: `CraftLayer.only`. Only the layers whose winner changes are touched."""

    def __init__(self, plan: CraftPlan, state: BranchState, table: KLoraTable,
                 layers: dict[str, CraftLayer]) -> None:
        super().__init__(plan, state)
        self.table = table
        steps = len(plan.guidance)
        self._winners = [table.winners(k, steps) for k in range(steps)]
        self._layers = {name: layers[name] for name in table.sums if name in layers}
        self._current: dict[str, str | None] = {}

    def before_unet(self, step: int, cond_rows: slice | None) -> None:
        super().before_unet(step, cond_rows)
        winners = self._winners[step]
        for name, layer in self._layers.items():
            role = winners[name]
            if self._current.get(name) != role:
                layer.only = role
                self._current[name] = role

    def prepare_graph(self, *args, **kwargs) -> None:
        raise RuntimeError("K-LoRA runs on the eager path only")

    def record(self) -> dict:
        steps = len(self._winners)
        return {"k": TOP_K, "alpha": ALPHA, "beta": BETA, "balance": self.table.balance,
                "layers_compared": len(self.table.sums),
                "step_scale": [self.table.step_scale(k, steps) for k in range(steps)],
                "content_layers_per_step": [sum(r == CONTENT for r in w.values()) for w in self._winners]}
