"""Folders of small LoRA files for Library page tests (no torch: synthetic headers, zero tensors)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from craftstudio.library import synthetic

# (file name, layout, metadata): both key layouts (kohya and diffusers/peft), the three families,
# content and style roles, trigger phrases from ModelSpec and from kohya caption tags.
LORAS = [
    ("ink sketch.safetensors", "kohya-sd1",
     {**synthetic.kohya_metadata("inkSketch", "sd1", 4, {"ink sketch": 50, "1girl": 3}),
      "modelspec.category": "style"}),
    ("robot pilot.safetensors", "diffusers-sd1",
     {"modelspec.title": "Robot pilot", "modelspec.trigger_phrase": "robot pilot", "craft.role": "content"}),
    ("watercolor.safetensors", "peft-sd1",
     {"modelspec.title": "Watercolour", "modelspec.trigger_phrase": "watercolor style", "craft.role": "style"}),
    ("xl/neon city.safetensors", "kohya-sdxl", synthetic.kohya_metadata("neonCity", "sdxl", 8)),
    ("xl/glass.safetensors", "diffusers-sdxl",
     {"modelspec.title": "Glass", "modelspec.trigger_phrase": "glass figure", "craft.role": "content"}),
    ("sd2/pastel.safetensors", "kohya-sd2", synthetic.kohya_metadata("pastel", "sd2", 2)),
]
CORRUPT = "broken.safetensors"


def write_lora_folder(folder: Path) -> Path:
    """The LORAS above plus one corrupt file, in `folder`."""
    for name, layout, meta in LORAS:
        synthetic.write_safetensors(folder / name, synthetic.LAYOUTS[layout](4), meta)
    (folder / CORRUPT).write_bytes(b"\x05\x00")
    return folder


def write_many(folder: Path, count: int) -> Path:
    """`count` tiny LoRAs (a few KB each: one UNet block, rank 1), alternating families and roles."""
    sd1 = synthetic.peft("sd1", 1)
    sdxl = synthetic.peft("sdxl", 1)
    for i in range(count):
        family = ("sd1", "sdxl")[i % 2]
        meta = {"modelspec.title": f"generated {i:05d}", "modelspec.trigger_phrase": f"subject{i:05d}",
                "craft.role": ("content", "style")[i // 2 % 2]}
        synthetic.write_safetensors(folder / f"{i // 500:02d}" / f"lora-{i:05d}.safetensors",
                                    sd1 if family == "sd1" else sdxl, meta)
    return folder


def write_png(path: Path, color: tuple[int, int, int] = (200, 60, 40), size: tuple[int, int] = (96, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_checkpoint(path: Path, family: str = "sd1") -> Path:
    """A single-file base model header of `family` (sd1 or sdxl)."""
    keys = {"sd1": {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
                    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (8, 768)},
            "sdxl": {"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
                     "conditioner.embedders.1.model.token_embedding.weight": (8, 1280)}}[family]
    return synthetic.write_safetensors(path, keys, {"modelspec.title": f"{family} base"})
