"""Tiny real Stable Diffusion models built from configs, for tests (SD1.x and SDXL layouts).

They are saved as diffusers folders (or single files) and loaded back through the project's own
loader, so tests exercise real loading code. Run `python -m tests.kit.tiny_models DIR [sd1|sdxl]`
to write one for manual CLI use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from craftstudio.engine.clip_bpe import bytes_to_unicode

WORDS = ["a", "an", "the", "of", "in", "on", "with", "and", "style", "photo", "painting", "drawing", "watercolor", "oil", "sketch", "cat", "dog", "bird", "house", "tree", "car", "red", "blue", "green", "ginger", "fluffy", "portrait", "landscape", "sks", "ohwx"]




def write_tokenizer(folder: Path, max_length: int = 77) -> None:
    """A CLIP BPE tokenizer over a small vocabulary: every byte char, char</w> and a few words."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(bytes_to_unicode().values())
    vocab: list[str] = []
    for ch in alphabet:
        vocab += [ch, ch + "</w>"]
    merges: list[str] = []
    for word in WORDS:
        # Build each word by left-to-right merges; the last merge carries </w>.
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            merged = pieces[0] + pieces[1]
            if merged not in vocab:
                vocab.append(merged)
            pieces = [merged] + pieces[2:]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    seen: set[str] = set()
    merges = [m for m in merges if not (m in seen or seen.add(m))]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": max_length,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    }))
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    }))


def _vocab_size(folder: Path) -> int:
    return len(json.loads((folder / "vocab.json").read_text()))


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8, sample_size=32,
    )


def _text_config(vocab: int, hidden: int, projection: int = 0):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2,
        num_hidden_layers=2, max_position_embeddings=77, projection_dim=projection or hidden,
        bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
        hidden_act="quick_gelu",
    )


def build_sd1(folder: Path, seed: int = 0, in_channels: int = 4) -> Path:
    """A tiny SD1.x-layout pipeline folder (UNet with 2 down/up blocks, cross-attention 32);
    `in_channels=9` makes an inpainting model's layout."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    folder = Path(folder)
    write_tokenizer(folder / "tokenizer")
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=in_channels, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16,
    )
    # Random init gives near-zero outputs; scale weights so tests see real differences.
    text = CLIPTextModel(_text_config(_vocab_size(folder / "tokenizer"), 32))
    pipe = StableDiffusionPipeline(
        vae=_vae(), text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        unet=unet, scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                           beta_end=0.012, clip_sample=False, set_alpha_to_one=False,
                                           steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_sdxl(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL-layout pipeline folder (two text encoders, added time/text conditioning)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    folder = Path(folder)
    write_tokenizer(folder / "tokenizer")
    write_tokenizer(folder / "tokenizer_2")
    vocab = _vocab_size(folder / "tokenizer")
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64, norm_num_groups=16,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(vocab, 32)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(vocab, 32, projection=32)),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
        unet=unet, scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                                     beta_end=0.012, steps_offset=1),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1])
    (build_sdxl if len(sys.argv) > 2 and sys.argv[2] == "sdxl" else build_sd1)(out)
    print(out)
