"""The unconditional term (`uncond_weight` κ_u): a LoRA trained with it changes the empty
prompt's prediction less than the same LoRA trained without it."""

from __future__ import annotations

import pytest
import torch

from craftstudio.domain.errors import RequestError
from craftstudio.engine.craft_layers import BranchState, installed
from craftstudio.engine.loader import load_model
from craftstudio.engine.lora_adapters import load_lora
from craftstudio.engine.training.denoising import encode_caption
from craftstudio.engine.training.lora_training import train_lora
from tests.engine.training.conftest import RES, lora_request


def _empty_prompt_change(model_path, lora_path) -> float:
    """‖ε_L(x, "") − ε_0(x, "")‖ on fixed inputs at a few timesteps."""
    model = load_model(model_path, torch.device("cpu"), torch.float32)
    unet = model.unet
    empty = encode_caption(model, "", RES).states
    weights = load_lora(lora_path, model)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, unet.config.in_channels, RES // 8, RES // 8, generator=gen)
    t = torch.tensor([200, 700])
    state = BranchState()
    with torch.no_grad():
        base = unet(x, t, encoder_hidden_states=empty.expand(2, -1, -1)).sample
        with installed(unet, {"style": weights}, state, None):
            state.update(slice(None), {"style": 1.0})
            lora = unet(x, t, encoder_hidden_states=empty.expand(2, -1, -1)).sample
    return (lora - base).norm().item()


def test_the_unconditional_term_keeps_the_empty_prompt_prediction(tmp_path, tiny_sd1, refs):
    kw = dict(role="style", steps=6, batch_size=2, learning_rate=3e-2)
    plain = train_lora(lora_request(tiny_sd1, refs, tmp_path / "plain.safetensors", **kw))
    kept = train_lora(lora_request(tiny_sd1, refs, tmp_path / "kept.safetensors", uncond_weight=100.0, **kw))
    assert "uncond" in kept.losses[-1] and "uncond" not in plain.losses[-1]
    assert kept.request.uncond_weight == 100.0
    moved, held = _empty_prompt_change(tiny_sd1, plain.out), _empty_prompt_change(tiny_sd1, kept.out)
    assert moved > 0 and held < 0.5 * moved


@pytest.mark.parametrize("fields, words", [
    ({"uncond_weight": -1.0}, "between 0 and 1e6"),
    ({"uncond_weight": 1.0, "num_processes": 2, "batch_size": 2}, "one process only"),
])
def test_bad_unconditional_weights_are_refused(tmp_path, tiny_sd1, refs, fields, words):
    with pytest.raises(RequestError, match=words):
        lora_request(tiny_sd1, refs, tmp_path / "x.safetensors", **fields).validate()
