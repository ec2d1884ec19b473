"""`python -m craftstudio bench sampler`: the CRAFT sampler's per-step cost against baselines.

Builds a full-size SD1.5 or SDXL UNet from the shipped config with random weights (no downloads),
rank-64 content and style LoRAs on every attention projection, and times in one run, per step of
a whole denoising loop: (a) the base UNet with standard CFG; (b) diffusers + peft with both
adapters active through `set_adapters`, standard CFG; (c) our sampler in `craft` mode with the
`paper` curves (routing on, asymmetric CFG, gates). Prints ms/step, ratios b/a and c/a and peak
memory ratios; `--json` writes them. Timings are medians of repeated loops on one device.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from craftstudio.domain.curves import load_preset
from craftstudio.domain.family import Family
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
from craftstudio.engine.conditioning import Conditioning
from craftstudio.engine.craft_layers import BranchState, installed
from craftstudio.engine.craft_plan import CraftHooks, CraftPlan
from craftstudio.engine.lora_adapters import LoraWeights, ModuleDelta
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets, target_modules
from craftstudio.engine.sampler import LoopSettings, denoise
from craftstudio.engine.single_file import family_config

FAMILIES = {"sd15": Family.SD1, "sdxl": Family.SDXL}
RANK = 64


@dataclass
class Case:
    name: str
    ms_per_step: float
    peak_bytes: int | None


def build_unet(family: Family, device: torch.device, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(family_config(family)["unet"])
    return unet.to(dtype).eval().requires_grad_(False)


def _conditioning(family: Family, unet, device, dtype) -> Conditioning:
    gen = torch.Generator("cpu").manual_seed(1)
    dim = unet.config.cross_attention_dim

    def states():
        return torch.randn(1, 77, dim, generator=gen).to(device, dtype)

    if family is Family.SDXL:
        def added():
            return {"text_embeds": torch.randn(1, 1280, generator=gen).to(device, dtype),
                    "time_ids": torch.tensor([[1024, 1024, 0, 0, 1024, 1024]]).to(device, dtype)}
        return Conditioning(states(), states(), added(), added())
    return Conditioning(states(), states())


def _random_deltas(unet, seed: int, device, dtype) -> dict[str, ModuleDelta]:
    gen = torch.Generator("cpu").manual_seed(seed)
    deltas = {}
    for name in target_modules(unet):
        d_out, d_in = unet.get_submodule(name).weight.shape
        down = nn.Linear(d_in, RANK, bias=False)
        up = nn.Linear(RANK, d_out, bias=False)
        down.weight.data = (torch.randn(RANK, d_in, generator=gen) / d_in**0.5)
        up.weight.data = (torch.randn(d_out, RANK, generator=gen) * 0.01)
        deltas[name] = ModuleDelta(down.to(device, dtype), up.to(device, dtype), 1.0)
    return deltas


def _add_peft_adapters(unet, content: dict[str, ModuleDelta], style: dict[str, ModuleDelta]) -> None:
    from peft import LoraConfig

    for name, deltas in (("content", content), ("style", style)):
        config = LoraConfig(r=RANK, lora_alpha=RANK, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
        unet.add_adapter(config, adapter_name=name)
        for module_name, delta in deltas.items():
            layer = unet.get_submodule(module_name)
            layer.lora_A[name].weight.data.copy_(delta.down.weight)
            layer.lora_B[name].weight.data.copy_(delta.up.weight)
    unet.set_adapters(["content", "style"], [1.0, 0.8])


def _loop_ms(unet, family, steps, size, device, dtype, cond, guidance, hooks, seed) -> float:
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler.from_config(family_config(family)["scheduler"])
    scheduler.set_timesteps(steps, device=device)
    gen = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn(1, 4, size // 8, size // 8, generator=gen).to(device, dtype)
    settings = LoopSettings(guidance=guidance, hooks=hooks)
    _sync(device)
    start = time.perf_counter()
    denoise(unet, scheduler, latents * scheduler.init_noise_sigma, cond, settings, gen)
    _sync(device)
    return (time.perf_counter() - start) * 1000 / steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(family_key: str = "sd15", size: int | None = None, steps: int = 30, repeats: int = 3,
        device_name: str = "auto", cfg: float = 7.0) -> dict:
    """Time every case in interleaved rounds (a, b, c, a, b, c, ...) so clock and thermal drift
    hit all cases alike; the first round is a warm-up. Median ms/step per case."""
    from craftstudio.engine.devices import pick_device

    family = FAMILIES[family_key]
    device = pick_device(device_name)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    size = size or (1024 if family is Family.SDXL else 512)
    unet = build_unet(family, device, dtype)
    cond = _conditioning(family, unet, device, dtype)
    content = _random_deltas(unet, 1, device, dtype)
    style = _random_deltas(unet, 2, device, dtype)
    request = GenerateRequest(model="bench", prompt="a cat <c> in ink style <s>", steps=steps, cfg_scale=cfg,
                              content_lora=LoraRef("content"), style_lora=LoraRef("style"),
                              switches=FusionSwitches(), curves=load_preset("paper").to_dict())
    plan = CraftPlan.build(request, steps)
    loras = {CONTENT: LoraWeights(Path("content"), "", family, content),
             STYLE: LoraWeights(Path("style"), "", family, style)}
    flat = [cfg] * steps

    def case_a(seed):
        return _loop_ms(unet, family, steps, size, device, dtype, cond, flat, None, seed)

    def case_b(seed):
        _add_peft_adapters(unet, content, style)
        try:
            return _loop_ms(unet, family, steps, size, device, dtype, cond, flat, None, seed)
        finally:
            unet.unload_lora()

    def case_c(seed):
        state = BranchState()
        with installed(unet, loras, state, LayerSets.for_family(family)):
            return _loop_ms(unet, family, steps, size, device, dtype, cond, plan.guidance,
                            CraftHooks(plan, state), seed)

    names = {"a": "a: base UNet, standard CFG", "b": "b: diffusers+peft, 2 adapters, set_adapters",
             "c": "c: CRAFT sampler, paper curves"}
    runners = {"a": case_a, "b": case_b, "c": case_c}
    times: dict[str, list[float]] = {k: [] for k in runners}
    peaks: dict[str, int | None] = {}
    for r in range(repeats + 1):
        for key, runner in runners.items():
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            ms = runner(r)
            peaks[key] = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            if r:
                times[key].append(ms)
    cases = [Case(names[k], statistics.median(times[k]), peaks[k]) for k in runners]
    base = cases[0]
    return {
        "family": family_key, "size": size, "steps": steps, "device": _device_label(device),
        "dtype": str(dtype).replace("torch.", ""), "rank": RANK, "repeats": repeats,
        "cases": [{"name": c.name, "ms_per_step": round(c.ms_per_step, 2),
                   "ratio": round(c.ms_per_step / base.ms_per_step, 3),
                   "peak_memory_ratio": (round(c.peak_bytes / base.peak_bytes, 3)
                                         if c.peak_bytes and base.peak_bytes else None),
                   "all_ms": [round(t, 2) for t in times[k]]}
                  for c, k in zip(cases, runners, strict=True)],
    }


def _device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def format_table(result: dict) -> str:
    lines = [f"{result['family']} {result['size']}x{result['size']}, {result['steps']} steps, "
             f"{result['dtype']}, rank {result['rank']}, {result['device']}",
             f"{'case':48} {'ms/step':>9} {'vs a':>7} {'peak mem vs a':>14}"]
    for c in result["cases"]:
        mem = f"{c['peak_memory_ratio']:.3f}" if c["peak_memory_ratio"] else "n/a"
        lines.append(f"{c['name']:48} {c['ms_per_step']:9.2f} {c['ratio']:7.3f} {mem:>14}")
    return "\n".join(lines)


def main(args) -> int:
    """Entry point of `python -m craftstudio bench sampler` (arguments parsed by craftstudio/cli/bench.py)."""
    warnings.filterwarnings("ignore", message=".*peft_config.*")  # two adapters on purpose in case b
    results = []
    for family in args.family or ["sd15", "sdxl"]:
        result = run(family, args.size, args.steps, args.repeats, args.device)
        print(format_table(result), flush=True)
        print()
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0
