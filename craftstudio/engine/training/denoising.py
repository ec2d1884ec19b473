"""One denoising training pass, shared by backbone training, LoRA training and the benchmark.

Images are VAE-encoded once: we keep each image's latent mean and standard deviation and draw
`mean + std·z` per step, which is exactly `latent_dist.sample()` without running the VAE every
step. Captions are encoded once with the pipeline's own `encode_prompt` (markers stripped by the
caller), plus SDXL's pooled text and size conditioning, as at inference.

Randomness: step k draws everything (which images, latent samples, noise, timesteps) from a CPU
generator seeded with (seed, k), so a run resumed at step k draws what an uninterrupted run
would, on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from craftstudio.domain.family import Family
from craftstudio.engine.loader import LoadedModel
from craftstudio.engine.training.losses import DenoisingLoss, denoising_target
from craftstudio.engine.training.precision import Precision

_STEP_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads (seed, step) over the seed space


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed((seed * _STEP_MIX + step) % (2**63))


def native_resolution(model: LoadedModel) -> int:
    return int(model.unet.config.sample_size) * int(model.pipeline.vae_scale_factor)


def offload_text_encoders(model, keep_vae: bool) -> None:
    """Captions are encoded once: free the GPU memory of the text encoders (and of the VAE when
    no sample images need it) for the training step."""
    if model.device.type == "cpu":
        return
    names = ["text_encoder", "text_encoder_2"] + ([] if keep_vae else ["vae"])
    for name in names:
        component = getattr(model.pipeline, name, None)
        if component is not None:
            component.to("cpu")
    if model.device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class TextConditioning:
    states: torch.Tensor  # (1 or batch, tokens, dim)
    added: dict[str, torch.Tensor] | None = None  # SDXL: text_embeds (n, d), time_ids (n, 6)

    def expand(self, batch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """One caption broadcast over the batch, or per-row captions as they are."""
        if self.states.shape[0] == batch:
            return self.states, self.added
        states = self.states.expand(batch, -1, -1)
        added = {k: v.expand(batch, *v.shape[1:]) for k, v in self.added.items()} if self.added else None
        return states, added

    def take(self, indices: list[int]) -> TextConditioning:
        """The rows of `indices` (per-image captions), or this one caption if there is one."""
        if self.states.shape[0] == 1:
            return self
        added = {k: v[indices] for k, v in self.added.items()} if self.added else None
        return TextConditioning(self.states[indices], added)


@torch.no_grad()
def encode_caption(model: LoadedModel, text: str, resolution: int) -> TextConditioning:
    """Conditioning for a training caption (already stripped of markers)."""
    pipe = model.pipeline
    if model.family is Family.SDXL:
        states, _, pooled, _ = pipe.encode_prompt(
            prompt=text, device=model.device, num_images_per_prompt=1, do_classifier_free_guidance=False)
        # Original size = target size = the training resolution, no crop offset (images are
        # center-cropped squares), matching what inference passes for a square image.
        time_ids = pipe._get_add_time_ids(
            (resolution, resolution), (0, 0), (resolution, resolution), dtype=states.dtype,
            text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
        ).to(model.device)
        return TextConditioning(states, {"text_embeds": pooled, "time_ids": time_ids})
    states, _ = pipe.encode_prompt(text, model.device, 1, False)
    return TextConditioning(states)


def encode_captions(model: LoadedModel, texts: list[str], resolution: int) -> TextConditioning:
    """One row per image (each distinct caption encoded once); a single row if all agree."""
    unique = list(dict.fromkeys(texts))
    encoded = {text: encode_caption(model, text, resolution) for text in unique}
    if len(unique) == 1:
        return encoded[unique[0]]
    rows = [encoded[text] for text in texts]
    added = {k: torch.cat([row.added[k] for row in rows]) for k in rows[0].added} if rows[0].added else None
    return TextConditioning(torch.cat([row.states for row in rows]), added)


@dataclass
class LatentCache:
    """Each image's latent distribution (already multiplied by the VAE scaling factor)."""

    mean: torch.Tensor  # (N, C, h, w), fp32, on the training device
    std: torch.Tensor

    def __len__(self) -> int:
        return self.mean.shape[0]

    @classmethod
    @torch.no_grad()
    def encode(cls, model: LoadedModel, pixels: torch.Tensor, chunk: int = 4) -> LatentCache:
        vae = model.vae
        original = vae.dtype
        if original != torch.float32:
            vae.to(torch.float32)  # encode in fp32: fp16 VAEs overflow, and this runs once per image
        means, stds = [], []
        try:
            for start in range(0, pixels.shape[0], chunk):
                dist = vae.encode(pixels[start:start + chunk].to(model.device, torch.float32)).latent_dist
                means.append(dist.mean)
                stds.append(dist.std)
        finally:
            if original != torch.float32:
                vae.to(original)
        scale = vae.config.scaling_factor
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return cls(mean=(torch.cat(means) - shift) * scale, std=torch.cat(stds) * scale)

    @classmethod
    def constant(cls, latents: torch.Tensor) -> LatentCache:
        """Fixed latents (the benchmark's random inputs)."""
        return cls(mean=latents.float(), std=torch.zeros_like(latents, dtype=torch.float32))


@dataclass
class NoisyBatch:
    latents: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """A shuffled order of `count` items for one epoch, a pure function of (seed, epoch)."""
    gen = torch.Generator("cpu").manual_seed((seed * 1_000_003 + epoch * 7919) % (2**63))
    return torch.randperm(count, generator=gen).tolist()


def batch_indices(count: int, batch: int, seed: int, step: int) -> list[int]:
    """Items of step `step`: positions step·batch … in the stream of shuffled epochs."""
    out = []
    for position in range(step * batch, step * batch + batch):
        epoch, offset = divmod(position, count)
        out.append(epoch_order(count, seed, epoch)[offset])
    return out


def draw_batch(cache: LatentCache, indices: list[int], generator: torch.Generator, num_timesteps: int,
               device: torch.device, rows: slice = slice(None)) -> NoisyBatch:
    """The noised batch of `indices`, or only its `rows` (one replica's share, replicas.py): the
    draws are made for the whole batch either way, so a row is the same on 1 or N processes."""
    shape = (len(indices), *cache.mean.shape[1:])
    z = torch.randn(shape, generator=generator)[rows].to(device)
    noise = torch.randn(shape, generator=generator)[rows].to(device)
    timesteps = torch.randint(0, num_timesteps, (len(indices),), generator=generator)[rows].to(device)
    mine = indices[rows]
    return NoisyBatch(latents=cache.mean[mine] + cache.std[mine] * z, noise=noise, timesteps=timesteps)


@dataclass
class DenoisingSetup:
    """What a denoising pass needs besides the batch."""

    unet: torch.nn.Module
    noise_scheduler: object  # a DDPMScheduler with the model's training noise schedule
    precision: Precision
    loss_fn: DenoisingLoss


def make_noise_scheduler(model_scheduler_config):
    """The model's training noise schedule (betas, prediction type) as a DDPM scheduler, which is
    what `add_noise` and `get_velocity` of the training objective are defined on."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(model_scheduler_config)


def predict(setup: DenoisingSetup, batch: NoisyBatch, text: TextConditioning) -> torch.Tensor:
    """The UNet's prediction on the noised batch (ε, v or x₀, as the model was trained)."""
    noisy = setup.noise_scheduler.add_noise(batch.latents, batch.noise, batch.timesteps)
    states, added = text.expand(batch.latents.shape[0])
    with setup.precision.autocast():
        return setup.unet(noisy.to(setup.precision.load_dtype), batch.timesteps, encoder_hidden_states=states,
                          added_cond_kwargs=added, return_dict=False)[0]


def denoising_loss(setup: DenoisingSetup, batch: NoisyBatch, text: TextConditioning) -> torch.Tensor:
    """Forward pass on the noised batch and the denoising loss (not yet backpropagated)."""
    target = denoising_target(setup.noise_scheduler, batch.latents, batch.noise, batch.timesteps)
    return setup.loss_fn(predict(setup, batch, text), target, batch.timesteps)
