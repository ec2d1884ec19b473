"""Generate images for a `GenerateRequest`: load (cached), encode, denoise, decode.

With LoRAs this is the CRAFT sampler: W_init from the backbone (baked into the cached model),
routed LoRA layers confined to their sets, and per step ε = ε_u + s_k·(ε_c − ε_u) where only the
conditional rows carry the gated LoRAs (see craft_plan.py, craft_layers.py and sampler.py).
The peer fusion modes swap the hooks: K-LoRA (fusion_klora.py), LoRA Switch and LoRA Composite
(fusion_multi.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import NonFiniteOutput, OutOfMemory
from craftstudio.domain.generation import FusionMode, GenerateRequest, GenerateResult, steps_skipped
from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.engine import compiled_unet, model_cache
from craftstudio.engine.conditioning import encode
from craftstudio.engine.craft_layers import BranchState, installed
from craftstudio.engine.craft_plan import CraftHooks, CraftPlan
from craftstudio.engine.devices import is_out_of_memory, pick_device, pick_dtype
from craftstudio.engine.fusion_klora import KLoraHooks, table_for
from craftstudio.engine.fusion_multi import SWITCH_EVERY, CompositeHooks, switch_roles
from craftstudio.engine.img2img import (
    Blend,
    Source,
    latent_channels,
    make_source,
    overlay,
    vae_tiling,
)
from craftstudio.engine.init_image import InputPicture, read_init_image, read_mask
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
    return seeded_noise(model, width, height, generator) * scheduler.init_noise_sigma


def seeded_noise(model: LoadedModel, width: int, height: int, generator: torch.Generator) -> torch.Tensor:
    """Unit noise of one image's latent shape (the VAE's channels: an inpainting UNet takes more)."""
    from diffusers.utils.torch_utils import randn_tensor

    scale = model.pipeline.vae_scale_factor
    shape = (1, latent_channels(model), height // scale, width // scale)
    latents = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
    return latents.to(model.device, model.dtype)


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor):
    """Latents → PIL image through the VAE (in fp32 when fp16 would overflow, as diffusers does)."""
    vae = model.vae
    if vae.dtype == torch.float16 and vae.config.get("force_upcast", False):
        vae.to(torch.float32)
    scale = model.pipeline.vae_scale_factor
    with vae_tiling(model, latents.shape[-1] * scale, latents.shape[-2] * scale):
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


@dataclass
class Pictures:
    """The request's own pictures at the request size (None when it starts from noise)."""

    init: InputPicture | None = None
    mask: InputPicture | None = None

    @classmethod
    def read(cls, request: GenerateRequest) -> Pictures:
        if request.init_image is None:
            return cls()
        size = (request.width, request.height)
        init = read_init_image(request.init_image, size)
        mask = (read_mask(request.mask, size, init.source_size, request.mask_blur)
                if request.mask is not None else None)
        return cls(init, mask)

    def recorded(self, request: GenerateRequest) -> GenerateRequest:
        """`request` with the pictures' hashes filled in."""
        if self.init is None:
            return request
        return dataclasses.replace(request, init_image_sha256=self.init.sha256,
                                   mask_sha256=self.mask.sha256 if self.mask else None)

    def record(self, request: GenerateRequest) -> dict | None:
        if self.init is None:
            return None
        return {"init_image": request.init_image, "init_image_sha256": self.init.sha256,
                "strength": request.strength, "steps_run": request.steps - steps_skipped(request.steps,
                                                                                          request.strength),
                "mask": request.mask, "mask_sha256": self.mask.sha256 if self.mask else None,
                "mask_blur": request.mask_blur if self.mask else None,
                "notes": self.mask.notes if self.mask else []}


@dataclass
class Pass:
    """One denoising pass over the batch: its size, schedule, plan and where each image starts."""

    width: int
    height: int
    steps: int
    plan: CraftPlan
    hooks: CraftHooks | CompositeHooks | None
    conditioning: object
    sources: list[Source]  # one per image, or one shared by all
    label: str = ""  # what progress calls this pass ("" for the request's own)
    replicas: int = 1  # LoRA Composite: one copy of the CFG batch per LoRA in each UNet call

    def source(self, index: int) -> Source:
        return self.sources[index if len(self.sources) > 1 else 0]


def generate(request: GenerateRequest, *, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> GenerateResult:
    """Generate `request.batch_count` images; raises `Cancelled` or a `UserError` on bad input."""
    request.validate()
    plan = CraftPlan.build(request, request.steps)  # bad markers / curves fail before any loading
    check_inputs(request)  # so do missing, looping, special or damaged files
    pictures = Pictures.read(request)  # and unreadable pictures or masks
    started = time.perf_counter()
    device = pick_device(request.device)
    dtype = pick_dtype(device)
    if progress:
        progress(ProgressEvent("load", 0, 1, message="loading model"))
        for note in (pictures.mask.notes if pictures.mask else []):
            progress(ProgressEvent("load", 0, 1, message=note))
    switches = request.effective_switches
    mode = request.mode
    low_vram = bool(getattr(request, "low_vram", False))
    try:
        model = model_cache.get_model(request.model, device, dtype,
                                      request.backbone if switches.backbone else None, low_vram=low_vram)
        loras = {role: model_cache.get_lora(ref.path, model)
                 for role, ref in ((CONTENT, request.content_lora), (STYLE, request.style_lora)) if ref}
        sets = (LayerSets.for_family(model.family, request.routing_overrides, request.routing_preset)
                if switches.routing else None)
        state = BranchState()
        # Fast path: compiled UNet (not with offloading: its hooks move weights between calls;
        # not for K-LoRA and Composite, whose layers and batch layout change per step).
        fast = (bool(getattr(request, "fast", False)) and not low_vram and compiled_unet.supported(device)
                and mode not in (FusionMode.K_LORA, FusionMode.COMPOSITE))
        unet = compiled_unet.for_unet(model.unet) if fast else model.unet
        with installed(model.unet, loras, state, sets, device=model.device,
                       shared_inputs=mode is not FusionMode.K_LORA) as report:
            hooks_for = _hooks_factory(mode, model.unet, loras, state) if loras else None
            images = _run_passes(model, unet, request, plan, hooks_for, pictures, progress, cancel)
    except Exception as exc:
        if is_out_of_memory(exc):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            hint = "" if low_vram else ", turn on low-VRAM mode (--low-vram)"
            width, height = request.output_size
            raise OutOfMemory(f"{device.type.upper()} ran out of memory at {width}x{height}: "
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
        "image_to_image": pictures.record(request),
        "hires": _hires_record(request),
        "peer": _peer_record(mode, plan, loras, hooks_for),
    }
    return GenerateResult(request=pictures.recorded(request), images=images, seeds=request.seeds(),
                          family=model.family.value, model_name=model.name, device=str(device),
                          seconds=time.perf_counter() - started, details=details)


HooksFactory = Callable[[CraftPlan], "CraftHooks | CompositeHooks"]


def _hooks_factory(mode: FusionMode, unet, loras: dict, state: BranchState) -> HooksFactory:
    """How each pass's plan becomes the hooks that set the LoRA layers before every UNet call."""
    roles = [role for role in (CONTENT, STYLE) if role in loras]
    if mode is FusionMode.K_LORA and len(roles) == 2:
        table = table_for(loras[CONTENT], loras[STYLE])
        layers = {name: unet.get_submodule(name)._craft_layer for name in table.sums}
        return lambda plan: KLoraHooks(plan, state, table, layers)
    if mode is FusionMode.COMPOSITE:
        return lambda plan: CompositeHooks(plan, state, roles)
    return lambda plan: CraftHooks(plan, state)


def _peer_record(mode: FusionMode, plan: CraftPlan, loras: dict, hooks_for: HooksFactory | None) -> dict | None:
    """What a peer fusion mode did (None for craft, direct and custom)."""
    if mode in (FusionMode.CRAFT, FusionMode.DIRECT, FusionMode.CUSTOM):
        return None
    record: dict = {"paper": "arXiv 2502.18461" if mode is FusionMode.K_LORA else "arXiv 2402.16843"}
    hooks = hooks_for(plan) if hooks_for is not None else None
    if isinstance(hooks, KLoraHooks | CompositeHooks):
        record.update(hooks.record())
    if mode is FusionMode.SWITCH:
        record.update({"every": SWITCH_EVERY,
                       "active": switch_roles([r for r in (CONTENT, STYLE) if r in loras], len(plan.guidance))})
    return record


def _hires_record(request: GenerateRequest) -> dict | None:
    if request.hires_factor == 1.0:
        return None
    width, height = request.output_size
    return {"factor": request.hires_factor, "strength": request.hires_strength,
            "steps": request.hires_steps or request.steps, "upscaler": "Lanczos",
            "first_pass_size": [request.width, request.height], "size": [width, height]}


def _run_passes(model: LoadedModel, unet, request: GenerateRequest, plan: CraftPlan,
                hooks_for: HooksFactory | None, pictures: Pictures, progress: ProgressCallback | None,
                cancel: CancelToken | None) -> list:
    """The request's pass (from noise or from its picture), then the hires pass if asked for."""
    from PIL import Image

    prompt = plan.prompt.text
    conditioning = encode(model, prompt, request.negative_prompt, request.width, request.height)
    source = Source()
    if pictures.init is not None:
        source = make_source(model, pictures.init.image, request.strength,
                             pictures.mask.image if pictures.mask else None)
    first = _pass(request.width, request.height, request.steps, plan, hooks_for, conditioning, [source])
    images = _generate_all(model, unet, request, first, progress, cancel)
    if pictures.mask is not None:
        images = [overlay(image, pictures.init.image, pictures.mask.image) for image in images]
    if request.hires_factor == 1.0:
        return images
    # Hires: Lanczos on the decoded image, not on latents, so any strength gives a clean
    # picture (latent upscaling leaves blocky latents that only a strength above ~0.5 repaints).
    width, height = request.output_size
    steps = request.hires_steps or request.steps
    hires_plan = CraftPlan.build(request, steps)
    sources = []
    for image in images:
        if cancel is not None:
            cancel.raise_if_cancelled()
        sources.append(make_source(model, image.resize((width, height), Image.Resampling.LANCZOS),
                                   request.hires_strength))
    second = _pass(width, height, steps, hires_plan, hooks_for,
                   encode(model, prompt, request.negative_prompt, width, height), sources, "hires pass")
    return _generate_all(model, unet, request, second, progress, cancel)


def _pass(width: int, height: int, steps: int, plan: CraftPlan, hooks_for: HooksFactory | None, conditioning,
          sources: list[Source], label: str = "") -> Pass:
    hooks = hooks_for(plan) if hooks_for is not None else None
    replicas = len(hooks.roles) if isinstance(hooks, CompositeHooks) and len(hooks.roles) > 1 else 1
    return Pass(width, height, steps, plan, hooks, conditioning, sources, label, replicas)


# Rough activation memory of one CFG row per latent pixel at 2 bytes per value (SD1.5 and SDXL
# UNets with SDPA attention, no grad); only sizes the first try, an OOM halves the chunk.
_BYTES_PER_LATENT_PIXEL_ROW = 24 * 1024
_MAX_CHUNK = 8


def chunk_size(model: LoadedModel, request: GenerateRequest, width: int | None = None,
               height: int | None = None, replicas: int = 1) -> int:
    """How many images of the batch share one UNet call (at `width`×`height`, else the request's;
    `replicas` copies of each image's CFG rows)."""
    n = request.batch_count
    if getattr(request, "low_vram", False):
        return 1
    if model.device.type != "cuda":
        return min(n, 4)
    free, _ = torch.cuda.mem_get_info(model.device)
    scale = model.pipeline.vae_scale_factor
    pixels = ((width or request.width) // scale) * ((height or request.height) // scale)
    per_image = 2 * replicas * pixels * _BYTES_PER_LATENT_PIXEL_ROW * max(1, torch.finfo(model.dtype).bits // 16)
    return max(1, min(n, _MAX_CHUNK, int(0.6 * free) // per_image))


def _generate_all(model: LoadedModel, unet, request: GenerateRequest, run: Pass,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> list:
    """Denoise the batch in chunks of rows (halving the chunk when the device runs out of memory),
    then decode image by image."""
    seeds = request.seeds()
    size = chunk_size(model, request, run.width, run.height, run.replicas)
    start, latents = 0, []
    while start < len(seeds):
        chunk = seeds[start:start + size]
        try:
            latents.append(_denoise_chunk(model, unet, request, run, chunk, start, -(-len(seeds) // size),
                                          progress, cancel))
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


def _start_latents(model: LoadedModel, scheduler, run: Pass, source: Source, noise: torch.Tensor,
                   first: int) -> torch.Tensor:
    """The chunk's latents at step `first`: noise, or the picture noised to that step's level."""
    if source.latents is None or (source.inpaint_input is not None and source.strength >= 1.0):
        return noise * scheduler.init_noise_sigma  # an inpainting UNet at strength 1 starts from noise
    known = source.latents.expand_as(noise)
    if first >= run.steps:
        return known.clone()  # no step runs: the picture itself
    return scheduler.add_noise(known, noise, scheduler.timesteps[first:first + 1].repeat(noise.shape[0]))


def _denoise_chunk(model: LoadedModel, unet, request: GenerateRequest, run: Pass, seeds: list[int], first: int,
                   chunks: int, progress: ProgressCallback | None, cancel: CancelToken | None) -> torch.Tensor:
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
    scheduler.set_timesteps(run.steps, device=model.device)
    noise = torch.cat([seeded_noise(model, run.width, run.height, g) for g in generators])
    source = Source.stack([run.source(first + i) for i in range(len(seeds))])
    first_step = 0 if source.latents is None else steps_skipped(run.steps, source.strength)
    if first_step and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(first_step * scheduler.order)
    latents = _start_latents(model, scheduler, run, source, noise, first_step)
    hooks = run.hooks
    graph = unet is not model.unet
    if graph and hooks is not None:
        n = len(seeds)
        hooks.prepare_graph(2 * n, slice(n, 2 * n), model.device, model.dtype)
    settings = LoopSettings(
        guidance=run.plan.guidance, preview_every=request.preview_every, image_index=first // len(seeds),
        image_count=chunks, hooks=hooks, graph=graph, first_step=first_step, replicas=run.replicas,
        label=run.label,
        extra_input=source.inpaint_input,
        after_step=Blend(scheduler, source, noise, scheduler.timesteps) if source.blends else None,
        preview=lambda lat: latent_preview(lat, model.family, (run.width, run.height)),
    )
    latents = denoise(unet, scheduler, latents, run.conditioning, settings,
                      generators[0] if len(generators) == 1 else generators, progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    check_finite_output(latents, "sampling", model.dtype)
    return latents
