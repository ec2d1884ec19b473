"""Sample images during LoRA training, made with the CRAFT sampler on the model being trained.

The LoRA in training lives in peft layers of the training UNet. For a sample we take its
matrices (copied, cast to the model's dtype) as the deltas of a `LoraWeights`, switch the peft
adapter off, and run the sampler's own pieces: routed layers confined to the role's set, the
LoRA only on the conditional rows (asymmetric CFG), W_init already in the weights when a backbone
is used. Gates are constant (on for every step) so a sample shows the LoRA fully. The sample's
seed is the training seed, so samples of one run are comparable step to step; sampling draws
from its own generator and leaves the training run's randomness alone.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.generation import DEFAULT_SCHEDULER, GenerateRequest, LoraRef
from craftstudio.engine.conditioning import Conditioning, encode
from craftstudio.engine.craft_layers import BranchState, installed
from craftstudio.engine.craft_plan import CraftHooks, CraftPlan
from craftstudio.engine.generation import decode, initial_latents
from craftstudio.engine.loader import LoadedModel
from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import LayerSets
from craftstudio.engine.sampler import LoopSettings, denoise
from craftstudio.engine.schedulers import make_scheduler

SAMPLE_CFG = 7.0


def sample_prompt(role: str, caption: str, prompt: str) -> str:
    """The user's sample prompt, or the caption tagged with the role's marker."""
    return prompt or f"{caption} <{'c' if role == 'content' else 's'}>"


class Sampler:
    """Sample images of one training run (plan and text conditioning prepared once)."""

    def __init__(self, model: LoadedModel, role: str, prompt: str, resolution: int, steps: int, seed: int,
                 sets: LayerSets) -> None:
        ref = LoraRef("training")
        self.request = GenerateRequest(
            model=str(model.path), prompt=prompt, width=resolution, height=resolution, steps=steps,
            cfg_scale=SAMPLE_CFG, seed=seed, scheduler=DEFAULT_SCHEDULER,
            content_lora=ref if role == "content" else None, style_lora=ref if role == "style" else None,
        )
        self.model = model
        self.role = role
        self.sets = sets
        self.plan = CraftPlan.build(self.request, steps)
        # Encoded now, while the text encoders are on the device.
        self.conditioning: Conditioning = encode(model, self.plan.prompt.text, "", resolution, resolution)

    def _deltas(self, adapter_name: str) -> dict[str, ModuleDelta]:
        from peft.tuners.lora import LoraLayer

        dtype = self.model.dtype
        deltas = {}
        for name, module in self.model.unet.named_modules():
            if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
                deltas[name] = ModuleDelta(
                    down=copy.deepcopy(module.lora_A[adapter_name]).to(dtype).requires_grad_(False),
                    up=copy.deepcopy(module.lora_B[adapter_name]).to(dtype).requires_grad_(False),
                    scale=float(module.scaling[adapter_name]),
                )
        return deltas

    @torch.no_grad()
    def __call__(self, adapter_name: str, cancel: CancelToken | None = None):
        model, request = self.model, self.request
        unet = model.unet
        lora = LoraWeights(path=Path("training"), sha256="", family=model.family,
                           deltas=self._deltas(adapter_name))
        generator = torch.Generator("cpu").manual_seed(request.seed)
        scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
        scheduler.set_timesteps(request.steps, device=model.device)
        latents = initial_latents(model, scheduler, request.width, request.height, generator)
        state = BranchState()
        was_training = unet.training
        unet.eval()
        unet.disable_adapters()  # the sampler's routed layers carry the LoRA instead
        try:
            with installed(unet, {self.role: lora}, state, self.sets):
                settings = LoopSettings(guidance=self.plan.guidance, hooks=CraftHooks(self.plan, state))
                latents = denoise(unet, scheduler, latents, self.conditioning, settings, generator,
                                  cancel=cancel)
        finally:
            unet.enable_adapters()
            unet.train(was_training)
        return decode(model, latents)
