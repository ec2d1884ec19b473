"""Cheap step previews: a fixed linear map from the 4 latent channels to RGB (no VAE call).

The factors are the least-squares fits widely used by SD front ends for SD1.x/2.x and SDXL
latents; they give a blurry but faithful 1/8-size colour preview for the cost of one matmul.
"""

from __future__ import annotations

import torch
from PIL import Image

from craftstudio.domain.family import Family

_SD15 = ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
          [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0])
_SDXL = ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
          [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011])


def latent_preview(latents: torch.Tensor, family: Family, size: tuple[int, int] | None = None) -> Image.Image:
    """RGB preview of one latent (C, H, W) or the first of a batch; resized to `size` if given."""
    if latents.ndim == 4:
        latents = latents[0]
    factors, bias = _SDXL if family is Family.SDXL else _SD15
    weight = torch.tensor(factors, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latents[:4].float().cpu(), weight) + torch.tensor(bias)
    rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(rgb, mode="RGB")
    return image.resize(size, Image.Resampling.BILINEAR) if size else image
