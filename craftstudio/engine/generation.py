"""Generate images for a `GenerateRequest`: load (cached), encode, denoise, decode.

With LoRAs this is the CRAFT sampler: W_init from the backbone (baked into the cached model),
routed LoRA layers confined to their sets, and per step ε = ε_u + s_k·(ε_c − ε_u) where only the
conditional rows carry the gated LoRAs (see craft_plan.py, craft_layers.py and sampler.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import NonFiniteOutput, OutOfMemory
from craftstudio.domain.generation import GenerateRequest, GenerateResult
from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.engine import model_cache
from craftstudio.engine.conditioning import encode
from craftstudio.engine.craft_layers import BranchState, installed
from craftstudio.engine.craft_plan import CraftHooks, CraftPlan
from craftstudio.engine.devices import is_out_of_memory, pick_device, pick_dtype
from craftstudio.engine.inputs import check_inputs
from craftstudio.engine.loader import LoadedModel
from craftstudio.engine.previews import latent_preview
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets
from craftstudio.engine.sampler import LoopSettings, denoise
from craftstudio.engine.schedulers import make_scheduler

log = logging.getLogger(__name__)


def initial_latents(model: LoadedModel, scheduler, width: int, height: int,
                    generator: torch.Generator) -> torch.Tensor:
    """Seeded starting noise, drawn on the CPU so a seed gives the same image on every device."""
    from diffusers.utils.torch_utils import randn_tensor

    scale = model.pipeline.vae_scale_factor
    shape = (1, model.unet.config.in_channels, height // scale, width // scale)
    latents = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
    return latents.to(model.device, model.dtype) * scheduler.init_noise_sigma


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor):
    """Latents → PIL image through the VAE (in fp32 when fp16 would overflow, as diffusers does)."""
    vae = model.vae
    if vae.dtype == torch.float16 and vae.config.get("force_upcast", False):
        vae.to(torch.float32)
    image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    check_finite_output(image, "decoding", model.dtype)
    return model.pipeline.image_processor.postprocess(image, output_type="pil")[0]


def check_finite_output(values: torch.Tensor, stage: str, dtype: torch.dtype) -> None:
    """Stop, rather than save a black picture, when values went NaN or Inf (fp16 overflow)."""
    if bool(torch.isfinite(values).all()):
        return
    hint = ("run on the CPU (--device cpu) or in float32, or lower the CFG scale and LoRA weights"
            if dtype == torch.float16 else "lower the CFG scale and the LoRA weights")
    raise NonFiniteOutput(f"The picture went non-finite (NaN or Inf) during {stage}, so nothing was saved: "
                          f"{hint}.")


def generate(request: GenerateRequest, *, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> GenerateResult:
    """Generate `request.batch_count` images; raises `Cancelled` or a `UserError` on bad input."""
    request.validate()
    plan = CraftPlan.build(request, request.steps)  # bad markers / curves fail before any loading
    check_inputs(request)  # so do missing, looping, special or damaged files
    started = time.perf_counter()
    device = pick_device(request.device)
    dtype = pick_dtype(device)
    if progress:
        progress(ProgressEvent("load", 0, 1, message="loading model"))
    switches = request.switches
    try:
        model = model_cache.get_model(request.model, device, dtype,
                                      request.backbone if switches.backbone else None)
        loras = {role: model_cache.get_lora(ref.path, model)
                 for role, ref in ((CONTENT, request.content_lora), (STYLE, request.style_lora)) if ref}
        sets = LayerSets.for_family(model.family, request.routing_overrides) if switches.routing else None
        state = BranchState()
        with installed(model.unet, loras, state, sets) as report:
            hooks = CraftHooks(plan, state) if loras else None
            images = [_generate_one(model, request, plan, hooks, seed, index, progress, cancel)
                      for index, seed in enumerate(request.seeds())]
    except Exception as exc:
        if is_out_of_memory(exc):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemory(f"{device.type.upper()} ran out of memory at {request.width}x{request.height}: "
                              "lower the size or batch, or close other GPU programs.") from exc
        raise
    details = {
        "mode": request.mode.value, "switches": dataclasses.asdict(switches), **plan.record(),
        "loras": {role: {"path": str(lora.path), "sha256": lora.sha256, "name": lora.name,
                         "layers_used": report.used[role], "layers_dropped": report.dropped[role],
                         "text_encoder_tensors_ignored": lora.text_encoder_keys}
                  for role, lora in loras.items()},
        "backbone": ({"path": str(model.backbone.path), "fingerprint": model.backbone.fingerprint}
                     if model.backbone is not None else None),
    }
    return GenerateResult(request=request, images=images, seeds=request.seeds(), family=model.family.value,
                          model_name=model.name, device=str(device),
                          seconds=time.perf_counter() - started, details=details)


def _generate_one(model: LoadedModel, request: GenerateRequest, plan: CraftPlan, hooks: CraftHooks | None,
                  seed: int, index: int, progress: ProgressCallback | None, cancel: CancelToken | None):
    generator = torch.Generator("cpu").manual_seed(seed)
    scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
    scheduler.set_timesteps(request.steps, device=model.device)
    conditioning = encode(model, plan.prompt.text, request.negative_prompt, request.width, request.height)
    latents = initial_latents(model, scheduler, request.width, request.height, generator)
    size = (request.width, request.height)
    settings = LoopSettings(
        guidance=plan.guidance, preview_every=request.preview_every, image_index=index,
        image_count=request.batch_count, hooks=hooks,
        preview=lambda lat: latent_preview(lat, model.family, size),
    )
    latents = denoise(model.unet, scheduler, latents, conditioning, settings, generator,
                      progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    check_finite_output(latents, "sampling", model.dtype)
    if progress:
        progress(ProgressEvent("decode", index + 1, request.batch_count, index, request.batch_count))
    return decode(model, latents)
