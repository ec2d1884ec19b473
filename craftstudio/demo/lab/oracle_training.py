"""Train and measure the ShapesWorld oracle (`python -m craftstudio.demo train-oracle`).

Every step renders a fresh batch of pictures of all classes (held-out ones included) with the
world's full variation, so the network never sees the same picture twice. A third of each batch
is lightly blurred, noised and tone-shifted, so the oracle also judges the softer pictures a
diffusion model decodes. Accuracy is measured on fresh, clean pictures from a separate seed
stream and stored in the weights file's metadata.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from craftstudio.demo.oracle import Oracle, OracleNet, to_input
from craftstudio.demo.world import SHAPES, STYLES, render_random

EVAL_SEED = 987_654_321  # the fresh-picture stream for measuring (training draws from `seed`)


@dataclass(frozen=True)
class OracleTrainConfig:
    steps: int = 3000
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0
    augment: float = 0.33  # fraction of each batch blurred / noised / tone-shifted
    eval_images: int = 2000
    threads: int = 2
    widths: tuple[int, ...] = (16, 32, 64, 128)
    embed: int = 96
    mask_weight: float = 1.0
    log_every: int = 25


def _blur_matrix(size: int = 64, sigma: float = 1.2) -> torch.Tensor:
    idx = torch.arange(size, dtype=torch.float32)
    kernel = torch.exp(-(idx[:, None] - idx[None, :]) ** 2 / (2 * sigma * sigma))
    return kernel / kernel.sum(dim=1, keepdim=True)


_BLUR = _blur_matrix()


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur (sigma 1.2 pixels) of a (N, 3, 64, 64) batch, as two matrix products."""
    return _BLUR @ x @ _BLUR.T


def augment(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Soften a random `fraction` of the batch like a decoder would: blur, noise, tone shift."""
    chosen = torch.rand(x.shape[0], generator=generator) < fraction
    if not chosen.any():
        return x
    picked = x[chosen]
    m = picked.shape[0]
    amount = torch.rand(m, 1, 1, 1, generator=generator)
    picked = picked * (1 - amount) + _blur(picked) * amount
    picked = picked + torch.randn(picked.shape, generator=generator) * (torch.rand(m, 1, 1, 1, generator=generator) * 0.08)
    gain = 1 + (torch.rand(m, 1, 1, 1, generator=generator) - 0.5) * 0.2
    shift = (torch.rand(m, 3, 1, 1, generator=generator) - 0.5) * 0.12
    x = x.clone()
    x[chosen] = (picked * gain + shift).clamp(-1, 1)
    return x


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))


def evaluate(oracle: Oracle, count: int, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Per-head accuracy on `count` fresh pictures of all classes, overall and per class."""
    pictures = render_random(count, seed)
    predicted = oracle.classify(pictures.images)
    content_ok = (predicted.content_probs.argmax(-1).numpy() == pictures.contents)
    style_ok = (predicted.style_probs.argmax(-1).numpy() == pictures.styles)
    per_shape = {name: float(content_ok[pictures.contents == i].mean()) for i, name in enumerate(SHAPES)
                 if (pictures.contents == i).any()}
    per_style = {name: float(style_ok[pictures.styles == i].mean()) for i, name in enumerate(STYLES)
                 if (pictures.styles == i).any()}
    return {"images": count, "seed": seed, "content": float(content_ok.mean()), "style": float(style_ok.mean()),
            "both": float((content_ok & style_ok).mean()), "per_shape": per_shape, "per_style": per_style}


def train_oracle(config: OracleTrainConfig, out: str | Path,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, measure, save to `out` (safetensors + metadata); returns the measured accuracy."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = OracleNet(len(SHAPES), len(STYLES), config.widths, config.embed).to(memory_format=torch.channels_last)
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    warmup = max(1, config.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, config.steps, warmup))
    log(f"oracle: {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters, {config.steps} steps "
        f"of {config.batch} fresh pictures ({len(SHAPES)} shapes x {len(STYLES)} styles)")
    started, seen, running = time.perf_counter(), 0, np.zeros(3)
    net.train()
    for step in range(config.steps):
        batch = render_random(config.batch, seed=int(np.random.SeedSequence([config.seed, step]).generate_state(1)[0]),
                              with_masks=True)
        x = augment(to_input(batch.images), config.augment, generator).contiguous(memory_format=torch.channels_last)
        content_logits, style_logits, mask_logits = net(x)
        contents, styles = torch.from_numpy(batch.contents), torch.from_numpy(batch.styles)
        masks = torch.from_numpy(batch.masks)[:, None]
        loss = F.cross_entropy(content_logits, contents, label_smoothing=0.05) + \
            F.cross_entropy(style_logits, styles, label_smoothing=0.05) + \
            config.mask_weight * F.binary_cross_entropy_with_logits(mask_logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        seen += config.batch
        running = 0.9 * running + 0.1 * np.array([
            loss.item(), (content_logits.argmax(-1) == contents).float().mean().item(),
            (style_logits.argmax(-1) == styles).float().mean().item()])
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            elapsed = time.perf_counter() - started
            eta = elapsed / (step + 1) * (config.steps - step - 1)
            log(f"step {step + 1}/{config.steps} loss {running[0]:.3f} content {running[1]:.3f} "
                f"style {running[2]:.3f} | {seen / elapsed:.0f} img/s, {eta / 60:.1f} min left")
    oracle = Oracle(net.eval().to(memory_format=torch.contiguous_format), SHAPES, STYLES)
    accuracy = evaluate(oracle, config.eval_images)
    log(f"fresh pictures ({config.eval_images}): content {accuracy['content']:.4f} style {accuracy['style']:.4f} "
        f"both {accuracy['both']:.4f}")
    weakest = sorted([*accuracy["per_shape"].items(), *accuracy["per_style"].items()], key=lambda kv: kv[1])[:4]
    log("weakest classes: " + ", ".join(f"{k} {v:.3f}" for k, v in weakest))
    oracle.save(out, {"accuracy": accuracy, "training": {**dataclasses.asdict(config),
                                                         "seconds": round(time.perf_counter() - started, 1)}})
    log(f"saved {out}")
    return accuracy
