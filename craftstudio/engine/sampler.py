"""Our explicit denoising loop over diffusers schedulers.

Per step k the guidance scale s_k decides which branches run, in one batched UNet call:
ε = ε_u + s_k·(ε_c − ε_u). With s_k = 1 only the conditional branch is needed, with s_k = 0
only the unconditional one. A batch of N images runs as one call of up to 2N rows ordered
[uncond × N, cond × N]; `StepHooks` are told which rows are conditional before each call (CRAFT's
LoRA layers use this to touch only conditional rows). Each image keeps its own generator, so image
i of a batch gets the noise it gets when generated alone.

Graph mode (compiled UNet): every step runs all 2N rows with s_k read from a device table, so the
UNet sees one shape and no Python value changes between steps.

Replicas (LoRA Composite, fusion_multi.py): with `replicas` R > 1 the call holds R copies of the
rows, replica r = rows [r·m, (r+1)·m) of m = copies·N rows each; the hooks are told each replica's
rows (`before_replicas`), each replica is guided on its own and ε is their mean.
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


class ReplicaHooks(Protocol):
    def before_replicas(self, step: int, replica_rows: list[slice]) -> None:
        """Called before the UNet call of `step` when `LoopSettings.replicas` > 1, with the rows
        of each replica of the batch."""


@dataclass
class LoopSettings:
    guidance: Sequence[float]  # s_k for every step
    preview_every: int = 0
    image_index: int = 0
    image_count: int = 1
    hooks: StepHooks | ReplicaHooks | None = None
    replicas: int = 1  # copies of the batch per UNet call, guided apart and averaged (Composite)
    preview: Callable[[torch.Tensor], Any] | None = None  # latents -> PIL image
    graph: bool = False  # run all rows every step (compiled UNet: one shape, no retracing)
    # Image to image: the run starts at this step of the full schedule (see img2img.py).
    first_step: int = 0
    # Inpainting UNets: extra input channels (one per image row) appended to the latents.
    extra_input: torch.Tensor | None = None
    label: str = ""  # the progress events' message ("hires pass" for the second pass)
    # Called with (step, latents) after each scheduler step; returns the latents to go on with.
    after_step: Callable[[int, torch.Tensor], torch.Tensor] | None = None


def step_kwargs(scheduler, generator, eta: float = 0.0) -> dict[str, Any]:
    """Extra `scheduler.step` arguments it accepts (ancestral samplers take the generator; a list
    of generators, one per batch row, draws each row's noise as a batch of one would)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs: dict[str, Any] = {}
    if "generator" in params:
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = eta
    return kwargs


class BatchedConditioning:
    """Encoder states (and SDXL added conditions) for [uncond × n, cond × n] rows, built once per
    combination of branches instead of once per step."""

    def __init__(self, conditioning: Conditioning, n: int) -> None:
        self.conditioning = conditioning
        self.n = n
        self._built: dict[tuple[bool, bool], tuple] = {}

    def rows(self, use_uncond: bool, use_cond: bool, replicas: int = 1):
        key = (use_uncond, use_cond, replicas)
        found = self._built.get(key)
        if found is None:
            states, added = self.conditioning.batch(use_uncond, use_cond)
            if self.n > 1:
                states = states.repeat_interleave(self.n, dim=0)
                if added is not None:
                    added = {k: v.repeat_interleave(self.n, dim=0) for k, v in added.items()}
            if replicas > 1:
                states = torch.cat([states] * replicas)
                if added is not None:
                    added = {k: torch.cat([v] * replicas) for k, v in added.items()}
            found = self._built[key] = (states, added)
        return found


def _guided(eps: torch.Tensor, copies: int, s: float) -> torch.Tensor:
    """One replica's rows → its guided prediction ε_u + s·(ε_c − ε_u)."""
    if copies == 2:
        eps_uncond, eps_cond = eps.chunk(2)
        return eps_uncond + s * (eps_cond - eps_uncond)
    return eps


@torch.no_grad()
def denoise(unet, scheduler, latents: torch.Tensor, conditioning: Conditioning, settings: LoopSettings,
            generator, *, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> torch.Tensor:
    """Run the scheduler's steps from `settings.first_step` on, from `latents` (N rows, already
    noised to that step's level). `generator`: one torch.Generator, or a list of one per row.
    Guidance, gates and hooks are indexed by the step's place in the full schedule."""
    timesteps = scheduler.timesteps
    if len(settings.guidance) != len(timesteps):
        raise ValueError(f"{len(settings.guidance)} guidance values for {len(timesteps)} steps")
    extra = step_kwargs(scheduler, generator)
    first = settings.first_step
    total = len(timesteps) - first
    n = latents.shape[0]
    batched = BatchedConditioning(conditioning, n)
    hooks = settings.hooks
    guidance = [float(s) for s in settings.guidance]
    graph = settings.graph
    replicas = settings.replicas
    if replicas > 1 and graph:
        raise ValueError("replicas are not supported on the graph path")
    if graph:
        table = torch.tensor(guidance, dtype=torch.float32).to(latents.device)
        mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    extra_input = settings.extra_input
    for k in range(first, len(timesteps)):
        t = timesteps[k]
        if cancel is not None:
            cancel.raise_if_cancelled()
        s = guidance[k]
        use_uncond, use_cond = (True, True) if graph else (s != 1.0, s != 0.0)
        copies = int(use_uncond) + int(use_cond)
        states, added = batched.rows(use_uncond, use_cond, replicas)
        rows = copies * replicas
        model_input = scheduler.scale_model_input(torch.cat([latents] * rows) if rows > 1 else latents, t)
        if extra_input is not None:
            model_input = torch.cat([model_input, torch.cat([extra_input] * rows)], dim=1)
        if hooks is not None and replicas > 1:
            m = copies * n
            hooks.before_replicas(k, [slice(r * m, (r + 1) * m) for r in range(replicas)])
        elif hooks is not None:
            cond_rows = (slice(n, 2 * n) if use_uncond else slice(0, n)) if use_cond else None
            hooks.before_unet(k, cond_rows)
        if graph and mark_step is not None and latents.device.type == "cuda":
            mark_step()
        eps = unet(model_input, t, encoder_hidden_states=states, added_cond_kwargs=added,
                   return_dict=False)[0]
        if graph:
            eps_uncond, eps_cond = eps.chunk(2)
            eps = eps_uncond + table[k].to(eps.dtype) * (eps_cond - eps_uncond)
        elif replicas > 1:
            eps = torch.stack([_guided(part, copies, s) for part in eps.chunk(replicas)]).mean(dim=0)
        elif copies == 2:
            eps_uncond, eps_cond = eps.chunk(2)
            eps = eps_uncond + s * (eps_cond - eps_uncond)
        out = scheduler.step(eps, t, latents, **extra, return_dict=True)
        latents = out.prev_sample
        if settings.after_step is not None:
            latents = settings.after_step(k, latents)
        done = k + 1 - first
        if progress is not None:
            progress(ProgressEvent("denoise", done, total, settings.image_index, settings.image_count,
                                   message=settings.label))
            every = settings.preview_every
            if every and settings.preview is not None and (done % every == 0) and done < total:
                estimate = getattr(out, "pred_original_sample", None)
                image = settings.preview((estimate if estimate is not None else latents)[:1])
                progress(PreviewEvent(done, total, image, settings.image_index))
    return latents
