"""Starting a run from a picture: image to image, inpainting and the hires pass.

*Decision (strength and curves):* with strength s a run of N steps skips the first
N − ⌊N·s⌋ steps of the full N-step schedule and starts there, from the picture's latents noised
by the scheduler's own `add_noise` to that step's level (as diffusers' img2img pipelines and
A1111 do). CRAFT's curves are sampled over the full schedule and read at the step's position in
it, so a curve means the same noise level at any strength. ⌊N·s⌋ = 0 runs no step: the result is
the picture's VAE round trip.

Inpainting: with a 9-channel inpainting UNet the mask and the masked picture's latents go in as
the extra input channels the model was trained with. With any other UNet the known region is put
back after every step: the picture's latents re-noised to the next step's level outside the mask
(the last step gets them clean). For both, the finished picture's pixels outside the feathered
mask are the original's (A1111's overlay), so what the artist kept is kept exactly.

The picture's latents are the VAE posterior's mean, so a picture gives the same latents for every
seed; the seed decides the noise.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from craftstudio.engine.loader import LoadedModel

# Pictures above this many pixels are encoded and decoded by the VAE in tiles (a 2048² SDXL
# decode needs ~10 GB untiled); smaller ones are unchanged since the VAE tiles only above its tile size.
TILE_ABOVE_PIXELS = 1024 * 1024


def is_inpainting_unet(model: LoadedModel) -> bool:
    """An inpainting model: 4 latent + 1 mask + 4 masked-picture channels."""
    return model.unet.config.in_channels == 2 * model.vae.config.latent_channels + 1


def latent_channels(model: LoadedModel) -> int:
    return model.vae.config.latent_channels


@contextmanager
def vae_tiling(model: LoadedModel, width: int, height: int):
    """Tile the VAE for large pictures (restored afterwards unless it was already tiling)."""
    vae = model.vae
    was = bool(getattr(vae, "use_tiling", False))
    if width * height > TILE_ABOVE_PIXELS and not was:
        vae.enable_tiling()
        try:
            yield
        finally:
            vae.disable_tiling()
    else:
        yield


def to_tensor(picture, model: LoadedModel) -> torch.Tensor:
    """An RGB PIL picture as a (1, 3, H, W) tensor in [-1, 1] on the model's device, VAE dtype."""
    array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)[None]
    return tensor.to(model.device, model.vae.dtype)


@torch.no_grad()
def encode_picture(model: LoadedModel, picture) -> torch.Tensor:
    """VAE latents (posterior mean, scaled) of an RGB picture, in the model's dtype."""
    vae = model.vae
    with vae_tiling(model, picture.width, picture.height):
        posterior = vae.encode(to_tensor(picture, model)).latent_dist
    latents = posterior.mode() * vae.config.scaling_factor
    return latents.to(model.device, model.dtype)


@dataclass
class Source:
    """Where a run starts. `latents` None = pure noise (text to image)."""

    latents: torch.Tensor | None = None  # (1, C, h, w) scaled VAE latents of the picture
    strength: float = 1.0
    mask: torch.Tensor | None = None  # (1, 1, h, w) in [0, 1] at latent size, 1 = redraw
    inpaint_input: torch.Tensor | None = None  # (1, C + 1, h, w) extra channels of an inpainting UNet

    @classmethod
    def stack(cls, sources: list[Source]) -> Source:
        """One source for a chunk of rows (all start from noise, or all from pictures)."""
        if len(sources) == 1 or sources[0].latents is None:
            return sources[0]

        def cat(name: str) -> torch.Tensor | None:
            parts = [getattr(s, name) for s in sources]
            return None if parts[0] is None else torch.cat(parts)

        return cls(cat("latents"), sources[0].strength, cat("mask"), cat("inpaint_input"))

    @property
    def blends(self) -> bool:
        """Whether the known region is put back after each step (a mask on a plain UNet)."""
        return self.mask is not None and self.inpaint_input is None


def latent_mask(mask_picture, latent_size: tuple[int, int], model: LoadedModel) -> torch.Tensor:
    """A feathered L mask (255 = redraw) averaged down to the latent grid."""
    array = np.asarray(mask_picture, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array)[None, None]
    height, width = latent_size
    return torch.nn.functional.interpolate(tensor, size=(height, width), mode="area").to(model.device, model.dtype)


@torch.no_grad()
def make_source(model: LoadedModel, picture, strength: float, mask_picture=None) -> Source:
    """The start of a run from `picture` (RGB at the request size) and an optional mask."""
    latents = encode_picture(model, picture)
    if mask_picture is None:
        return Source(latents, strength)
    mask = latent_mask(mask_picture, latents.shape[-2:], model)
    if not is_inpainting_unet(model):
        return Source(latents, strength, mask)
    # The inpainting UNet's masked picture: the region to redraw blanked (0 = mid grey), binary
    # mask at latent size, as those models were trained.
    keep = torch.from_numpy(np.asarray(mask_picture, dtype=np.float32) < 127.5)
    blanked = to_tensor(picture, model) * keep.to(model.device, model.vae.dtype)[None, None]
    with vae_tiling(model, picture.width, picture.height):
        masked = model.vae.encode(blanked).latent_dist.mode() * model.vae.config.scaling_factor
    hard = (mask >= 0.5).to(model.dtype)
    return Source(latents, strength, mask, torch.cat([hard, masked.to(model.dtype)], dim=1))


def overlay(generated, original, mask_picture):
    """The generated picture inside the feathered mask, the original's pixels outside it."""
    from PIL import Image

    return Image.composite(generated, original, mask_picture)


class Blend:
    """After each step, outside the mask: the picture's latents at the next step's noise level."""

    def __init__(self, scheduler, source: Source, noise: torch.Tensor, timesteps: torch.Tensor) -> None:
        self.scheduler = scheduler
        self.known = source.latents.expand_as(noise)
        self.keep = 1.0 - source.mask
        self.noise = noise
        self.timesteps = timesteps

    def __call__(self, step: int, latents: torch.Tensor) -> torch.Tensor:
        """`latents` after full-schedule step `step`."""
        if step + 1 < len(self.timesteps):
            t = self.timesteps[step + 1:step + 2].repeat(latents.shape[0])
            known = self.scheduler.add_noise(self.known, self.noise, t)
        else:
            known = self.known
        return latents * (1.0 - self.keep) + known * self.keep
