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
from craftstudio.engine import compiled_unet, model_cache
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
    low_vram = bool(getattr(request, "low_vram", False))
    try:
        model = model_cache.get_model(request.model, device, dtype,
                                      request.backbone if switches.backbone else None, low_vram=low_vram)
        loras = {role: model_cache.get_lora(ref.path, model)
                 for role, ref in ((CONTENT, request.content_lora), (STYLE, request.style_lora)) if ref}
        sets = LayerSets.for_family(model.family, request.routing_overrides) if switches.routing else None
        state = BranchState()
        # Fast path: compiled UNet (not with offloading: its hooks move weights between calls).
        fast = bool(getattr(request, "fast", False)) and not low_vram and compiled_unet.supported(device)
        unet = compiled_unet.for_unet(model.unet) if fast else model.unet
        with installed(model.unet, loras, state, sets, device=model.device) as report:
            hooks = CraftHooks(plan, state) if loras else None
            # One prompt encoding for the whole batch.
            conditioning = encode(model, plan.prompt.text, request.negative_prompt, request.width,
                                  request.height)
            images = _generate_all(model, unet, request, plan, hooks, conditioning, progress, cancel)
    except Exception as exc:
        if is_out_of_memory(exc):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            hint = "" if low_vram else ", turn on low-VRAM mode (--low-vram)"
            raise OutOfMemory(f"{device.type.upper()} ran out of memory at {request.width}x{request.height}: "
                              f"lower the size or batch{hint}, or close other GPU programs.") from exc
        raise
    details = {
        "mode": request.mode.value, "switches": dataclasses.asdict(switches), **plan.record(),
        "loras": {role: {"path": str(lora.path), "sha256": lora.sha256, "name": lora.name,
                         "layers_used": report.used[role], "layers_dropped": report.dropped[role],
                         "text_encoder_tensors_ignored": lora.text_encoder_keys}
                  for role, lora in loras.items()},
        "backbone": ({"path": str(model.backbone.path), "fingerprint": model.backbone.fingerprint}
                     if model.backbone is not None else None),
        "run": {"fast": fast, "low_vram": low_vram,
                "compile_seconds": round(unet.compile_seconds, 1) if fast else None},
    }
    return GenerateResult(request=request, images=images, seeds=request.seeds(), family=model.family.value,
                          model_name=model.name, device=str(device),
                          seconds=time.perf_counter() - started, details=details)


# Rough activation memory of one CFG row per latent pixel at 2 bytes per value (SD1.5 and SDXL
# UNets with SDPA attention, no grad); only sizes the first try, an OOM halves the chunk.
_BYTES_PER_LATENT_PIXEL_ROW = 24 * 1024
_MAX_CHUNK = 8


def chunk_size(model: LoadedModel, request: GenerateRequest) -> int:
    """How many images of the batch share one UNet call."""
    n = request.batch_count
    if getattr(request, "low_vram", False):
        return 1
    if model.device.type != "cuda":
        return min(n, 4)
    free, _ = torch.cuda.mem_get_info(model.device)
    scale = model.pipeline.vae_scale_factor
    pixels = (request.width // scale) * (request.height // scale)
    per_image = 2 * pixels * _BYTES_PER_LATENT_PIXEL_ROW * max(1, torch.finfo(model.dtype).bits // 16)
    return max(1, min(n, _MAX_CHUNK, int(0.6 * free) // per_image))


def _generate_all(model: LoadedModel, unet, request: GenerateRequest, plan: CraftPlan, hooks: CraftHooks | None,
                  conditioning, progress: ProgressCallback | None, cancel: CancelToken | None) -> list:
    """Denoise the batch in chunks of rows (halving the chunk when the device runs out of memory),
    then decode image by image."""
    seeds = request.seeds()
    size = chunk_size(model, request)
    start, latents = 0, []
    while start < len(seeds):
        chunk = seeds[start:start + size]
        try:
            latents.append(_denoise_chunk(model, unet, request, plan, hooks, conditioning, chunk, start,
                                          -(-len(seeds) // size), progress, cancel))
        except Exception as exc:
            if size == 1 or not is_out_of_memory(exc):
                raise
            log.info("out of memory with %d images per UNet call; trying %d", size, size // 2)
            del exc
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            size //= 2
            continue
        start += len(chunk)
    images = []
    for index, row in enumerate(torch.cat(latents)):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress:
            progress(ProgressEvent("decode", index + 1, request.batch_count, index, request.batch_count))
        images.append(decode(model, row[None]))
    return images


def _denoise_chunk(model: LoadedModel, unet, request: GenerateRequest, plan: CraftPlan, hooks: CraftHooks | None,
                   conditioning, seeds: list[int], first: int, chunks: int,
                   progress: ProgressCallback | None, cancel: CancelToken | None) -> torch.Tensor:
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
    scheduler.set_timesteps(request.steps, device=model.device)
    latents = torch.cat([initial_latents(model, scheduler, request.width, request.height, g)
                         for g in generators])
    size = (request.width, request.height)
    graph = unet is not model.unet
    if graph and hooks is not None:
        n = len(seeds)
        hooks.prepare_graph(2 * n, slice(n, 2 * n), model.device, model.dtype)
    settings = LoopSettings(
        guidance=plan.guidance, preview_every=request.preview_every, image_index=first // len(seeds),
        image_count=chunks, hooks=hooks, graph=graph,
        preview=lambda lat: latent_preview(lat, model.family, size),
    )
    latents = denoise(unet, scheduler, latents, conditioning, settings,
                      generators[0] if len(generators) == 1 else generators, progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    check_finite_output(latents, "sampling", model.dtype)
    return latents
