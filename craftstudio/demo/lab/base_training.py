"""Train the demo base model: `python -m craftstudio.demo train-base --out DIR`.

1. Render pictures in parallel worker processes: the autoencoder's set holds every class (it is
   a generic codec, as SD's VAE is trained far beyond any fine-tune's concepts); the diffusion
   set holds only the base model's training classes (`SPLIT`), so held-out shapes and styles
   stay new concepts for LoRAs.
2. Train the autoencoder (`autoencoder_training.py`) and encode the diffusion set once.
3. Train the UNet jointly with the text encoder (the text encoder learns what the world's words
   mean; spare trigger tokens keep their initial embeddings, never seen in training). ε-prediction
   on SD1.x's scaled-linear DDPM schedule, Min-SNR-5 loss weights, 10% empty captions for
   classifier-free guidance, EMA weights (decay 0.999) saved. bf16 autocast on CUDA.
4. Save the diffusers folder (fp16, shards ≤ 14 MB) with `shapesworld.json` (configuration, loss
   log, check results), a sample sheet beside it, and an oracle check of generated samples.

Seeds make runs repeatable; with a time budget, step counts shrink to fit (and are recorded).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from craftstudio.demo.lab.autoencoder_training import (
    AutoencoderPhase,
    StepBudget,
    cosine_lr,
    encode_pictures,
    measure_scale,
    reconstruction_error,
    train_autoencoder,
)
from craftstudio.demo.lab.base_model import (
    ModelSizes,
    build_components,
    folder_report,
    save_pipeline,
    training_scheduler,
)
from craftstudio.demo.world import SHAPES, SPLIT, STYLES, caption, default_workers, render_random


@dataclass(frozen=True)
class DiffusionPhase:
    steps: int = 6000
    batch: int = 512
    lr: float = 4e-4
    text_lr: float = 2e-4
    warmup: int = 200
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999


@dataclass(frozen=True)
class BaseTrainConfig:
    seed: int = 0
    device: str = "cuda"
    vae_images: int = 60_000
    images: int = 150_000
    autoencoder: AutoencoderPhase = field(default_factory=AutoencoderPhase)
    diffusion: DiffusionPhase = field(default_factory=DiffusionPhase)
    sizes: ModelSizes = field(default_factory=ModelSizes)
    time_budget: float = 400.0  # seconds for both training phases; 0 = no limit
    autoencoder_share: float = 0.25  # of the time budget
    workers: int = 0  # rendering processes; 0 = one per CPU core
    log_every: int = 100
    recon_images: int = 512  # fresh pictures for the autoencoder's reconstruction error
    check_images: int = 280  # generated at the end and classified by the oracle (0 = skip)
    check_guidance: float = 5.0


class TrainLog:
    """Lines to stdout (flushed) and records for the JSON log."""

    def __init__(self, sink: Callable[[str], None] | None = None) -> None:
        self.started = time.perf_counter()
        self.sink = sink or (lambda line: print(line, flush=True))
        self.records: list[dict[str, Any]] = []

    def __call__(self, line: str) -> None:
        self.sink(f"[{time.perf_counter() - self.started:6.1f}s] {line}")


def _caption_table(train_shapes: tuple[str, ...], train_styles: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Unique captions (index 0 is the empty caption) and a (shape, style) → index table."""
    captions = [""]
    table = np.zeros((len(SHAPES), len(STYLES)), dtype=np.int64)
    for shape in train_shapes:
        for style in train_styles:
            table[SHAPES.index(shape), STYLES.index(style)] = len(captions)
            captions.append(caption(shape, style))
    return captions, table


class Ema:
    """Exponential moving average of parameters (fp32 shadow copies), with the usual warm-up."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float) -> None:
        self.params, self.decay = params, decay
        self.shadow = [p.detach().float().clone() for p in params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for p, s in zip(self.params, self.shadow, strict=True):
            p.copy_(s.to(p.dtype))


def train_diffusion(unet, text_encoder, tokenizer, means: torch.Tensor, stds: torch.Tensor, caption_index: torch.Tensor,
                    captions: list[str], scale: float, phase: DiffusionPhase, device: torch.device,
                    generator: torch.Generator, log: TrainLog, seconds: float, log_every: int) -> None:
    """Train `unet` and `text_encoder` on pre-encoded latents; leaves their EMA weights in place."""
    autocast = device.type == "cuda"
    scheduler = training_scheduler()
    alphas = scheduler.alphas_cumprod.to(device)
    snr = alphas / (1 - alphas)
    loss_weight = torch.clamp(snr, max=phase.min_snr_gamma) / snr
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    unet.to(device).train()
    text_encoder.to(device).train()
    optimizer = torch.optim.AdamW([
        {"params": list(unet.parameters()), "lr": phase.lr, "base": phase.lr},
        {"params": list(text_encoder.parameters()), "lr": phase.text_lr, "base": phase.text_lr},
    ], betas=(0.9, 0.99), weight_decay=1e-2)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    ema = Ema(params, phase.ema_decay)
    budget = StepBudget(phase.steps, seconds, log, "diffusion", device)
    step, running, started = 0, None, time.perf_counter()
    while step < budget.total:
        for group in optimizer.param_groups:
            group["lr"] = group["base"] * cosine_lr(step, budget.total, phase.warmup)
        index = torch.randint(len(means), (phase.batch,), device=device, generator=generator)
        mean, std = means[index].float(), stds[index].float()
        latents = (mean + std * torch.randn(mean.shape, device=device, generator=generator)) * scale
        noise = torch.randn(latents.shape, device=device, generator=generator)
        t = torch.randint(0, len(alphas), (phase.batch,), device=device, generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        cap = caption_index[index]
        dropped = torch.rand(phase.batch, device=device, generator=generator) < phase.caption_dropout
        cap = torch.where(dropped, torch.zeros_like(cap), cap)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            states = text_encoder(ids)[0][cap]
            pred = unet(noisy, t, encoder_hidden_states=states).sample
        per_sample = F.mse_loss(pred.float(), noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * loss_weight[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update()
        value = per_sample.detach().mean()
        running = value if running is None else 0.98 * running + 0.02 * value
        budget.after_step(step)
        step += 1
        if step % log_every == 0 or step == budget.total:
            elapsed = time.perf_counter() - started
            log(f"diffusion step {step}/{budget.total} mse {running.item():.4f} | {elapsed / step * 1000:.0f} ms/step")
            log.records.append({"phase": "diffusion", "step": step, "mse": running.item(), "seconds": round(elapsed, 1)})
    ema.copy_to_model()
    unet.eval()
    text_encoder.eval()


def _check(components: dict[str, Any], out: Path, config: BaseTrainConfig, log: TrainLog) -> dict[str, Any] | None:
    """Generate pictures of training classes, save a sheet beside the model, ask the oracle."""
    from craftstudio.demo.lab.base_model import inference_scheduler
    from craftstudio.demo.lab.evaluation import contact_sheet, sample_batch
    from craftstudio.demo.oracle import Oracle, oracle_path

    pairs = SPLIT.train_pairs()
    rng = np.random.default_rng(config.seed + 1)
    chosen = [pairs[i] for i in rng.permutation(len(pairs))] * (1 + config.check_images // len(pairs))
    chosen = chosen[:config.check_images]
    images = []
    for start in range(0, len(chosen), 128):
        batch = [caption(s, st) for s, st in chosen[start:start + 128]]
        images += sample_batch(components["unet"], components["vae"], components["text_encoder"], components["tokenizer"],
                               inference_scheduler(), batch, guidance=config.check_guidance, seed=config.seed + start)
    grid = [(s, st) for st in SPLIT.train_styles for s in SPLIT.train_shapes]
    sheet_images = sample_batch(components["unet"], components["vae"], components["text_encoder"],
                                components["tokenizer"], inference_scheduler(), [caption(*p) for p in grid],
                                guidance=config.check_guidance, seed=config.seed)
    sheet = out.with_name(out.name + "-samples.png")
    contact_sheet(sheet_images, len(SPLIT.train_shapes)).save(sheet)
    log(f"sample sheet (rows: styles, columns: shapes): {sheet}")
    if not oracle_path().is_file():
        log(f"no oracle at {oracle_path()}: skipping the accuracy check")
        return None
    oracle = Oracle.load()
    predicted = oracle.predict(images)
    content = float(np.mean([p[0] == c[0] for p, c in zip(predicted, chosen, strict=True)]))
    style = float(np.mean([p[1] == c[1] for p, c in zip(predicted, chosen, strict=True)]))
    both = float(np.mean([p == c for p, c in zip(predicted, chosen, strict=True)]))
    result = {"images": len(images), "guidance": config.check_guidance, "steps": 20, "sampler": "ddim",
              "content": content, "style": style, "both": both}
    log(f"oracle on {len(images)} generated pictures: content {content:.3f} style {style:.3f} both {both:.3f}")
    return result


def train_base(config: BaseTrainConfig, out: str | Path, log: TrainLog | None = None) -> Path:
    """Run every phase and save the model folder at `out`; returns it."""
    log = log or TrainLog()
    out = Path(out)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    generator = torch.Generator(device).manual_seed(config.seed)
    workers = config.workers or default_workers()
    a, d = config.autoencoder, config.diffusion
    log(f"plan: autoencoder {a.steps} steps x {a.batch}, diffusion {d.steps} steps x {d.batch} on {device}; "
        + (f"time budget {config.time_budget / 60:.1f} min for training (steps shrink to fit), "
           f"about {config.time_budget / 60 + 1:.0f} min in all" if config.time_budget > 0 else "no time budget"))
    log(f"rendering {config.vae_images} pictures of all classes and {config.images} of the "
        f"{len(SPLIT.train_shapes)}x{len(SPLIT.train_styles)} training classes with {workers} processes")
    vae_set = render_random(config.vae_images, config.seed * 2 + 1, workers=workers)
    train_set = render_random(config.images, config.seed * 2, SPLIT.train_shapes, SPLIT.train_styles, workers=workers)
    log("rendered")
    tokenizer_dir = out.with_name(out.name + ".tokenizer")
    components = build_components(config.sizes, tokenizer_dir)
    counts = {k: sum(p.numel() for p in components[k].parameters()) for k in ("vae", "unet", "text_encoder")}
    log("parameters: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items()))
    budget = config.time_budget
    vae_images = torch.from_numpy(vae_set.images).to(device)
    vae = train_autoencoder(components["vae"], vae_images, config.autoencoder, device, generator, log,
                            log.records, seconds=budget * config.autoencoder_share, log_every=config.log_every,
                            autocast=device.type == "cuda")
    held_out = torch.from_numpy(render_random(config.recon_images, config.seed + 99).images)
    rec_error = reconstruction_error(vae, held_out, device, autocast=device.type == "cuda")
    log(f"autoencoder reconstruction error on fresh pictures: {rec_error:.2f} / 255")
    del vae_images
    means, stds = encode_pictures(vae, torch.from_numpy(train_set.images), device, autocast=device.type == "cuda")
    scale = measure_scale(means, stds, generator)
    vae.register_to_config(scaling_factor=scale)
    log(f"latents {tuple(means.shape[1:])}, scaling factor {scale:.4f}")
    captions, table = _caption_table(SPLIT.train_shapes, SPLIT.train_styles)
    caption_index = torch.from_numpy(table[train_set.contents, train_set.styles]).to(device)
    spent = time.perf_counter() - log.started
    remaining = max(60.0, budget - spent) if budget > 0 else 0.0
    train_diffusion(components["unet"], components["text_encoder"], components["tokenizer"], means, stds,
                    caption_index, captions, scale, config.diffusion, device, generator, log, remaining,
                    config.log_every)
    check = _check(components, out, config, log) if config.check_images else None
    record = {"format": "craftstudio.shapesworld-model.v1", "config": dataclasses.asdict(config),
              "split": dataclasses.asdict(SPLIT), "parameters": counts, "autoencoder_error": rec_error,
              "scaling_factor": scale, "check": check, "log": log.records,
              "seconds": round(time.perf_counter() - log.started, 1)}
    save_pipeline(out, components["vae"], components["unet"], components["text_encoder"], components["tokenizer"],
                  record)
    shutil.rmtree(tokenizer_dir, ignore_errors=True)
    report = folder_report(out)
    log(f"saved {out}: {report['total_bytes'] / 1e6:.1f} MB, largest file {report['largest_file']} "
        f"{report['largest_bytes'] / 1e6:.1f} MB")
    (out.with_name(out.name + "-log.json")).write_text(json.dumps(record, indent=1, default=str))
    return out
