"""The fast path: a compiled UNet with the CRAFT layers inside draws what the eager path draws,
and changing gates, guidance, seeds or LoRA weights between images compiles nothing again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from craftstudio.domain.curves import load_preset
from craftstudio.domain.generation import GenerateRequest, LoraRef
from craftstudio.engine import compiled_unet
from craftstudio.engine.generation import generate
from craftstudio.engine.loader import load_model
from tests.kit.tiny_loras import random_lora, save_peft


@pytest.fixture(scope="module")
def loras(tiny_sd1, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast-loras")
    unet = load_model(tiny_sd1, torch.device("cpu"), torch.float32).unet
    return (save_peft(random_lora(unet, seed=1), folder / "content.safetensors"),
            save_peft(random_lora(unet, seed=2), folder / "style.safetensors"))


def _request(model, loras, **kw) -> GenerateRequest:
    base = dict(model=str(model), prompt="a ginger cat <c> in watercolor style <s:0.8>", width=64, height=64,
                steps=5, cfg_scale=5.0, seed=3, scheduler="euler", device="cpu",
                content_lora=LoraRef(str(loras[0]), 0.9), style_lora=LoraRef(str(loras[1]), 1.1),
                curves=load_preset("paper").to_dict())
    base.update(kw)
    return GenerateRequest(**base)


def _close(a, b) -> bool:
    return np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).max() <= 2.0


@pytest.fixture
def dynamo_only(monkeypatch):
    """Dynamo's graph capture (what decides recompiles) without Inductor's slow CPU code generation."""
    import torch._dynamo

    monkeypatch.setattr(compiled_unet, "BACKEND", "eager")
    compiled_unet._compiled.clear()
    torch._dynamo.reset()
    yield
    compiled_unet._compiled.clear()
    torch._dynamo.reset()


def test_graph_mode_layers_compile_once(tiny_sd1, dynamo_only):
    """One attention block with routed LoRAs in graph mode: new gate values (written in place) and
    new rows gated give the eager path's output from the one compiled graph."""
    from pathlib import Path

    from craftstudio.domain.family import Family
    from craftstudio.engine.craft_layers import BranchState, installed
    from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
    from craftstudio.engine.routing import CONTENT, STYLE

    unet = load_model(tiny_sd1, torch.device("cpu"), torch.float32).unet
    block_name = "down_blocks.0.attentions.0"
    block = unet.get_submodule(block_name)
    loras = {}
    for seed, role in ((1, CONTENT), (2, STYLE)):
        deltas = {}
        for name, (a, b) in random_lora(unet, seed=seed).items():
            if name.startswith(block_name):
                down, up = torch.nn.Linear(a.shape[1], a.shape[0], bias=False), torch.nn.Linear(b.shape[1], b.shape[0], bias=False)
                down.weight.data, up.weight.data = a, b
                deltas[name] = ModuleDelta(down.requires_grad_(False), up.requires_grad_(False), 0.5)
        loras[role] = LoraWeights(Path(role), "", Family.SD1, deltas)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, block.config.in_channels, 8, 8, generator=gen)
    states = torch.randn(4, 77, unet.config.cross_attention_dim, generator=gen)
    graph = BranchState(rows=slice(None), graph=True, row_gates={CONTENT: torch.zeros(4), STYLE: torch.zeros(4)})
    compiled = compiled_unet.CompiledUNet(block)
    outputs = []
    with torch.no_grad(), installed(unet, loras, graph, None):
        for gates in ({CONTENT: 0.9, STYLE: 0.0}, {CONTENT: 0.2, STYLE: 1.3}, {CONTENT: 0.0, STYLE: 0.7}):
            for role, gate in gates.items():
                graph.row_gates[role].copy_(torch.tensor([0.0, 0.0, gate, gate]))
            outputs.append((gates, compiled(x, encoder_hidden_states=states, return_dict=False)[0]))
            if len(outputs) == 1:
                warm = compiled_unet.graph_count()
    assert compiled_unet.graph_count() == warm
    for gates, out in outputs:
        eager = BranchState(rows=slice(2, 4), gates=gates)
        with torch.no_grad(), installed(unet, loras, eager, None):
            ref = block(x, encoder_hidden_states=states, return_dict=False)[0]
        assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.slow
def test_fast_path_matches_eager_and_never_recompiles(tiny_sd1, loras, dynamo_only):
    first = _request(tiny_sd1, loras, fast=True, batch_count=2, steps=2)
    before = compiled_unet.graph_count()
    fast = generate(first)
    warm = compiled_unet.graph_count()
    assert warm > before and fast.details["run"]["fast"]
    eager = generate(_request(tiny_sd1, loras, batch_count=2, steps=2))
    for a, b in zip(fast.images, eager.images, strict=True):
        assert _close(a, b)
    # Other gates, guidance curve, LoRA weights, CFG and seeds: the same graph serves.
    other = _request(tiny_sd1, loras, fast=True, batch_count=2, steps=2, seed=40, cfg_scale=8.0,
                     prompt="a ginger cat <c:0.3> in watercolor style <s>",
                     content_lora=LoraRef(str(loras[0]), 0.5), curves=load_preset("guidance-ramp").to_dict())
    generate(other)
    assert compiled_unet.graph_count() == warm


def test_compiled_kernels_go_to_the_app_cache(monkeypatch, tmp_path):
    """Inductor's cache moves from torch's /tmp default to the app's cache dir, so the next launch
    finds the kernels; a folder the user chose is kept."""
    import os

    from torch._inductor.runtime.cache_dir_utils import cache_dir, default_cache_dir

    monkeypatch.setenv("CRAFTSTUDIO_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # as torch fills it in
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    compiled_unet.use_cache_dir()
    assert cache_dir() == str(tmp_path / "torch-compile" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "torch-compile" / "triton")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    compiled_unet.use_cache_dir()
    assert cache_dir() == str(tmp_path / "mine")


@pytest.mark.gpu
def test_cuda_fast_path_matches_eager(tiny_sd1, loras, monkeypatch, tmp_path):
    """On a CUDA card: CUDA graphs through Inductor, same images, no recompiles between images,
    kernels kept in the app's cache dir."""
    monkeypatch.setenv("CRAFTSTUDIO_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    compiled_unet.reset()
    try:
        fast = generate(_request(tiny_sd1, loras, device="cuda", fast=True, batch_count=2))
        warm = compiled_unet.graph_count()
        again = generate(_request(tiny_sd1, loras, device="cuda", fast=True, batch_count=2, seed=9,
                                  cfg_scale=7.5))
        assert compiled_unet.graph_count() == warm and again.details["run"]["fast"]
    finally:
        compiled_unet.reset()
    eager = generate(_request(tiny_sd1, loras, device="cuda", batch_count=2))
    for a, b in zip(fast.images, eager.images, strict=True):
        assert _close(a, b)
    assert any((tmp_path / "torch-compile" / "inductor").iterdir())
