"""`craftstudio bench train`: the cost of a training step, against a plain LoRA baseline.

Builds UNets with random weights from the standard configs (resources/model_configs/*.json,
"unet" section): SD1.5 at 512² and SDXL at 1024² (`--preset full`), or the same block layouts
with a tenth of the channels for a quick CPU check (`--preset small`). In one run, with batch 1,
rank 64, bf16 autocast (fp32 on the CPU) and gradient checkpointing on, it measures:

  (a) a plain peft LoRA step on every attention projection (to_q, to_k, to_v, to_out.0) — the
      usual DreamBooth-LoRA set-up, the baseline;
  (b) our routed content-LoRA step (only the I_c modules carry a LoRA);
  (c) a Rank-FT backbone step (content bases on every projection, both banks orthonormalised,
      orthogonality penalty).

Each step is the trainers' own step object (lora_training.LoraStep, backbone_training.RankFtStep)
on random latents and text embeddings: forward, loss, backward, optimizer step. Time is the median
over the measured steps after warm-up; peak memory is torch.cuda.max_memory_allocated (weights
included), "n/a" off CUDA. Targets: b/a ≤ 1.0 and c/a ≤ 1.3.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from typing import Any

import torch

from craftstudio.domain.family import Family
from craftstudio.domain.resources import resources_dir
from craftstudio.engine.routing import CONTENT, PROJECTIONS
from craftstudio.engine.training.backbone_training import RankFtStep
from craftstudio.engine.training.backbone_training import make_optimizer as rank_ft_optimizer
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    LatentCache,
    TextConditioning,
    draw_batch,
    make_noise_scheduler,
    step_generator,
)
from craftstudio.engine.training.lora_training import LoraStep, add_lora, make_optimizer, role_modules
from craftstudio.engine.training.losses import make_denoising_loss
from craftstudio.engine.training.precision import resolve_precision
from craftstudio.engine.training.rank_ft import Projection, ProjectionBases, layer_specs

TARGETS = {"b/a": 1.0, "c/a": 1.3}
FAMILIES = {"sd15": ("sd1.json", Family.SD1, 512), "sdxl": ("sdxl.json", Family.SDXL, 1024)}
CONFIGS = {"a": "(a) plain LoRA, all attention", "b": "(b) routed content LoRA", "c": "(c) Rank-FT backbone step"}
NOISE_CONFIG = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000,
          "prediction_type": "epsilon"}


def unet_config(family: str, preset: str) -> dict[str, Any]:
    """The family's UNet config; `small` keeps the block layout with a tenth of the channels."""
    file_name, _, _ = FAMILIES[family]
    config = dict(json.loads((resources_dir() / "model_configs" / file_name).read_text())["unet"])
    if preset == "small":
        config["block_out_channels"] = [max(32, c // 10) for c in config["block_out_channels"]]
        if family == "sdxl":
            config.update(attention_head_dim=[2, 4, 8], cross_attention_dim=128, addition_time_embed_dim=16,
                          projection_class_embeddings_input_dim=6 * 16 + 64)
        else:
            config.update(cross_attention_dim=64)
    return config


def build_unet(config: dict[str, Any], device: torch.device, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: a full SDXL UNet is slow to build on a CPU
        unet = UNet2DConditionModel.from_config(config)
    return unet.to(dtype)


def random_inputs(config: dict[str, Any], family: str, size: int, device: torch.device):
    gen = torch.Generator("cpu").manual_seed(1)
    latents = torch.randn(1, config["in_channels"], size // 8, size // 8, generator=gen)
    states = torch.randn(1, 77, config["cross_attention_dim"], generator=gen).to(device)
    added = None
    if family == "sdxl":
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        added = {"text_embeds": torch.randn(1, pooled, generator=gen).to(device),
                 "time_ids": torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32).to(device)}
    return LatentCache.constant(latents.to(device)), TextConditioning(states, added)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(step, device: torch.device, steps: int, warmup: int) -> tuple[float, float | None]:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        _sync(device)
        began = time.perf_counter()
        step(i)
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - began) * 1000.0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return statistics.median(times), peak


def bench_family(family: str, *, size: int, steps: int, warmup: int, rank: int, preset: str,
                 device: torch.device, precision_choice: str, checkpointing: bool) -> list[dict[str, Any]]:
    precision = resolve_precision(precision_choice, device)
    config = unet_config(family, preset)
    unet = build_unet(config, device, precision.load_dtype)
    unet.requires_grad_(False)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    cache, text = random_inputs(config, family, size, device)
    scheduler = make_noise_scheduler(NOISE_CONFIG)
    setup = DenoisingSetup(unet, scheduler, precision, make_denoising_loss("mse", scheduler))
    fam = FAMILIES[family][1]
    rows = []

    def batch(i: int):
        return draw_batch(cache, [0], step_generator(0, i), 1000, device)

    for key in ("a", "b", "c"):
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if key == "c":
            specs = layer_specs(unet, rank, rank)
            bases = ProjectionBases(specs, 0, device)
            projection = Projection(unet, [s.name for s in specs])
            rank_ft = RankFtStep(setup, bases, projection, rank_ft_optimizer(bases.parameters(), 1e-3), 1.0)
            with projection.installed():
                ms, peak = _measure(lambda i, run=rank_ft: run(CONTENT, batch(i), text), device, steps, warmup)
            layers = len(specs)
            del bases, rank_ft
        else:
            modules = list(PROJECTIONS) if key == "a" else role_modules(unet, fam, CONTENT, None)
            params = add_lora(unet, modules, rank, rank, seed=0)
            lora = LoraStep(setup, make_optimizer(list(params.values()), 1e-4, adam_8bit=False))
            ms, peak = _measure(lambda i, run=lora: run(batch(i), text), device, steps, warmup)
            layers = len(params) // 2
            unet.unload_lora()
            del params, lora
        rows.append({"family": family, "size": size, "preset": preset, "config": key, "label": CONFIGS[key],
                     "layers": layers, "ms_per_step": ms, "peak_mib": peak})
    del unet
    return rows


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        by = {r["config"]: r for r in rows if r["family"] == family}
        entry: dict[str, float | None] = {}
        for key in ("b", "c"):
            entry[f"{key}/a"] = by[key]["ms_per_step"] / by["a"]["ms_per_step"]
            peak_a, peak_x = by["a"]["peak_mib"], by[key]["peak_mib"]
            entry[f"{key}/a memory"] = peak_x / peak_a if peak_a and peak_x else None
        out[family] = entry
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU" if device.type == "cpu" else device.type.upper()


def run(families: list[str], *, size: int | None = None, steps: int = 20, warmup: int = 3, rank: int = 64,
        preset: str | None = None, device: torch.device, precision: str = "auto",
        checkpointing: bool = True) -> dict[str, Any]:
    preset = preset or ("full" if device.type == "cuda" else "small")
    rows = []
    for family in families:
        rows += bench_family(family, size=size or FAMILIES[family][2], steps=steps, warmup=warmup, rank=rank,
                             preset=preset, device=device, precision_choice=precision, checkpointing=checkpointing)
    return {"device": device_name(device), "torch": torch.__version__,
            "precision": resolve_precision(precision, device).label, "batch": 1, "rank": rank,
            "gradient_checkpointing": checkpointing, "steps": steps, "warmup": warmup, "rows": rows,
            "ratios": ratios(rows), "targets": TARGETS}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"card: {report['device']} | torch {report['torch']} | {report['precision']} | batch 1 | "
             f"rank {report['rank']} | gradient checkpointing {'on' if report['gradient_checkpointing'] else 'off'}"
             f" | median of {report['steps']} steps",
             "", "| model | size | step | layers | ms/step | peak memory | time vs (a) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    base = {r["family"]: r["ms_per_step"] for r in report["rows"] if r["config"] == "a"}
    for r in report["rows"]:
        peak = f"{r['peak_mib'] / 1024:.2f} GiB" if r["peak_mib"] is not None else "n/a"
        name = {"sd15": "SD1.5 UNet", "sdxl": "SDXL UNet"}[r["family"]] + (" (small)" if r["preset"] == "small" else "")
        lines.append(f"| {name} | {r['size']}² | {r['label']} | {r['layers']} | {r['ms_per_step']:.1f} | "
                     f"{peak} | {r['ms_per_step'] / base[r['family']]:.2f}× |")
    lines.append("")
    for family, entry in report["ratios"].items():
        parts = [f"{k} {v:.2f}" for k, v in entry.items() if v is not None]
        verdict = all(entry[k] <= t for k, t in TARGETS.items())
        lines.append(f"{family}: {', '.join(parts)} (targets b/a <= 1.0, c/a <= 1.3: "
                     f"{'met' if verdict else 'NOT met'})")
    return "\n".join(lines)
