"""`python -m craftstudio.demo eval-base`: how well the demo base model draws its world.

Images are generated through the application's own path (`craftstudio.engine.generation.generate`,
one request per image, 64×64, 20 steps by default) for random training (shape, style) captions;
the oracle then names each picture's shape and style. Also reported: seconds per image on the
chosen device once the model is loaded (the ≤ 2 s CPU target is read from this, not asserted in
tests), with the thread count set explicitly so a 2-core machine can be imitated.

`sample_batch` is the training machine's batched sampler (many captions per UNet call) for the
end-of-training check and sample sheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from craftstudio.demo.world import SPLIT, caption


@dataclass(frozen=True)
class EvalConfig:
    model: str
    images: int = 56
    steps: int = 20
    cfg: float = 5.0
    scheduler: str = "dpmpp_2m_karras"
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    oracle: str | None = None
    include_heldout: bool = False
    backbone: str | None = None  # a backbone file: measures what W_init costs the base model


def _requests(config: EvalConfig):
    from craftstudio.domain.generation import GenerateRequest

    pairs = SPLIT.train_pairs()
    rng = np.random.default_rng([config.seed, 0xE7A1])
    order = rng.permutation(len(pairs))
    chosen = [pairs[order[i % len(pairs)]] for i in range(config.images)]
    return [(pair, GenerateRequest(model=config.model, prompt=caption(*pair), width=64, height=64,
                                   steps=config.steps, cfg_scale=config.cfg, seed=config.seed + i,
                                   scheduler=config.scheduler, device=config.device,
                                   backbone=config.backbone))
            for i, pair in enumerate(chosen)]


def evaluate_base(config: EvalConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    from craftstudio.demo.oracle import Oracle
    from craftstudio.engine.generation import generate

    torch.set_num_threads(config.threads)
    oracle = Oracle.load(config.oracle)
    requests = _requests(config)
    warm = generate(requests[0][1])  # loads the model (cached); not timed
    del warm
    images, seconds = [], []
    for i, (_pair, request) in enumerate(requests):
        started = time.perf_counter()
        images.append(generate(request).images[0])
        seconds.append(time.perf_counter() - started)
        if (i + 1) % 10 == 0 or i + 1 == len(requests):
            log(f"{i + 1}/{len(requests)} images, {np.mean(seconds):.2f} s/image")
    predicted = oracle.predict(images)
    wanted = [pair for pair, _ in requests]
    content = [p[0] == w[0] for p, w in zip(predicted, wanted, strict=True)]
    style = [p[1] == w[1] for p, w in zip(predicted, wanted, strict=True)]
    result = {
        "model": config.model, "images": len(images), "steps": config.steps, "cfg": config.cfg,
        "scheduler": config.scheduler, "device": config.device, "threads": config.threads,
        "backbone": config.backbone,
        "content_accuracy": float(np.mean(content)), "style_accuracy": float(np.mean(style)),
        "both_accuracy": float(np.mean([c and s for c, s in zip(content, style, strict=True)])),
        "seconds_per_image": float(np.mean(seconds)), "seconds_per_image_median": float(np.median(seconds)),
    }
    misses = [f"{w[0]}/{w[1]} -> {p[0]}/{p[1]}" for p, w in zip(predicted, wanted, strict=True) if p != w]
    result["misses"] = misses[:20]
    return result


# A batched sampler for the training machine's end-of-run check and sample sheet: DDIM with
# classifier-free guidance over many captions at once, on whatever device the models are on.
# (The application generates through `generate`, one image at a time.)


@torch.no_grad()
def encode_captions(text_encoder, tokenizer, captions: list[str], device: torch.device) -> torch.Tensor:
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    return text_encoder(ids)[0]


@torch.no_grad()
def sample_batch(unet, vae, text_encoder, tokenizer, scheduler, captions: list[str], *, steps: int = 20,
                 guidance: float = 5.0, seed: int = 0, scaling_factor: float | None = None,
                 autocast: bool = True) -> list[Image.Image]:
    """One image per caption (64×64 PIL images)."""
    device = next(unet.parameters()).device
    factor = scaling_factor if scaling_factor is not None else vae.config.scaling_factor
    cond = encode_captions(text_encoder, tokenizer, captions, device)
    uncond = encode_captions(text_encoder, tokenizer, [""], device).expand_as(cond)
    size = unet.config.sample_size
    generator = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn((len(captions), unet.config.in_channels, size, size), generator=generator).to(device)
    scheduler.set_timesteps(steps, device=device)
    latents = latents * scheduler.init_noise_sigma
    states = torch.cat([uncond, cond])
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
            eps_u, eps_c = unet(model_in, t, encoder_hidden_states=states).sample.float().chunk(2)
            latents = scheduler.step(eps_u + guidance * (eps_c - eps_u), t, latents).prev_sample
        pixels = vae.decode(latents / factor).sample.float()
    array = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, mode="RGB") for a in array]


def contact_sheet(images: list[Image.Image], columns: int) -> Image.Image:
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (64 * columns, 64 * rows), (255, 255, 255))
    for i, image in enumerate(images):
        sheet.paste(image, (64 * (i % columns), 64 * (i // columns)))
    return sheet
