"""Loss terms of training, kept pluggable so each can be swapped and is logged on its own.

Denoising loss (both trainers): the UNet's prediction against the target the scheduler was
trained for: the noise ε (`epsilon`), the velocity v = α_t·ε − σ_t·x₀ (`v_prediction`) or the
clean latents (`sample`). `mse` is the plain mean squared error; `min_snr` weights each sample by
min(SNR_t, γ)/SNR_t (ε) or min(SNR_t, γ)/(SNR_t + 1) (v), γ = 5 (Hang et al. 2023), which evens
out the pull of very noisy and nearly clean timesteps.

Orthogonality penalty (Rank-FT): mean over layers of ‖Q_cᵀQ_s‖²_F, computed per shape group
with one batched matmul. *Decision:* the mean (not the sum) keeps λ's meaning independent of
how many attention layers a model has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from craftstudio.domain.errors import RequestError

MIN_SNR_GAMMA = 5.0

DenoisingLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def denoising_target(noise_scheduler, latents: torch.Tensor, noise: torch.Tensor,
                     timesteps: torch.Tensor) -> torch.Tensor:
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    if kind == "sample":
        return latents
    raise RequestError(f"The model's scheduler predicts {kind!r}, which training does not support.")


def _per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred.float() - target.float()).pow(2).flatten(1).mean(1)


def mse_loss(noise_scheduler) -> DenoisingLoss:
    def loss(pred: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return _per_sample_mse(pred, target).mean()
    return loss


def snr(noise_scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(timesteps.device, torch.float32)
    a = alphas_cumprod[timesteps]
    return a / (1.0 - a)


def min_snr_loss(noise_scheduler, gamma: float = MIN_SNR_GAMMA) -> DenoisingLoss:
    prediction = noise_scheduler.config.prediction_type

    def loss(pred: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        ratio = snr(noise_scheduler, timesteps)
        clipped = torch.clamp(ratio, max=gamma)
        if prediction == "v_prediction":
            weight = clipped / (ratio + 1.0)
        elif prediction == "sample":
            weight = clipped
        else:
            weight = clipped / ratio
        return (_per_sample_mse(pred, target) * weight).mean()
    return loss


LOSSES: dict[str, Callable[..., DenoisingLoss]] = {"mse": mse_loss, "min_snr": min_snr_loss}


def make_denoising_loss(name: str, noise_scheduler) -> DenoisingLoss:
    try:
        return LOSSES[name](noise_scheduler)
    except KeyError:
        raise RequestError(f"Unknown loss {name!r}: choose one of {', '.join(LOSSES)}.") from None


def orthogonality_penalty(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over layers of ‖Q_cᵀQ_s‖²_F; each pair holds a shape group's (G, d, r) stacks."""
    total, layers = None, 0
    for q_c, q_s in pairs:
        term = (q_c.mT @ q_s).pow(2).sum()
        total = term if total is None else total + term
        layers += q_c.shape[0]
    if total is None:
        raise ValueError("no layers for the orthogonality penalty")
    return total / layers
