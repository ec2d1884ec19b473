"""`python -m craftstudio bench hires`: memory and time of a hires request against a plain one.

Writes a full-size model folder (SD1.5 or SDXL from the shipped configs, random weights: no
downloads) and runs the real `generate()` on it, in one process:
  base   a plain request at the model's native size
  hires  the same request with `hires_factor` (2 → SDXL 2048², SD1.5 1024²) at hires strength 0.5
  low    hires with low-VRAM mode (CPU offload, VAE tiling)
Per case: seconds per image (after a warm-up) and peak GPU memory (torch.cuda.max_memory_allocated),
with ratios against base. The VAE tiles above 1024² pixels in every mode (engine/img2img.py), which
is what keeps a 2048² decode within a 12 GB card.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from craftstudio.domain.family import Family
from craftstudio.domain.generation import GenerateRequest

FAMILIES = {"sd15": Family.SD1, "sdxl": Family.SDXL}
GIB = 1024 ** 3


def write_random_model(family: Family, folder: Path, device: torch.device) -> Path:
    """A diffusers folder of `family`'s full-size architecture with random weights (fp16)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from craftstudio.engine.single_file import family_config, write_config_folder

    write_config_folder(family, folder)
    config = family_config(family)
    torch.manual_seed(0)
    with torch.device(device):
        parts = {"unet": UNet2DConditionModel.from_config(config["unet"]),
                 "vae": AutoencoderKL.from_config(config["vae"])}
        for name, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
            if name in config:
                settings = {k: v for k, v in config[name].items() if not k.startswith("_")}
                parts[name] = cls(CLIPTextConfig(**settings))
    for name, module in parts.items():
        module.to(torch.float16).save_pretrained(folder / name, safe_serialization=True)
        del module
    parts.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return folder


def _case(request: GenerateRequest, device: torch.device) -> dict:
    from craftstudio.engine import model_cache
    from craftstudio.engine.generation import generate

    generate(request)  # warm-up: loads the model (low-VRAM mode loads its own offloaded copy)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = generate(request)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    model_cache.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"seconds": seconds, "peak_bytes": peak, "size": list(result.images[0].size)}


def run(family_name: str, factor: float, steps: int, device_name: str) -> dict:
    from craftstudio.engine.devices import pick_device

    family = FAMILIES[family_name]
    device = pick_device(device_name)
    native = 1024 if family is Family.SDXL else 512
    with tempfile.TemporaryDirectory(prefix="craftstudio-hires-") as tmp:
        model = write_random_model(family, Path(tmp) / family_name, device)
        base = GenerateRequest(model=str(model), prompt="a castle on a hill", width=native, height=native,
                               steps=steps, cfg_scale=6.0, seed=1, scheduler="euler", device=device.type)
        hires = dataclasses.replace(base, hires_factor=factor, hires_strength=0.5)
        low = dataclasses.replace(hires, low_vram=True)
        cases = {"base": _case(base, device), "hires": _case(hires, device), "low": _case(low, device)}
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"family": family_name, "factor": factor, "steps": steps, "device": card, "cases": cases}


def report(result: dict) -> str:
    base = result["cases"]["base"]
    lines = [f"{result['family']} hires ×{result['factor']:g}, {result['steps']} steps (+{result['steps'] // 2} hires "
             f"steps run), {result['device']}",
             "| case | size | s/image | × base | peak GiB | × base |", "| --- | --- | --- | --- | --- | --- |"]
    for name, case in result["cases"].items():
        peak = case["peak_bytes"]
        peak_text = f"{peak / GIB:.2f} | {peak / base['peak_bytes']:.2f}" if peak else "– | –"
        lines.append(f"| {name} | {case['size'][0]}×{case['size'][1]} | {case['seconds']:.2f} | "
                     f"{case['seconds'] / base['seconds']:.2f} | {peak_text} |")
    return "\n".join(lines)


def main(args) -> int:
    results = []
    for family in args.family or ["sd15", "sdxl"]:
        result = run(family, args.factor, args.steps, args.device)
        print(report(result), flush=True)
        results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0
