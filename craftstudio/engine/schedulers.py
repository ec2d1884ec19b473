"""The samplers users can pick, built on diffusers' schedulers from the model's own config."""

from __future__ import annotations

from typing import Any

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import SCHEDULERS


def make_scheduler(name: str, base_config: Any):
    """A fresh scheduler (they are stateful: one per image) for id `name` (see SCHEDULERS)."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
    )

    if name == "euler":
        return EulerDiscreteScheduler.from_config(base_config)
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(base_config)
    if name == "ddim":
        return DDIMScheduler.from_config(base_config)
    if name in ("dpmpp_2m", "dpmpp_2m_karras"):
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2,
            use_karras_sigmas=name.endswith("karras"),
        )
    raise RequestError(f"Unknown scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}.")
