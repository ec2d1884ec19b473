"""The demo base model's architecture: an SD1.x-layout pipeline sized for 64×64 pictures.

- AutoencoderKL with three levels (64 → 16 pixels), 4 latent channels: a 16×16×4 latent keeps
  the world's fine textures (speckle, halftone) that an 8× autoencoder would blur away.
- UNet2DConditionModel with SD1.x's block layout (three cross-attention down blocks and a plain
  one, a plain up block and three cross-attention up blocks), so prompt routing's SD1.x layer
  map (content: encoder, middle, first decoder blocks; style: the later decoder blocks) applies
  unchanged.
- A small CLIPTextModel over the world's tokenizer (`vocabulary.py`), trained with the UNet.
- DDIM-style scaled-linear schedule (SD1.x's betas), ε-prediction.

`save_pipeline` writes a diffusers folder in fp16 with shards under 15 MB, which
`craftstudio.engine.loader.load_model` loads like any Stable Diffusion model.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from craftstudio.demo.lab.vocabulary import MAX_LENGTH, vocab_size, write_tokenizer

SCHEDULE = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
            "num_train_timesteps": 1000, "prediction_type": "epsilon"}
MAX_SHARD = "14MB"
MODEL_CARD = "shapesworld.json"  # training record written beside model_index.json
# Latent sizes of the 64² pictures: 16 (shipped) and 32, the finer world on which the question
# "is 16² too coarse for the decoder blocks to leave the outline alone?" is measured.
LATENT_SIZES = (16, 32)


@dataclass(frozen=True)
class ModelSizes:
    """Widths and depths of the three networks (recorded with the model)."""

    unet_channels: tuple[int, ...] = (64, 128, 160, 160)
    unet_heads: tuple[int, ...] = (2, 4, 4, 4)
    unet_layers_per_block: int = 1
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    vae_channels: tuple[int, ...] = (32, 64, 128)
    vae_layers_per_block: int = 1
    latent_channels: int = 4

    @classmethod
    def tiny(cls) -> ModelSizes:
        """For tests: the same layout, a fraction of the width."""
        return cls(unet_channels=(32, 32, 32, 32), unet_heads=(2, 2, 2, 2), text_hidden=32, text_layers=1,
                   text_heads=2, vae_channels=(16, 16, 32))

    def with_latent_size(self, latent: int, image_size: int = 64) -> ModelSizes:
        """The same networks with an autoencoder that turns the pictures into `latent`² latents:
        one level per halving, keeping the widths of the first levels (16: three levels, as
        shipped; 32: two, so every UNet block runs at twice the resolution)."""
        levels = (image_size // latent).bit_length()
        if latent not in LATENT_SIZES or image_size != latent * 2 ** (levels - 1):
            raise ValueError(f"latent size {latent} is not one of {', '.join(map(str, LATENT_SIZES))}")
        if levels > len(self.vae_channels):
            raise ValueError(f"{levels} autoencoder levels need {levels} widths, not {self.vae_channels}")
        return replace(self, vae_channels=self.vae_channels[:levels])


def build_vae(sizes: ModelSizes):
    from diffusers import AutoencoderKL

    levels = len(sizes.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=sizes.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(sizes.vae_channels), layers_per_block=sizes.vae_layers_per_block,
        norm_num_groups=min(32, min(sizes.vae_channels)), sample_size=64, force_upcast=False,
    )


def build_unet(sizes: ModelSizes, latent_size: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=sizes.latent_channels, out_channels=sizes.latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=tuple(sizes.unet_channels), layers_per_block=sizes.unet_layers_per_block,
        attention_head_dim=tuple(sizes.unet_heads), cross_attention_dim=sizes.text_hidden,
        norm_num_groups=min(32, min(sizes.unet_channels)),
    )


def build_text_encoder(sizes: ModelSizes, vocab: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab, hidden_size=sizes.text_hidden, intermediate_size=4 * sizes.text_hidden,
        num_attention_heads=sizes.text_heads, num_hidden_layers=sizes.text_layers,
        max_position_embeddings=MAX_LENGTH, projection_dim=sizes.text_hidden, hidden_act="quick_gelu",
        bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
    )
    return CLIPTextModel(config)


def training_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULE, clip_sample=False)


def inference_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def latent_size(sizes: ModelSizes, image_size: int = 64) -> int:
    return image_size // 2 ** (len(sizes.vae_channels) - 1)


def build_components(sizes: ModelSizes, tokenizer_dir: Path) -> dict[str, Any]:
    """Fresh (untrained) vae, unet, text_encoder and the tokenizer written to `tokenizer_dir`."""
    from transformers import CLIPTokenizer

    write_tokenizer(tokenizer_dir)
    return {
        "vae": build_vae(sizes),
        "unet": build_unet(sizes, latent_size(sizes)),
        "text_encoder": build_text_encoder(sizes, vocab_size(tokenizer_dir)),
        "tokenizer": CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True),
    }


def save_pipeline(folder: str | Path, vae, unet, text_encoder, tokenizer, record: dict[str, Any]) -> Path:
    """Write the diffusers folder (fp16 weights, shards ≤ 14 MB) plus `shapesworld.json`; the
    folder appears only when complete (written beside it, then renamed into place)."""
    import diffusers
    import huggingface_hub
    import transformers
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for module in (vae, unet, text_encoder):  # fp16 copies on the CPU; the trained modules stay
        module.to("cpu")
    pipe = StableDiffusionPipeline(
        vae=copy.deepcopy(vae).half(), text_encoder=copy.deepcopy(text_encoder).half(), tokenizer=tokenizer,
        unet=copy.deepcopy(unet).half(), scheduler=inference_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    diffusers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    pipe.save_pretrained(staging, safe_serialization=True, max_shard_size=MAX_SHARD)
    write_tokenizer(staging / "tokenizer", config=False)  # vocab.json + merges.txt beside tokenizer.json
    (staging / MODEL_CARD).write_text(json.dumps(record, indent=1, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def folder_report(folder: str | Path) -> dict[str, Any]:
    """Total size and largest file of a saved model folder (bytes)."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    largest = max(files, key=lambda p: p.stat().st_size)
    return {"total_bytes": sum(p.stat().st_size for p in files), "largest_file": str(largest.relative_to(folder)),
            "largest_bytes": largest.stat().st_size}


def sizes_record(sizes: ModelSizes) -> dict[str, Any]:
    return asdict(sizes)
