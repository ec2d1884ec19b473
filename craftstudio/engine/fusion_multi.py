"""LoRA Switch and LoRA Composite (Zhong et al., "Multi-LoRA Composition for Image Generation",
arXiv 2402.16843): the `switch` and `composite` peer fusion modes.

**LoRA Switch.** One LoRA is active at a time, in turn, changing every `SWITCH_EVERY` steps:
steps 0…τ−1 carry the content LoRA, τ…2τ−1 the style LoRA, and so on (τ = 5, the authors'
default `switch_step` in github.com/maszhongming/Multi-LoRA-Composition, `example.py`). The active
LoRA is applied at its weight w·γ_marker in both CFG branches (the paper switches the pipeline's
adapter, so both branches carry it). *Decision:* the switch falls exactly every τ steps (the
authors' callback switches after step τ, so their first block is τ+1 steps long).

**LoRA Composite.** Every step, each LoRA i gives its own guided prediction from its own
unconditional and conditional pass, ε_i = ε_u,i + s·(ε_c,i − ε_u,i), and ε = mean_i ε_i (the
paper averages the unconditional and the conditional predictions over the LoRAs before guiding,
the same thing since guidance is linear). We run all of it in ONE UNet call of 2·N·L rows
(L LoRAs, N images): replica i of the CFG batch carries LoRA i only (`BranchState.role_rows`).

CRAFT components: none in either mode (standard CFG, base weights W0, no routing, constant
guidance). Prompt markers are stripped and their weights γ multiply the LoRA weights, as in
`direct`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from craftstudio.engine.craft_layers import BranchState

if TYPE_CHECKING:  # craft_plan imports this module
    from craftstudio.engine.craft_plan import CraftPlan

SWITCH_EVERY = 5  # τ: LoRA Switch changes the active LoRA every τ steps


def switch_roles(roles: list[str], n_steps: int) -> list[str]:
    """The active role on each step: `roles` in turn, each for SWITCH_EVERY steps."""
    return [roles[(k // SWITCH_EVERY) % len(roles)] for k in range(n_steps)] if roles else []


def switch_gates(gates: dict[str, list[float]], present: list[str]) -> dict[str, list[float]]:
    """Per-step gates of LoRA Switch: a LoRA's gate where it is the active one, 0 elsewhere.
    `present`: the roles of the LoRAs given, content first."""
    n_steps = len(next(iter(gates.values()))) if gates else 0
    active = switch_roles(present, n_steps)
    return {role: [g if active[k] == role else 0.0 for k, g in enumerate(values)]
            for role, values in gates.items()}


class CompositeHooks:
    """LoRA Composite: replica i of the batch carries LoRA `roles[i]` at its gate, nothing else
    (see `sampler.ReplicaHooks`)."""

    def __init__(self, plan: CraftPlan, state: BranchState, roles: list[str]) -> None:
        self.plan = plan
        self.state = state
        self.roles = list(roles)
        self._gates = [{role: plan.gates[role][k] for role in self.roles} for k in range(len(plan.guidance))]

    def before_replicas(self, step: int, replica_rows: list[slice]) -> None:
        gates = self._gates[step]
        self.state.role_rows = dict(zip(self.roles, replica_rows, strict=True))
        self.state.update(None, gates, tuple(r for r in self.roles if gates[r] != 0.0))

    def before_unet(self, step: int, cond_rows: slice | None) -> None:
        """One LoRA (one replica): the plain batch, the LoRA in both branches."""
        gates = self._gates[step]
        self.state.role_rows = None
        self.state.update(slice(None), gates, tuple(r for r in self.roles if gates[r] != 0.0))

    def record(self) -> dict:
        return {"loras": self.roles, "unet_rows_per_image": 2 * len(self.roles)}
