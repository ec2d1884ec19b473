"""Low-VRAM mode: run a model on a card that cannot hold all of it at once.

- Model CPU offload (diffusers' `enable_model_cpu_offload`, accelerate hooks): the text encoders,
  UNet and VAE live in CPU memory and each moves to the GPU only while it runs, so the UNet's
  denoising loop is as fast as usual and the GPU never holds two components at once.
- VAE tiling: the decoder works on overlapping tiles, so a 1024² decode needs a fraction of the
  memory (it only tiles above the VAE's tile size, so small images are unchanged).
- Attention slicing on Apple MPS only: with PyTorch's fused attention (CUDA) it saves nothing and
  costs speed.
- One image per UNet call (see `generation.chunk_size`).

Routed LoRAs and W_init keep working: the backbone is baked into the CPU copy of the weights
before offloading, and LoRA branches are kept on the GPU next to where the UNet runs.
"""

from __future__ import annotations

import torch

from craftstudio.engine.loader import LoadedModel


def offload(model: LoadedModel, device: torch.device) -> None:
    """Turn `model` (loaded on the CPU) into an offloaded model running on `device`."""
    pipe = model.pipeline
    if device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)  # no offload helper for MPS/CPU: memory is shared with the host anyway
    pipe.vae.enable_tiling()
    if device.type == "mps":
        pipe.enable_attention_slicing()
    model.device = device


def unet_offload(unet, device: torch.device):
    """The same CPU offload for a bare UNet (the benchmark's); returns accelerate's hook."""
    from accelerate import cpu_offload_with_hook

    unet.to("cpu")
    _, hook = cpu_offload_with_hook(unet, device)
    return hook
