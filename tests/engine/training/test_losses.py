"""Loss terms: targets per prediction type, min-SNR weights, the orthogonality penalty."""

from __future__ import annotations

import pytest
import torch

from craftstudio.domain.errors import RequestError
from craftstudio.engine.training.denoising import batch_indices, epoch_order, make_noise_scheduler
from craftstudio.engine.training.losses import (
    MIN_SNR_GAMMA,
    denoising_target,
    make_denoising_loss,
    orthogonality_penalty,
    snr,
)

CONFIG = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}


def _scheduler(prediction_type: str):
    return make_noise_scheduler({**CONFIG, "prediction_type": prediction_type})


def test_targets_follow_the_prediction_type():
    gen = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([10, 900])
    assert torch.equal(denoising_target(_scheduler("epsilon"), latents, noise, t), noise)
    v = _scheduler("v_prediction")
    assert torch.allclose(denoising_target(v, latents, noise, t), v.get_velocity(latents, noise, t))
    assert torch.equal(denoising_target(_scheduler("sample"), latents, noise, t), latents)


def test_min_snr_weights_noisy_steps_fully_and_clean_steps_less():
    scheduler = _scheduler("epsilon")
    t = torch.tensor([999, 0])
    ratio = snr(scheduler, t)
    assert ratio[0] < MIN_SNR_GAMMA < ratio[1]
    pred, target = torch.ones(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    loss = make_denoising_loss("min_snr", scheduler)(pred, target, t)
    assert float(loss) == pytest.approx((1.0 + MIN_SNR_GAMMA / float(ratio[1])) / 2, rel=1e-5)
    assert float(make_denoising_loss("mse", scheduler)(pred, target, t)) == 1.0
    with pytest.raises(RequestError, match="Unknown loss"):
        make_denoising_loss("huber", scheduler)


def test_orthogonality_penalty_is_zero_for_orthogonal_bases_and_a_mean_over_layers():
    eye = torch.eye(6)
    q_c, q_s = eye[:, :2].expand(3, 6, 2), eye[:, 2:4].expand(3, 6, 2)
    assert float(orthogonality_penalty([(q_c, q_s)])) == 0.0
    same = orthogonality_penalty([(q_c, q_c), (q_c[:1], q_c[:1])])
    assert float(same) == pytest.approx(2.0)  # ‖QᵀQ‖² = r = 2 for each of the 4 layers


def test_epochs_visit_every_item_once_in_a_seeded_order():
    order = epoch_order(7, seed=3, epoch=0)
    assert sorted(order) == list(range(7)) and order == epoch_order(7, seed=3, epoch=0)
    assert order != epoch_order(7, seed=3, epoch=1)
    stream = [i for step in range(7) for i in batch_indices(7, 2, seed=3, step=step)]
    assert sorted(stream[:7]) == list(range(7)) and sorted(stream[7:14]) == list(range(7))
