"""Phase 1 of the demo base model: train the autoencoder, then encode the training pictures.

Loss: L1 + MSE on pixels, L1 on horizontal/vertical pixel differences (keeps the world's fine
textures sharp without a perceptual network or a discriminator), and a small KL term
(summed over latent elements, weight 1e-6 per picture) that keeps latents bounded. The
latent scaling factor is measured after training (1 / std of the latents), as SD's 0.18215 was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AutoencoderPhase:
    steps: int = 2500
    batch: int = 256
    lr: float = 5e-4
    kl_weight: float = 1e-6
    edge_weight: float = 0.5
    warmup: int = 100


def to_pixels(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) → float (N, 3, 64, 64) in [-1, 1] on the same device."""
    return images_u8.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def cosine_lr(step: int, total: int, warmup: int, floor: float = 0.05) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, edge_weight: float) -> torch.Tensor:
    loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
    if edge_weight:
        (rx, ry), (xx, xy) = _edges(rec), _edges(x)
        loss = loss + edge_weight * (F.l1_loss(rx, xx) + F.l1_loss(ry, xy))
    return loss


class StepBudget:
    """Plans a phase's step count within a time share. Steps `warm`..`probe` are timed (the first
    ones include compilation and warm-up); if the planned steps would overrun `seconds`, the count
    is lowered (the learning-rate schedule follows the new count). `seconds` <= 0: no limit."""

    def __init__(self, planned: int, seconds: float, log: Callable[[str], None], name: str,
                 device: torch.device, warm: int = 10, probe: int = 40) -> None:
        self.total, self.seconds, self.log, self.name = planned, seconds, log, name
        self.warm, self.probe, self.device = warm, probe, device
        self.started = self.warm_at = time.perf_counter()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # queued GPU work counts (only at the two probe steps)
        return time.perf_counter()

    def after_step(self, step: int) -> None:
        done = step + 1
        if done == self.warm:
            self.warm_at = self._now()
        if done != self.probe or done >= self.total:
            return
        now = self._now()
        per_step = (now - self.warm_at) / (self.probe - self.warm)
        elapsed = now - self.started
        estimate = elapsed + per_step * (self.total - done)
        self.log(f"{self.name}: {per_step * 1000:.1f} ms/step; {self.total} steps take about {estimate / 60:.1f} min")
        if self.seconds > 0 and estimate > self.seconds:
            self.total = done + max(1, int((self.seconds - elapsed) / per_step))
            self.log(f"{self.name}: time budget {self.seconds / 60:.1f} min: training {self.total} steps instead")


def train_autoencoder(vae, images_u8: torch.Tensor, phase: AutoencoderPhase, device: torch.device,
                      generator: torch.Generator, log: Callable[[str], None], records: list[dict],
                      seconds: float = 0.0, log_every: int = 100, autocast: bool = True):
    """Train `vae` on `images_u8` (uint8 NHWC, on `device`); returns it in eval mode."""
    vae.to(device).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=phase.lr, betas=(0.9, 0.99), weight_decay=0.0)
    budget = StepBudget(phase.steps, seconds, log, "autoencoder", device)
    step, running, started = 0, None, time.perf_counter()
    while step < budget.total:
        for group in optimizer.param_groups:
            group["lr"] = phase.lr * cosine_lr(step, budget.total, phase.warmup)
        index = torch.randint(len(images_u8), (phase.batch,), device=device, generator=generator)
        x = to_pixels(images_u8[index])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            posterior = vae.encode(x).latent_dist
            noise = torch.randn(posterior.mean.shape, device=device, generator=generator)
            z = posterior.mean + posterior.std * noise
            rec = vae.decode(z).sample
        rec_loss = reconstruction_loss(rec.float(), x, phase.edge_weight)
        kl = posterior.kl().float().mean()
        loss = rec_loss + phase.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        values = torch.stack([rec_loss.detach(), kl.detach()])
        running = values if running is None else 0.95 * running + 0.05 * values
        budget.after_step(step)
        step += 1
        if step % log_every == 0 or step == budget.total:
            rec_value, kl_value = running.tolist()
            elapsed = time.perf_counter() - started
            log(f"autoencoder step {step}/{budget.total} rec {rec_value:.4f} kl {kl_value:.1f} "
                f"| {elapsed / step * 1000:.0f} ms/step")
            records.append({"phase": "autoencoder", "step": step, "rec": rec_value, "kl": kl_value,
                            "seconds": round(elapsed, 1)})
    return vae.eval()


@torch.no_grad()
def encode_pictures(vae, images_u8: torch.Tensor, device: torch.device, batch: int = 1024,
                    autocast: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every picture (fp16, on `device`), unscaled."""
    means, stds = [], []
    for start in range(0, len(images_u8), batch):
        x = to_pixels(images_u8[start:start + batch].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            posterior = vae.encode(x).latent_dist
        means.append(posterior.mean.half())
        stds.append(posterior.std.half())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def measure_scale(means: torch.Tensor, stds: torch.Tensor, generator: torch.Generator) -> float:
    """1 / std of sampled latents: the factor that brings latents to unit variance."""
    sample = means[:8192].float()
    sample = sample + stds[:8192].float() * torch.randn(sample.shape, device=sample.device, generator=generator)
    return float(1.0 / sample.std().clamp(min=1e-6))


@torch.no_grad()
def reconstruction_error(vae, images_u8: torch.Tensor, device: torch.device, autocast: bool = True) -> float:
    """Mean absolute pixel error (0-255 scale) of encode → decode (posterior mean)."""
    x = to_pixels(images_u8.to(device))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample
    return float((rec.float().clamp(-1, 1) - x).abs().mean() * 127.5)
