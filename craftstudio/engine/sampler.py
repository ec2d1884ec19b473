"""Our explicit denoising loop over diffusers schedulers.

Per step k the guidance scale s_k decides which branches run, in one batched UNet call:
ε = ε_u + s_k·(ε_c − ε_u). With s_k = 1 only the conditional branch is needed, with s_k = 0
only the unconditional one. Rows are ordered [uncond, cond]; `StepHooks` are told which rows are
conditional before each call (CRAFT's LoRA layers use this to touch only conditional rows).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.progress import PreviewEvent, ProgressCallback, ProgressEvent
from craftstudio.engine.conditioning import Conditioning


class StepHooks(Protocol):
    def before_unet(self, step: int, cond_rows: slice | None) -> None:
        """Called before the UNet call of `step`; `cond_rows` selects the conditional rows of the
        batch (None when this step runs only the unconditional branch)."""


@dataclass
class LoopSettings:
    guidance: Sequence[float]  # s_k for every step
    preview_every: int = 0
    image_index: int = 0
    image_count: int = 1
    hooks: StepHooks | None = None
    preview: Callable[[torch.Tensor], Any] | None = None  # latents -> PIL image


def step_kwargs(scheduler, generator: torch.Generator, eta: float = 0.0) -> dict[str, Any]:
    """Extra `scheduler.step` arguments it accepts (ancestral samplers take the generator)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs: dict[str, Any] = {}
    if "generator" in params:
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = eta
    return kwargs


@torch.no_grad()
def denoise(unet, scheduler, latents: torch.Tensor, conditioning: Conditioning, settings: LoopSettings,
            generator: torch.Generator, *, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> torch.Tensor:
    """Run every scheduler step from `latents` (already scaled by init_noise_sigma)."""
    timesteps = scheduler.timesteps
    if len(settings.guidance) != len(timesteps):
        raise ValueError(f"{len(settings.guidance)} guidance values for {len(timesteps)} steps")
    extra = step_kwargs(scheduler, generator)
    total = len(timesteps)
    for k, t in enumerate(timesteps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        s = float(settings.guidance[k])
        use_uncond, use_cond = s != 1.0, s != 0.0
        rows = int(use_uncond) + int(use_cond)
        states, added = conditioning.batch(use_uncond, use_cond)
        model_input = scheduler.scale_model_input(torch.cat([latents] * rows), t)
        if settings.hooks is not None:
            cond_rows = (slice(1, 2) if use_uncond else slice(0, 1)) if use_cond else None
            settings.hooks.before_unet(k, cond_rows)
        eps = unet(model_input, t, encoder_hidden_states=states, added_cond_kwargs=added,
                   return_dict=False)[0]
        if rows == 2:
            eps_uncond, eps_cond = eps.chunk(2)
            eps = eps_uncond + s * (eps_cond - eps_uncond)
        out = scheduler.step(eps, t, latents, **extra, return_dict=True)
        latents = out.prev_sample
        if progress is not None:
            progress(ProgressEvent("denoise", k + 1, total, settings.image_index, settings.image_count))
            every = settings.preview_every
            if every and settings.preview is not None and ((k + 1) % every == 0) and k + 1 < total:
                estimate = getattr(out, "pred_original_sample", None)
                image = settings.preview(estimate if estimate is not None else latents)
                progress(PreviewEvent(k + 1, total, image, settings.image_index))
    return latents
