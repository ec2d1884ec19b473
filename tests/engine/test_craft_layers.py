"""The CRAFT LoRA layers: fused LoRA-A products equal separate ones, zero gates skip, the graph
path equals the eager path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from craftstudio.domain.family import Family
from craftstudio.engine import craft_layers
from craftstudio.engine.craft_layers import BranchState, SharedInput, installed
from craftstudio.engine.loader import load_model
from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets, target_modules

CPU = torch.device("cpu")


def _weights(unet, seed: int, rank: int = 4, modules=None) -> LoraWeights:
    gen = torch.Generator().manual_seed(seed)
    deltas = {}
    for name in modules or target_modules(unet):
        d_out, d_in = unet.get_submodule(name).weight.shape
        down = torch.nn.Linear(d_in, rank, bias=False)
        up = torch.nn.Linear(rank, d_out, bias=False)
        down.weight.data = torch.randn(rank, d_in, generator=gen) * 0.3
        up.weight.data = torch.randn(d_out, rank, generator=gen) * 0.3
        deltas[name] = ModuleDelta(down.requires_grad_(False), up.requires_grad_(False), 0.7)
    return LoraWeights(Path(f"lora{seed}"), "", Family.SD1, deltas)


@pytest.fixture(scope="module")
def unet(tiny_sd1):
    return load_model(tiny_sd1, CPU, torch.float32).unet


def _inputs(unet, rows: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, 8, 8, generator=gen)
    states = torch.randn(rows, 77, unet.config.cross_attention_dim, generator=gen)
    return x, states


@torch.no_grad()
def _merged_output(unet, loras, gates, x, states, rows: slice, sets=None):
    """Reference: ΔW merged into a copy of the weights, applied to `rows` only."""
    plain = unet(x, 500, encoder_hidden_states=states).sample
    originals = {}
    for role, lora in loras.items():
        for name, delta in lora.deltas.items():
            if sets is not None and sets.role_of(name) != role:
                continue
            w = unet.get_submodule(name).weight
            originals.setdefault(name, w.detach().clone())
            w += gates[role] * delta.scale * (delta.up.weight @ delta.down.weight)
    try:
        merged = unet(x, 500, encoder_hidden_states=states).sample
    finally:
        for name, w in originals.items():
            unet.get_submodule(name).weight.copy_(w)
    out = plain.clone()
    out[rows] = merged[rows]
    return out


@pytest.mark.parametrize("routed", [True, False])
def test_fused_lora_a_equals_separate_products(unet, routed):
    loras = {CONTENT: _weights(unet, 1), STYLE: _weights(unet, 2)}
    gates = {CONTENT: 0.9, STYLE: 0.6}
    sets = LayerSets.for_family(Family.SD1) if routed else None
    x, states = _inputs(unet)
    ref = _merged_output(unet, loras, gates, x, states, slice(1, 2), sets)
    state = BranchState(rows=slice(1, 2), gates=gates)
    with torch.no_grad(), installed(unet, loras, state, sets):
        groups = {id(m._craft_layer.group) for m in unet.modules()
                  if getattr(m, "_craft_layer", None) is not None and m._craft_layer.group is not None}
        ours = unet(x, 500, encoder_hidden_states=states).sample
    assert groups  # q/k/v (self-attention) and k/v (cross-attention) share their LoRA-A product
    assert torch.allclose(ours, ref, atol=1e-4)
    assert (ours[1] - unet(x, 500, encoder_hidden_states=states).sample[1]).abs().max() > 1e-3


def test_shared_input_computes_one_product_per_input(unet, monkeypatch):
    loras = {CONTENT: _weights(unet, 1)}
    calls = []
    original = SharedInput.hidden

    def counting(self, x, rows, active):
        before = self._x
        h = original(self, x, rows, active)
        calls.append(before is x)
        return h

    monkeypatch.setattr(SharedInput, "hidden", counting)
    x, states = _inputs(unet)
    state = BranchState(rows=slice(1, 2), gates={CONTENT: 1.0})
    with torch.no_grad(), installed(unet, loras, state, None):
        unet(x, 500, encoder_hidden_states=states)
    n_attn = sum(1 for name, _ in unet.named_modules() if name.endswith(("attn1", "attn2")))
    # Per self-attention: q computes, k and v reuse; per cross-attention: k computes, v reuses.
    assert calls.count(False) == n_attn
    assert calls.count(True) == 3 * n_attn // 2


def test_zero_gate_skips_the_lora_entirely(unet, monkeypatch):
    loras = {CONTENT: _weights(unet, 1), STYLE: _weights(unet, 2)}
    x, states = _inputs(unet)
    with torch.no_grad():
        plain = unet(x, 500, encoder_hidden_states=states).sample
    matmuls = []
    real = torch.Tensor.matmul
    monkeypatch.setattr(torch.Tensor, "matmul", lambda self, other: matmuls.append(1) or real(self, other))
    state = BranchState(rows=slice(1, 2), gates={CONTENT: 0.0, STYLE: 0.0})
    with torch.no_grad(), installed(unet, loras, state, None):
        out = unet(x, 500, encoder_hidden_states=states).sample
    assert torch.equal(out, plain)
    assert not matmuls


def test_graph_path_equals_eager_path(unet):
    loras = {CONTENT: _weights(unet, 1), STYLE: _weights(unet, 2)}
    sets = LayerSets.for_family(Family.SD1)
    x, states = _inputs(unet, rows=4)
    gates = {CONTENT: 0.8, STYLE: 1.2}
    eager_state = BranchState(rows=slice(2, 4), gates=gates)
    with torch.no_grad(), installed(unet, loras, eager_state, sets):
        eager = unet(x, 500, encoder_hidden_states=states).sample
    mask = torch.tensor([0.0, 0.0, 1.0, 1.0])
    graph_state = BranchState(rows=slice(None), graph=True,
                              row_gates={role: mask * g for role, g in gates.items()})
    with torch.no_grad(), installed(unet, loras, graph_state, sets):
        graph = unet(x, 500, encoder_hidden_states=states).sample
    assert torch.allclose(eager, graph, atol=1e-4)


def test_uninstall_restores_the_modules(unet):
    loras = {CONTENT: _weights(unet, 1)}
    with installed(unet, loras, BranchState(), None):
        assert craft_layers.lora_branches(unet.get_submodule(target_modules(unet)[0]))
    assert not any("_craft_layer" in m.__dict__ or "forward" in m.__dict__ for m in unet.modules())
