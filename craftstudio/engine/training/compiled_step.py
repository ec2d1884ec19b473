"""Fast training: the UNet's forward (and so its backward) compiled by torch.compile.

An eager training step is bound by the host: it issues tens of thousands of PyTorch operators
(forward, gradient-checkpointing recompute, backward) one by one, slower than the GPU runs
them, so a step on half the batch takes as long as on the whole one and a second GPU cannot
help (SD1.5, batch 8, one H200: about 6,000 kernels and 40,000 host events per step, the GPU
busy half the time; at batch 4 a quarter). Inductor fuses those operators into fewer kernels,
and on CUDA the forward and backward graphs are replayed as CUDA graphs ("reduce-overhead",
as the sampler's fast path): the host then issues about 1,600 events per step instead of
40,000 and the GPU is busy about nine tenths of it, so its share of the batch is what sets the
step time.

CUDA graphs reuse their output memory on every replay, so each step starts with `begin_step()`
(torch's cudagraph_mark_step_begin): the previous step's outputs are then free to overwrite. A
step must not keep a compiled output across steps; the trainers keep only detached loss terms,
read before the next step begins.

The compiled module is whatever the step calls: the UNet, or its DDP wrapper on several
processes (dynamo then splits the graph at DDP's gradient buckets, so the all-reduce still
overlaps the backward). Shapes are static (`dynamic=False`): one compile per batch shape, which a
training run keeps. Kernels go to the app's cache folder like the sampler's (compiled_unet.py),
so a second run of the same set-up loads them. Samples during training use the eager UNet.
"""

from __future__ import annotations

import torch

from craftstudio.engine import compiled_unet


def compile_for_training(module: torch.nn.Module, device: torch.device, *,
                         backend: str | None = None) -> torch.nn.Module:
    """`module` compiled for training on `device` (graph breaks allowed: DDP's bucket splits are
    breaks); CUDA graphs on CUDA."""
    backend = backend or compiled_unet.BACKEND
    mode = None
    if backend == "inductor":
        compiled_unet.use_cache_dir()
        if device.type == "cuda":
            mode = compiled_unet.CUDA_MODE
    return torch.compile(module, backend=backend, mode=mode, dynamic=False)


def begin_step() -> None:
    """Called first in every training step: the previous step's CUDA-graph outputs may now be
    overwritten (a no-op cost where nothing runs as a CUDA graph)."""
    torch.compiler.cudagraph_mark_step_begin()


def step_module(module: torch.nn.Module, fast: bool, device: torch.device, tell=None) -> torch.nn.Module:
    """What a trainer's step calls: `module`, compiled when the run asks for the fast step and
    torch.compile runs on `device` (not on Apple MPS: there the run says so and stays eager)."""
    if not fast:
        return module
    if not compiled_unet.supported(device):
        if tell is not None:
            tell(f"the compiled training step does not run on {device.type.upper()}: training without it")
        return module
    return compile_for_training(module, device)
