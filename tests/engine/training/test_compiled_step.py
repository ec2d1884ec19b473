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


def test_a_compiled_backbone_run_trains_the_eager_backbone(tmp_path, tiny_sd1, refs, captured):
    """`fast` on a backbone: the whole run goes through dynamo with the staged projection (fixed
    copies of Q and W0·Q) and trains the eager run's backbone."""
    eager = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "eager.safetensors"))
    fast = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "fast.safetensors", fast=True))
    assert captured() >= 1  # the step really went through dynamo
    _same(eager.out, fast.out, atol=1e-4)
    assert [t["loss"] for t in fast.losses] == pytest.approx([t["loss"] for t in eager.losses], abs=1e-4)
    assert fast.request.fast and not eager.request.fast
    # The bases moved: a run that trained nothing would also "match".
    assert load_file(str(fast.out)).keys() and fast.losses[0]["loss"] != fast.losses[-1]["loss"]


def test_the_compiled_rank_ft_step_of_the_benchmark_trains_the_eager_bases(tiny_sd1, captured):
    """The training benchmark still times the compiled Rank-FT step (where a fix would show): it
    must train what the eager step trains."""
    from diffusers import UNet2DConditionModel

    from craftstudio.engine.routing import CONTENT
    from craftstudio.engine.training.backbone_training import RankFtStep, make_optimizer
    from craftstudio.engine.training.bench_train import NOISE_CONFIG, random_inputs
    from craftstudio.engine.training.denoising import (
        DenoisingSetup,
        draw_batch,
        make_noise_scheduler,
        step_generator,
    )
    from craftstudio.engine.training.losses import make_denoising_loss
    from craftstudio.engine.training.precision import resolve_precision
    from craftstudio.engine.training.rank_ft import Projection, ProjectionBases, layer_specs

    device = torch.device("cpu")
    bases_after, losses = [], []
    for fast in (False, True):
        unet = UNet2DConditionModel.from_pretrained(str(tiny_sd1 / "unet")).float().requires_grad_(False).train()
        cache, text = random_inputs(unet.config, "sd15", 64, device)
        scheduler = make_noise_scheduler(NOISE_CONFIG)
        specs = layer_specs(unet, 4, 2)
        bases = ProjectionBases(specs, 0, device)
        projection = Projection(unet, [s.name for s in specs], staged=fast)  # as the benchmark does
        setup = DenoisingSetup(step_module(unet, fast, device), scheduler, resolve_precision("no", device),
                               make_denoising_loss("mse", scheduler))
        step = RankFtStep(setup, bases, projection, make_optimizer(bases.parameters(), 1e-2), 1.0)
        with projection.installed():
            losses.append([float(step(CONTENT, draw_batch(cache, [0, 0], step_generator(0, i), 1000, device),
                                      text)["loss"]) for i in range(3)])
        bases_after.append({k: v.detach().clone() for k, v in bases.state_dict().items()})
    assert captured() >= 1  # the compiled run really went through dynamo
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)
    assert bases_after[0].keys() == bases_after[1].keys()
    for key, eager in bases_after[0].items():
        assert torch.allclose(eager, bases_after[1][key], atol=1e-5), key


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
