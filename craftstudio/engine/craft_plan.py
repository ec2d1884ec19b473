"""Per-step plan of a CRAFT generation (Eq. 9–11): guidance s_k and the two LoRA gates.

γ comes from the prompt markers (Eq. 6): the marker's weight, 1 if unweighted, 0 if absent.
*Decision:* a prompt with no markers at all gives γ = 1 to every loaded LoRA, so loading LoRAs
and typing a plain prompt behaves as in other tools; once any marker is present, an absent one
means 0. The effective gate of a LoRA on step k is w·γ·gate(x_k), w being the user's LoRA weight.
With the `gates` switch off every curve is constant: gates 1 and guidance = the CFG scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from craftstudio.domain.curves import CurveSet
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.markers import ParsedPrompt, parse_prompt
from craftstudio.engine.craft_layers import BranchState
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
        curves = CurveSet.from_dict(request.curves) if request.curves else CurveSet.constant()
        if not request.switches.gates:
            curves = CurveSet.constant()
        samples = curves.sample(n_steps, request.cfg_scale)
        per_role = {CONTENT: samples.content, STYLE: samples.style}
        gates = {}
        for role, ref in loras.items():
            weight = ref.weight * gamma[role] if ref is not None else 0.0
            gates[role] = [weight * g for g in per_role[role]]
        return cls(prompt=parsed, gamma=gamma, guidance=list(samples.guidance), gates=gates,
                   asymmetric=request.switches.asymmetric, curves_name=curves.name)

    def record(self) -> dict:
        return {"gamma": self.gamma, "guidance": self.guidance, "gates": self.gates,
                "asymmetric": self.asymmetric, "curves": self.curves_name,
                "encoded_prompt": self.prompt.text}


class CraftHooks:
    """Sets the layers' rows and gates before each UNet call (see `sampler.StepHooks`)."""

    def __init__(self, plan: CraftPlan, state: BranchState) -> None:
        self.plan = plan
        self.state = state

    def before_unet(self, step: int, cond_rows: slice | None) -> None:
        self.state.gates = {role: values[step] for role, values in self.plan.gates.items()}
        # Asymmetric CFG: only the conditional rows carry LoRAs. Standard CFG: every row does.
        self.state.rows = cond_rows if self.plan.asymmetric else slice(None)
