"""The fast (compiled) training step trains the weights the eager step trains.

On the CPU the graph is captured by dynamo and run through AOT autograd without code generation
("aot_eager"): the same capture, forward/backward split and graph the GPU compiles with Inductor,
so a graph break, a wrong gradient or a hook the capture misses shows up here."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from craftstudio.engine import compiled_unet
from craftstudio.engine.training.backbone_training import train_backbone
from craftstudio.engine.training.compiled_step import step_module
from craftstudio.engine.training.lora_training import train_lora
from tests.engine.training.conftest import backbone_request, lora_request


@pytest.fixture
def captured(monkeypatch):
    """Compile with dynamo + AOT autograd only, and count the graphs dynamo compiles."""
    import torch._dynamo

    monkeypatch.setattr(compiled_unet, "BACKEND", "aot_eager")
    torch._dynamo.reset()
    before = compiled_unet.graph_count()
    yield lambda: compiled_unet.graph_count() - before
    torch._dynamo.reset()


def _same(a_path, b_path, atol: float) -> None:
    a, b = load_file(str(a_path)), load_file(str(b_path))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=atol), key


def test_a_compiled_lora_step_trains_the_eager_lora(tmp_path, tiny_sd1, refs, captured):
    eager = train_lora(lora_request(tiny_sd1, refs, tmp_path / "eager.safetensors", steps=3, batch_size=2))
    fast = train_lora(lora_request(tiny_sd1, refs, tmp_path / "fast.safetensors", steps=3, batch_size=2,
                                   fast=True))
    assert captured() >= 1  # the step really went through dynamo
    _same(eager.out, fast.out, atol=1e-5)
    # The weights moved: a step that trained nothing would also "match".
    tensors = load_file(str(fast.out))
    assert max(t.abs().max().item() for k, t in tensors.items() if "lora_B" in k or "lora_up" in k) > 0
    assert [t["loss"] for t in fast.losses] == pytest.approx([t["loss"] for t in eager.losses], abs=1e-5)
    assert fast.request.fast and not eager.request.fast


def test_a_compiled_backbone_step_trains_the_eager_backbone(tmp_path, tiny_sd1, refs, captured):
    eager = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "eager.safetensors"))
    fast = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "fast.safetensors", fast=True))
    assert captured() >= 1
    _same(eager.out, fast.out, atol=1e-4)
    assert [t["loss"] for t in fast.losses] == pytest.approx([t["loss"] for t in eager.losses], abs=1e-4)


def test_the_fast_step_stays_eager_where_torch_compile_does_not_run():
    module = torch.nn.Linear(2, 2)
    said = []
    assert step_module(module, True, torch.device("mps"), said.append) is module
    assert said and "MPS" in said[0]
    assert step_module(module, False, torch.device("cpu")) is module


def test_cuda_graphs_are_asked_for_on_cuda_only(monkeypatch):
    """Inductor on CUDA replays the step as CUDA graphs (the host no longer issues every kernel
    itself); Inductor elsewhere and the test backends compile without them."""
    from craftstudio.engine.training import compiled_step

    asked = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: asked.append(kw) or module)
    monkeypatch.setattr(compiled_unet, "use_cache_dir", lambda: None)
    module = torch.nn.Linear(2, 2)
    compiled_step.compile_for_training(module, torch.device("cuda"), backend="inductor")
    compiled_step.compile_for_training(module, torch.device("cpu"), backend="inductor")
    compiled_step.compile_for_training(module, torch.device("cuda"), backend="aot_eager")
    assert [kw["mode"] for kw in asked] == ["reduce-overhead", None, None]
    assert all(kw["dynamic"] is False for kw in asked)


def test_every_training_step_first_frees_the_last_steps_graph_outputs(tmp_path, tiny_sd1, refs, monkeypatch):
    """A CUDA graph overwrites its outputs on the next replay; each step must say where it
    begins, once, before its first forward (LoRA and backbone steps alike)."""
    calls = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: calls.append("begin"))
    lora = train_lora(lora_request(tiny_sd1, refs, tmp_path / "l.safetensors", steps=3, batch_size=2))
    assert calls == ["begin"] * 3 and len(lora.losses) == 3
    calls.clear()
    backbone = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "b.safetensors"))
    assert calls == ["begin"] * len(backbone.losses) and calls


@pytest.mark.gpu
def test_a_cuda_graph_lora_step_trains_the_eager_lora(tmp_path, tiny_sd1, refs, monkeypatch):
    """On a CUDA card: Inductor with CUDA graphs trains the LoRA the eager step trains. In fp32:
    under bf16 autocast the two round differently and Adam turns those tiny gradient differences
    into whole-step differences."""
    import torch._dynamo

    monkeypatch.setenv("CRAFTSTUDIO_CACHE", str(tmp_path / "cache"))
    torch._dynamo.reset()
    common = dict(steps=4, batch_size=2, device="cuda", mixed_precision="no")
    try:
        eager = train_lora(lora_request(tiny_sd1, refs, tmp_path / "eager.safetensors", **common))
        fast = train_lora(lora_request(tiny_sd1, refs, tmp_path / "fast.safetensors", fast=True, **common))
    finally:
        torch._dynamo.reset()
    _same(eager.out, fast.out, atol=5e-3)
    assert [t["loss"] for t in fast.losses] == pytest.approx([t["loss"] for t in eager.losses], abs=1e-4)
