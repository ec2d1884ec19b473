"""`train_lora`: a routed content or style LoRA, DreamBooth-style, from a few reference images.

The model is loaded fresh (never the shared cached instance: training changes it), W_init is
applied when a backbone is chosen (refused if it was made for another base model), and a peft
LoRA is added to exactly the role's modules: I_c for content, I_s for style (routing.LayerSets,
with the request's per-block overrides). Every image is captioned with the template holding
the trigger phrase, or by its own caption file (`cat.png` + `cat.txt`), markers stripped, as at
inference. The loss is the denoising loss of denoising.py; LoRA matrices train in fp32 under
autocast (precision.py).

On several processes (replicas.py) the UNet runs under DDP, each process trains on its rows of
every global batch, and the main process alone encodes the images and captions (the others
receive them), makes the samples, writes checkpoints and the file.

Checkpoints (checkpoint.py) every `checkpoint_every` steps and on cancel go to
`<out>.checkpoints/`; `resume=True` continues from there and ends with the weights an
uninterrupted run would have. The LoRA file is written only after the last step (lora_format.py),
and the checkpoints are removed after it is written.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import RequestError
from craftstudio.domain.progress import PreviewEvent, ProgressCallback
from craftstudio.domain.training import LoraTrainRequest, TrainResult, comparable
from craftstudio.engine.backbone import apply_backbone, check_fits, load_backbone
from craftstudio.engine.fingerprint import file_sha256, model_fingerprint
from craftstudio.engine.routing import LayerSets, modules_by_role, target_modules
from craftstudio.engine.training import checkpoint as ckpt
from craftstudio.engine.training.compiled_step import begin_step, step_module
from craftstudio.engine.training.data import (
    caption_file,
    check_sizes,
    collect_images,
    load_set,
    read_captions,
)
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    LatentCache,
    TextConditioning,
    batch_indices,
    denoising_loss,
    draw_batch,
    encode_caption,
    encode_captions,
    make_noise_scheduler,
    offload_text_encoders,
    predict,
    step_generator,
)
from craftstudio.engine.training.loop import (
    LoopHooks,
    check_output,
    load_training_model,
    raise_if_cancelled,
    report_skipped,
    run_steps,
    tell,
    user_errors,
)
from craftstudio.engine.training.lora_format import lora_metadata, save_lora
from craftstudio.engine.training.losses import make_denoising_loss
from craftstudio.engine.training.samples import Sampler, sample_prompt

ADAPTER = "craft_train"


def add_lora(unet: torch.nn.Module, modules: list[str], rank: int, alpha: float, seed: int,
             adapter_name: str = ADAPTER) -> dict[str, torch.nn.Parameter]:
    """A peft LoRA on exactly `modules` (full names); returns its trainable parameters (fp32).

    Initialised as peft's "gaussian" scheme (A ~ N(0, 1/r), B = 0, so training starts from the
    unchanged model), but drawn from a generator seeded by `seed`, not the global RNG."""
    from peft import LoraConfig
    from peft.tuners.lora import LoraLayer

    unet.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(modules), init_lora_weights="gaussian")
    unet.add_adapter(config, adapter_name=adapter_name)
    gen = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        for module in (m for _, m in sorted(unet.named_modules(), key=lambda item: item[0])):
            if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
                down = module.lora_A[adapter_name].weight
                down.copy_(torch.randn(down.shape, generator=gen) / rank)
                module.lora_B[adapter_name].weight.zero_()
    params = {name: p for name, p in unet.named_parameters() if p.requires_grad}
    for p in params.values():
        p.data = p.data.float()  # small updates survive only in fp32 (autocast computes in 16-bit)
    return params


def make_optimizer(params, learning_rate: float, adam_8bit: bool) -> torch.optim.Optimizer:
    if adam_8bit:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise RequestError("8-bit Adam needs the bitsandbytes package, which is not installed: install "
                               "it or train without --adam-8bit.")
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=learning_rate, weight_decay=1e-2)
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-2)


@dataclasses.dataclass
class LoraStep:
    """One LoRA optimisation step; shared with the training benchmark. With `uncond_weight` κ_u > 0
    the step also pulls the LoRA's prediction for the empty caption (`uncond`) towards the base
    model's on the same noisy batch (the adapters of `lora_unet` switched off, no gradient)."""

    setup: DenoisingSetup
    optimizer: torch.optim.Optimizer
    uncond: TextConditioning | None = None
    uncond_weight: float = 0.0
    lora_unet: torch.nn.Module | None = None

    def __call__(self, batch, text: TextConditioning) -> dict[str, torch.Tensor]:
        begin_step()
        loss = denoising_loss(self.setup, batch, text)
        terms = {"loss": loss.detach()}
        if self.uncond_weight and self.uncond is not None and self.lora_unet is not None:
            with torch.no_grad():
                self.lora_unet.disable_adapters()
                try:
                    base = predict(self.setup, batch, self.uncond)
                finally:
                    self.lora_unet.enable_adapters()
            keep = torch.nn.functional.mse_loss(predict(self.setup, batch, self.uncond).float(), base.float())
            loss = loss + self.uncond_weight * keep
            terms["uncond"] = keep.detach()
        self.setup.precision.backward(loss)
        self.setup.precision.step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        return terms


def role_modules(unet: torch.nn.Module, family, role: str, overrides: dict[str, str] | None,
                 preset: str = "craft") -> list[str]:
    modules = modules_by_role(target_modules(unet), LayerSets.for_family(family, overrides, preset))[role]
    if not modules:
        raise RequestError(f"The {role} layer set of this model is empty (check the routing overrides): "
                           "there is nothing to train.")
    return modules


def train_lora(request: LoraTrainRequest, *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    """Train a content or style LoRA and save it to `request.out`."""
    request.validate()
    out = check_output(request.out, request.overwrite)
    if resume:  # a damaged or implausible checkpoint fails before the model loads
        ckpt.load_checkpoint(ckpt.checkpoint_folder(out), request.steps)
    started = time.perf_counter()
    tell(progress, "prepare", "checking images")
    images = collect_images(request.images, what="training images")
    report_skipped(progress, images.skipped)
    backbone = load_backbone(request.backbone) if request.backbone else None
    loaded = load_training_model(request, progress)
    device, precision, model, resolution = loaded.device, loaded.precision, loaded.model, loaded.resolution
    replicas = loaded.replicas
    if not replicas.is_main:
        progress = None  # the main process reports for all
    fingerprint = model_fingerprint(model.path)
    if backbone is not None:
        check_fits(backbone, fingerprint=fingerprint, family=model.family, model_name=model.name)
    request = dataclasses.replace(request, resolution=resolution)
    check_sizes(images.paths, resolution, upscale=request.upscale, what="training images")
    captions = [request.image_caption(text, str(caption_file(path)))
                for path, text in zip(images.paths, read_captions(images.paths), strict=True)]
    raise_if_cancelled(cancel, loaded.replicas)

    with user_errors(device, "training the LoRA"):
        unet = model.unet
        if backbone is not None:
            apply_backbone(unet, backbone.bases)
        tell(progress, "prepare", "encoding images")
        latents = replicas.share(lambda: LatentCache.encode(model, load_set(images.paths, resolution)), LatentCache)
        text = replicas.share(lambda: encode_captions(model, captions, resolution), TextConditioning)
        uncond = encode_caption(model, "", resolution) if request.uncond_weight else None  # one process only
        sets = LayerSets.for_family(model.family, request.routing_overrides, request.routing_preset)
        sampler = None
        if request.sample_every and replicas.is_main:
            prompt = sample_prompt(request.role, request.caption_text, request.sample_prompt)
            sampler = Sampler(model, request.role, prompt, resolution, request.sample_steps, request.seed, sets)
        modules = role_modules(unet, model.family, request.role, request.routing_overrides, request.routing_preset)
        offload_text_encoders(model, keep_vae=sampler is not None)
        params = add_lora(unet, modules, request.rank, request.lora_alpha, request.seed)
        if request.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        noise_scheduler = make_noise_scheduler(model.pipeline.scheduler.config)
        # The step runs the UNet through DDP; samples and the saved file use the UNet itself.
        module = step_module(replicas.wrap(unet), request.fast, device,
                             lambda message: tell(progress, "prepare", message))
        setup = DenoisingSetup(module, noise_scheduler, precision, make_denoising_loss(request.loss, noise_scheduler))
        optimizer = make_optimizer(list(params.values()), request.learning_rate, request.adam_8bit)
        step_fn = LoraStep(setup, optimizer, uncond, request.uncond_weight, unet)
        folder = ckpt.checkpoint_folder(out)
        losses: list[dict[str, float]] = []
        start = ckpt.resume_or_start(folder, resume, comparable(request), params, optimizer, precision,
                                     losses, lambda message: tell(progress, "prepare", message), request.steps,
                                     is_main=replicas.is_main, processes=replicas.world)
        num_timesteps = noise_scheduler.config.num_train_timesteps
        rows = replicas.rows(request.batch_size)

        def one_step(step: int) -> dict[str, float]:
            gen = step_generator(request.seed, step)
            indices = batch_indices(len(latents), request.batch_size, request.seed, step)
            batch = draw_batch(latents, indices, gen, num_timesteps, device, rows)
            return replicas.mean(step_fn(batch, text.take(indices[rows])))

        def save_state(step: int) -> None:
            if replicas.is_main:
                ckpt.save_checkpoint(folder, ckpt.Checkpoint(step, params, optimizer.state_dict(),
                                                             comparable(request), list(losses), precision.state(),
                                                             replicas.world))

        def sample(step: int) -> None:
            # Not cancellable halfway on several processes: the others wait at the next step,
            # where the stop is decided together.
            image = sampler(ADAPTER, cancel if replicas.world == 1 else None)
            if progress is not None:
                progress(PreviewEvent(step, request.steps, image))

        tell(progress, "train", "training", start, request.steps)
        run_steps(LoopHooks(one_step, save_state, sample if sampler else None), start=start,
                  total=request.steps, checkpoint_every=request.checkpoint_every,
                  sample_every=request.sample_every, losses=losses, progress=progress, cancel=cancel,
                  replicas=replicas)

    if not replicas.is_main:
        return _replica_result(request, out, started, device, resolution, losses, start)
    tell(progress, "save", f"saving {out}")
    metadata = lora_metadata(
        request, family=model.family, prediction_type=noise_scheduler.config.prediction_type,
        resolution=resolution, module_names=modules,
        backbone_sha256=file_sha256(backbone.path) if backbone is not None and backbone.path else "",
        base_fingerprint=fingerprint,
    )
    save_lora(unet, ADAPTER, type(model.pipeline), out, metadata, overwrite=request.overwrite)
    ckpt.remove_checkpoints(folder)
    return TrainResult(
        request=request, out=str(out), steps=request.steps, seconds=time.perf_counter() - started,
        device=str(device), resolution=resolution, losses=losses, resumed_from=start, skipped=images.skipped,
        details={"layers": len(modules), "blocks": metadata["craft.layers"], "precision": precision.label,
                 "family": model.family.value, "images": [str(p) for p in images.paths],
                 "caption": request.caption_text,
                 "captions": dict(zip((str(p) for p in images.paths), captions, strict=True)),
                 "backbone": metadata["craft.backbone"] or None},
    )


def _replica_result(request, out, started: float, device, resolution: int, losses, start: int) -> TrainResult:
    """What a process other than the main one returns: the main process wrote the file."""
    return TrainResult(request=request, out=str(out), steps=request.steps, seconds=time.perf_counter() - started,
                       device=str(device), resolution=resolution, losses=losses, resumed_from=start,
                       details={"replica": True})
