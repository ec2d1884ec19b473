"""`train_backbone`: Rank-FT on content and style references, saved as a backbone file (W_init).

Data (DESIGN.md §1): up to `max_content` content and `max_style` style references; content
images are low-pass filtered. The N×M (content, style) pairs are visited in a shuffled order per
epoch; step 2k is the content step of pair k (content bases applied, trained on the low-passed
content image with the neutral caption), step 2k+1 its style step (style bases, style image,
style caption). Every step also adds the orthogonality penalty λ·mean_l ‖Q_cᵀQ_s‖²_F, whose
gradient reaches both banks. With a preservation folder (`keep_dir`) every step also adds
κ·‖ε(W_init) − ε(W0)‖² on a noised preservation picture with its caption, the step's bases
applied: W0's own prediction is the target, so the bases are pulled toward directions the base
model does not need for what it already draws (prior preservation by distillation). The frozen
UNet is never copied (see rank_ft.Projection).

On several processes (replicas.py) the bases run under DDP (their QR is the module call DDP
watches), each process takes its rows of every global batch (the preservation batch too), and
the main process alone encodes the references and captions and writes checkpoints and the file.

The result is saved with engine.backbone.save_backbone: the merged Q per layer plus the base
model's fingerprint and family, r_max, r_min, σ, λ, steps and the full (resolved) request.
"""

from __future__ import annotations

import dataclasses
import json
import time

import torch

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.markers import strip_markers
from craftstudio.domain.progress import ProgressCallback
from craftstudio.domain.training import BackboneTrainRequest, TrainResult, comparable
from craftstudio.engine.backbone import save_backbone
from craftstudio.engine.fingerprint import model_fingerprint
from craftstudio.engine.training import checkpoint as ckpt
from craftstudio.engine.training.compiled_step import begin_step, step_module
from craftstudio.engine.training.data import check_sizes, collect_images, load_set, read_captions
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    LatentCache,
    NoisyBatch,
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
from craftstudio.engine.training.losses import make_denoising_loss, orthogonality_penalty
from craftstudio.engine.training.rank_ft import CONTENT, STYLE, Projection, ProjectionBases, layer_specs


@dataclasses.dataclass
class RankFtStep:
    """One Rank-FT optimisation step; shared with the training benchmark."""

    setup: DenoisingSetup
    bases: ProjectionBases
    projection: Projection
    optimizer: torch.optim.Optimizer
    ortho_weight: float
    keep_weight: float = 0.0
    replicated: torch.nn.Module | None = None  # `bases` under DDP on several processes

    def __call__(self, role: str, batch: NoisyBatch, text: TextConditioning,
                 keep: tuple[NoisyBatch, TextConditioning] | None = None) -> dict[str, torch.Tensor]:
        begin_step()
        q_c, q_s = (self.replicated if self.replicated is not None else self.bases)((CONTENT, STYLE))
        self.projection.set_bases(self.bases.per_layer(q_c if role == CONTENT else q_s, self.projection.dtype))
        denoise = denoising_loss(self.setup, batch, text)
        ortho = orthogonality_penalty((q_c[k], q_s[k]) for k in q_c)
        through_unet = denoise
        terms = {"denoise": denoise.detach(), "ortho": ortho.detach()}
        if keep is not None:
            kept = preservation_loss(self.setup, self.projection, *keep)
            through_unet = through_unet + self.keep_weight * kept
            terms["keep"] = kept.detach()
        total = through_unet + self.ortho_weight * ortho
        precision = self.setup.precision
        if self.projection.staged:  # two passes: the UNet's terms to the staged Q, then on to the bases
            precision.backward(through_unet)
            self.projection.backward_into_bases(precision.scaled(self.ortho_weight * ortho))
        else:
            precision.backward(total)
        precision.step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        self.projection.set_bases(None)  # drop this step's graph
        return {"loss": total.detach(), **terms}


def preservation_loss(setup: DenoisingSetup, projection: Projection, batch: NoisyBatch,
                      text: TextConditioning) -> torch.Tensor:
    """‖ε(W_init) − ε(W0)‖² on one noised preservation batch, the active bases applied."""
    with torch.no_grad(), projection.suspended():
        teacher = predict(setup, batch, text)
    return (predict(setup, batch, text).float() - teacher.float()).pow(2).mean()


def make_optimizer(params, learning_rate: float) -> torch.optim.Optimizer:
    # No weight decay: it would shrink B, which Q = QR(B) ignores anyway, only wasting steps.
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)


def train_backbone(request: BackboneTrainRequest, *, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    """Train content/style bases and save the merged backbone to `request.out`."""
    request.validate()
    out = check_output(request.out, request.overwrite)
    if resume:  # a damaged or implausible checkpoint fails before the model loads
        ckpt.load_checkpoint(ckpt.checkpoint_folder(out), request.steps)
    started = time.perf_counter()
    tell(progress, "prepare", "checking images")
    content = collect_images([request.content_dir], what="content references", limit=request.max_content)
    style = collect_images([request.style_dir], what="style references", limit=request.max_style)
    keep = collect_images([request.keep_dir], what="preservation pictures") if request.keep_dir else None
    skipped = content.skipped + style.skipped + (keep.skipped if keep else [])
    report_skipped(progress, skipped)
    loaded = load_training_model(request, progress)
    device, precision, model, resolution = loaded.device, loaded.precision, loaded.model, loaded.resolution
    replicas = loaded.replicas
    if not replicas.is_main:
        progress = None  # the main process reports for all
    request = dataclasses.replace(request, resolution=resolution)
    check_sizes(content.paths, resolution, upscale=request.upscale, what="content references")
    check_sizes(style.paths, resolution, upscale=request.upscale, what="style references")
    if keep is not None:
        check_sizes(keep.paths, resolution, upscale=request.upscale, what="preservation pictures")
    raise_if_cancelled(cancel, loaded.replicas)

    with user_errors(device, "training the backbone"):
        tell(progress, "prepare", "encoding images")
        share = replicas.share  # computed by the main process, received by the others
        latents = {CONTENT: share(lambda: LatentCache.encode(model, load_set(content.paths, resolution, request.sigma)),
                                  LatentCache),
                   STYLE: share(lambda: LatentCache.encode(model, load_set(style.paths, resolution)), LatentCache)}
        text = {role: share(lambda caption=caption: encode_caption(
                    model, strip_markers(caption.format(trigger="")), resolution), TextConditioning)
                for role, caption in ((CONTENT, request.content_caption), (STYLE, request.style_caption))}
        keep_set: tuple[LatentCache, TextConditioning] | None = None
        if keep is not None:  # a picture without a caption file keeps the unconditional prediction
            captions = [strip_markers(c or "").strip() for c in read_captions(keep.paths)]
            keep_set = (share(lambda: LatentCache.encode(model, load_set(keep.paths, resolution)), LatentCache),
                        share(lambda: encode_captions(model, captions, resolution), TextConditioning))
        offload_text_encoders(model, keep_vae=False)
        unet = model.unet
        unet.requires_grad_(False)
        if request.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        specs = layer_specs(unet, request.r_max, request.r_min)
        bases = ProjectionBases(specs, request.seed, device, init=request.init,
                                weights={s.name: unet.get_submodule(s.name).weight for s in specs})
        noise_scheduler = make_noise_scheduler(model.pipeline.scheduler.config)
        module = step_module(unet, request.fast, device, lambda message: tell(progress, "prepare", message))
        setup = DenoisingSetup(module, noise_scheduler, precision, make_denoising_loss(request.loss, noise_scheduler))
        optimizer = make_optimizer(bases.parameters(), request.learning_rate)
        # Compiled, the step gets fixed input tensors (staged): without them CUDA graphs made it slower
        # than eager (rank_ft.Projection says by how much).
        projection = Projection(unet, [s.name for s in specs], staged=request.fast)
        params = dict(bases.named_parameters())
        folder = ckpt.checkpoint_folder(out)
        losses: list[dict[str, float]] = []
        start = ckpt.resume_or_start(folder, resume, comparable(request), params, optimizer, precision,
                                     losses, lambda text: tell(progress, "prepare", text), request.steps,
                                     is_main=replicas.is_main, processes=replicas.world)
        step_fn = RankFtStep(setup, bases, projection, optimizer, request.ortho_weight, request.keep_weight,
                             replicas.wrap(bases) if replicas.world > 1 else None)
        pairs = len(latents[CONTENT]) * len(latents[STYLE])
        num_timesteps = noise_scheduler.config.num_train_timesteps
        rows = replicas.rows(request.batch_size)

        def one_step(step: int) -> dict[str, float]:
            gen = step_generator(request.seed, step)
            role = CONTENT if step % 2 == 0 else STYLE
            chosen = batch_indices(pairs, request.batch_size, request.seed, step // 2)
            # Pair p = (content p // M, style p % M).
            m = len(latents[STYLE])
            indices = [p // m for p in chosen] if role == CONTENT else [p % m for p in chosen]
            batch = draw_batch(latents[role], indices, gen, num_timesteps, device, rows)
            kept = None
            if keep_set is not None:  # drawn after the step's own batch, which stays as without it
                keep_latents, keep_text = keep_set
                picked = batch_indices(len(keep_latents), request.batch_size, request.seed + 1, step)
                kept = (draw_batch(keep_latents, picked, gen, num_timesteps, device, rows),
                        keep_text.take(picked[rows]))
            return replicas.mean(step_fn(role, batch, text[role], kept))

        def save_state(step: int) -> None:
            if replicas.is_main:
                ckpt.save_checkpoint(folder, ckpt.Checkpoint(step, params, optimizer.state_dict(),
                                                             comparable(request), list(losses), precision.state(),
                                                             replicas.world))

        tell(progress, "train", "training", start, request.steps)
        with projection.installed():
            run_steps(LoopHooks(one_step, save_state), start=start, total=request.steps,
                      checkpoint_every=request.checkpoint_every, sample_every=0, losses=losses,
                      progress=progress, cancel=cancel, replicas=replicas)

    if not replicas.is_main:  # the main process writes the file
        return TrainResult(request=request, out=str(out), steps=request.steps,
                           seconds=time.perf_counter() - started, device=str(device), resolution=resolution,
                           losses=losses, resumed_from=start, details={"replica": True})

    tell(progress, "save", f"saving {out}")
    merged = bases.merged()
    check_output(out, request.overwrite)  # it may have appeared while we trained
    fingerprint = model_fingerprint(model.path)
    extra = {
        "craft.init": request.init, "craft.sigma": repr(request.sigma), "craft.lambda": repr(request.ortho_weight),
        "craft.keep_weight": repr(request.keep_weight if keep is not None else 0.0),
        "craft.steps": str(request.steps), "craft.orthonormalization": bases.method,
        "craft.request": json.dumps(request.to_dict()),
        "modelspec.title": request.title or out.stem,
        "modelspec.date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    save_backbone(out, merged, fingerprint=fingerprint, family=model.family, base_name=model.name,
                  r_max=request.r_max, r_min=request.r_min, extra=extra)
    ckpt.remove_checkpoints(folder)
    ranks = sorted({s.rank for s in specs})
    return TrainResult(
        request=request, out=str(out), steps=request.steps, seconds=time.perf_counter() - started,
        device=str(device), resolution=resolution, losses=losses, resumed_from=start, skipped=skipped,
        details={"layers": len(specs), "init": request.init, "ranks": ranks, "merged_rank_total": sum(2 * s.rank for s in specs),
                 "precision": precision.label, "family": model.family.value,
                 "content_images": [str(p) for p in content.paths],
                 "style_images": [str(p) for p in style.paths], "orthonormalization": bases.method,
                 "keep_images": [str(p) for p in keep.paths] if keep else []},
    )

