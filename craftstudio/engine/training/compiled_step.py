"""Fast training: the UNet's forward (and so its backward) compiled by torch.compile.

An eager training step is bound by the host: it issues tens of thousands of PyTorch operators
(forward, gradient-checkpointing recompute, backward) one by one, about as fast as the GPU runs
them, so a step on half the batch takes as long as on the whole one and a second GPU cannot
help. Inductor fuses those operators into far fewer kernels and launches them from generated
code, which gives the GPU its share of the work back.

The compiled module is whatever the step calls: the UNet, or its DDP wrapper on several
processes (dynamo then splits the graph at DDP's gradient buckets, so the all-reduce still
overlaps the backward). Shapes are static (`dynamic=False`): one compile per batch shape, which a
training run keeps. Kernels go to the app's cache folder like the sampler's (compiled_unet.py),
so a second run of the same set-up loads them. Samples during training use the eager UNet.
"""

from __future__ import annotations

import torch

from craftstudio.engine import compiled_unet


def compile_for_training(module: torch.nn.Module, *, backend: str | None = None) -> torch.nn.Module:
    """`module` compiled for training (graph breaks allowed: DDP's bucket splits are breaks)."""
    backend = backend or compiled_unet.BACKEND
    if backend == "inductor":
        compiled_unet.use_cache_dir()
    return torch.compile(module, backend=backend, dynamic=False)


def step_module(module: torch.nn.Module, fast: bool, device: torch.device, tell=None) -> torch.nn.Module:
    """What a trainer's step calls: `module`, compiled when the run asks for the fast step and
    torch.compile runs on `device` (not on Apple MPS: there the run says so and stays eager)."""
    if not fast:
        return module
    if not compiled_unet.supported(device):
        if tell is not None:
            tell(f"the compiled training step does not run on {device.type.upper()}: training without it")
        return module
    return compile_for_training(module)
