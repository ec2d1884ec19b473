"""Per-step plan of a CRAFT generation (Eq. 9–11): guidance s_k and the two LoRA gates.

γ comes from the prompt markers (Eq. 6): the marker's weight, 1 if unweighted, 0 if absent.
*Decision:* a prompt with no markers at all gives γ = 1 to every loaded LoRA, so loading LoRAs
and typing a plain prompt behaves as in other tools; once any marker is present, an absent one
means 0. The effective gate of a LoRA on step k is w·γ·gate(x_k), w being the user's LoRA weight.
With the `gates` switch off every curve is constant: gates 1 and guidance = the CFG scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from craftstudio.domain.curves import CurveSet
from craftstudio.domain.generation import FusionMode, GenerateRequest
from craftstudio.domain.markers import ParsedPrompt, parse_prompt
from craftstudio.engine.craft_layers import BranchState
from craftstudio.engine.fusion_multi import switch_gates
from craftstudio.engine.routing import CONTENT, STYLE


@dataclass
class CraftPlan:
    prompt: ParsedPrompt
    gamma: dict[str, float]
    guidance: list[float]
    gates: dict[str, list[float]]
    asymmetric: bool
    curves_name: str

    @classmethod
    def build(cls, request: GenerateRequest, n_steps: int) -> CraftPlan:
        parsed = parse_prompt(request.prompt)
        loras = {CONTENT: request.content_lora, STYLE: request.style_lora}
        if parsed.has_markers:
            gamma = {CONTENT: parsed.gamma_content, STYLE: parsed.gamma_style}
        else:
            gamma = {role: 1.0 for role in loras}
        switches = request.effective_switches
        curves = CurveSet.from_dict(request.curves) if request.curves else CurveSet.constant()
        if not switches.gates:
            curves = CurveSet.constant()
        samples = curves.sample(n_steps, request.cfg_scale)
        per_role = {CONTENT: samples.content, STYLE: samples.style}
        gates = {}
        for role, ref in loras.items():
            weight = ref.weight * gamma[role] if ref is not None else 0.0
            gates[role] = [weight * g for g in per_role[role]]
        if request.mode is FusionMode.SWITCH:  # LoRA Switch: one LoRA at a time (fusion_multi.py)
            gates = switch_gates(gates, [role for role, ref in loras.items() if ref is not None])
        return cls(prompt=parsed, gamma=gamma, guidance=list(samples.guidance), gates=gates,
                   asymmetric=switches.asymmetric, curves_name=curves.name)

    def record(self) -> dict:
        return {"gamma": self.gamma, "guidance": self.guidance, "gates": self.gates,
                "asymmetric": self.asymmetric, "curves": self.curves_name,
                "encoded_prompt": self.prompt.text}


class CraftHooks:
    """Sets the layers' rows and gates before each UNet call (see `sampler.StepHooks`).

    Everything that depends only on the step is worked out here once (gates and active roles per
    step), so a step costs one attribute update. On the graph path the per-row gates of every
    step live in one device table and each step copies its row into the layers' gate tensors."""

    def __init__(self, plan: CraftPlan, state: BranchState) -> None:
        self.plan = plan
        self.state = state
        roles = list(plan.gates)
        steps = len(plan.guidance)
        self._gates = [{role: plan.gates[role][k] for role in roles} for k in range(steps)]
        self._active = [tuple(r for r in roles if self._gates[k][r] != 0.0) for k in range(steps)]
        self._tables: dict[str, torch.Tensor] = {}

    def before_unet(self, step: int, cond_rows: slice | None) -> None:
        if self.state.graph:
            for role, table in self._tables.items():
                self.state.row_gates[role].copy_(table[step], non_blocking=True)
            return
        # Asymmetric CFG: only the conditional rows carry LoRAs. Standard CFG: every row does.
        rows = cond_rows if self.plan.asymmetric else slice(None)
        self.state.update(rows, self._gates[step], self._active[step])

    def prepare_graph(self, n_rows: int, cond_rows: slice, device: torch.device, dtype: torch.dtype,
                      all_rows: bool = False) -> None:
        """Graph path: every step runs all `n_rows` rows. Under asymmetric CFG the LoRA layers work
        on the conditional rows only (a fixed slice for the graph's life, so no retrace) with the
        LoRA's gate; under standard CFG on every row. `all_rows` runs them on every row with gate 0
        on the unconditional ones instead (the earlier graph layout, kept for the benchmark)."""
        self.state.graph = True
        rows = cond_rows if self.plan.asymmetric and not all_rows else slice(None)
        self.state.rows = rows
        count = len(range(n_rows)[rows])
        for role, values in self.plan.gates.items():
            mask = torch.zeros(n_rows, dtype=torch.float64)
            mask[cond_rows if self.plan.asymmetric else slice(None)] = 1.0
            table = torch.tensor(values, dtype=torch.float64)[:, None] * mask[None, rows]
            self._tables[role] = table.to(device, dtype)
            self.state.row_gates[role] = torch.zeros(count, device=device, dtype=dtype)
