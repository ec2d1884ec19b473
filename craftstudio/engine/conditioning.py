"""Text conditioning for one image: prompt embeddings for the conditional and unconditional
branches, plus SDXL's pooled text and size/crop conditioning. Uses the pipeline's own
`encode_prompt` so results match diffusers' stock pipelines exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from craftstudio.domain.family import Family
from craftstudio.engine.loader import LoadedModel


@dataclass
class Conditioning:
    cond: torch.Tensor  # (1, tokens, dim)
    uncond: torch.Tensor
    added_cond: dict[str, torch.Tensor] | None = None  # SDXL: text_embeds, time_ids
    added_uncond: dict[str, torch.Tensor] | None = None

    def batch(self, use_uncond: bool, use_cond: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """Encoder states (and SDXL added conditions) for the rows [uncond?, cond?], in that order."""
        parts = ([self.uncond] if use_uncond else []) + ([self.cond] if use_cond else [])
        states = torch.cat(parts)
        if self.added_cond is None or self.added_uncond is None:
            return states, None
        added = {key: torch.cat(([self.added_uncond[key]] if use_uncond else [])
                                + ([self.added_cond[key]] if use_cond else []))
                 for key in self.added_cond}
        return states, added


@torch.no_grad()
def encode(model: LoadedModel, prompt: str, negative_prompt: str, width: int, height: int) -> Conditioning:
    pipe = model.pipeline
    device = model.device
    if model.family is Family.SDXL:
        cond, uncond, pooled, neg_pooled = pipe.encode_prompt(
            prompt=prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt=negative_prompt or None,
        )
        # Size/crop conditioning: original = target = requested size, no crop (as stock SDXL).
        time_ids = pipe._get_add_time_ids(
            (height, width), (0, 0), (height, width), dtype=cond.dtype,
            text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
        ).to(device)
        return Conditioning(cond, uncond, {"text_embeds": pooled, "time_ids": time_ids},
                            {"text_embeds": neg_pooled, "time_ids": time_ids})
    cond, uncond = pipe.encode_prompt(
        prompt, device, 1, True, negative_prompt=negative_prompt or None,
    )
    return Conditioning(cond, uncond)
