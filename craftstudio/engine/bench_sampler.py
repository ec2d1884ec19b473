"""`python -m craftstudio bench sampler`: the CRAFT sampler's per-step cost against baselines.

Builds a full-size SD1.5 or SDXL UNet from the shipped config with random weights (no downloads),
rank-64 content and style LoRAs on every attention projection, and times in one run, per step of
a whole denoising loop (interleaved rounds, medians):
  a  base UNet, standard CFG, eager            b  diffusers + peft, both adapters, `set_adapters`
  c  our sampler in `craft` mode, `paper` curves (routing, asymmetric CFG, gates), eager
  d  diffusers' own pipeline loop on the base UNet (prompt embeddings given), eager
  --fast:      a_fast / c_fast = a / c with the UNet compiled (CUDA graphs on CUDA); first-use
               compile seconds and the graphs compiled after warm-up (recompiles, want 0)
  --batch N:   c with N images per UNet call vs 1: images per second
  --low-vram:  c with the UNet offloaded to the CPU between images: peak memory and time vs c
  --profile:   one more loop of a, c (and a_fast, c_fast, c_fast_all with --fast) under
               torch.profiler: kernels per step and their GPU time by kind against the wall time
Ratios are against a, measured in the same run; peak memory is torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import json
import os
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


def _loop_ms(unet, family, steps, size, device, dtype, cond, guidance, hooks, seed, n: int = 1,
             graph: bool = False, all_rows: bool = False) -> float:
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler.from_config(family_config(family)["scheduler"])
    scheduler.set_timesteps(steps, device=device)
    gen = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn(n, 4, size // 8, size // 8, generator=gen).to(device, dtype)
    if graph and hooks is not None:
        hooks.prepare_graph(2 * n, slice(n, 2 * n), device, dtype, all_rows=all_rows)
    settings = LoopSettings(guidance=guidance, hooks=hooks, graph=graph)
    _sync(device)
    start = time.perf_counter()
    denoise(unet, scheduler, latents * scheduler.init_noise_sigma, cond, settings, gen)
    _sync(device)
    return (time.perf_counter() - start) * 1000 / steps


def _pipeline_ms(unet, family, steps, size, cond: Conditioning, cfg: float, seed: int) -> float:
    """diffusers' own pipeline loop (prompt embeddings given, latents out): its eager step."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = EulerDiscreteScheduler.from_config(family_config(family)["scheduler"])
    kwargs = dict(prompt_embeds=cond.cond, negative_prompt_embeds=cond.uncond, num_inference_steps=steps,
                  guidance_scale=cfg, height=size, width=size, output_type="latent",
                  generator=torch.Generator("cpu").manual_seed(seed))
    if family is Family.SDXL:
        pipe = StableDiffusionXLPipeline(vae=None, text_encoder=None, text_encoder_2=None, tokenizer=None,
                                         tokenizer_2=None, unet=unet, scheduler=scheduler)
        kwargs.update(pooled_prompt_embeds=cond.added_cond["text_embeds"],
                      negative_pooled_prompt_embeds=cond.added_uncond["text_embeds"])
    else:
        pipe = StableDiffusionPipeline(vae=None, text_encoder=None, tokenizer=None, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    device = unet.device
    _sync(device)
    start = time.perf_counter()
    pipe(**kwargs)
    _sync(device)
    return (time.perf_counter() - start) * 1000 / steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(family_key: str = "sd15", size: int | None = None, steps: int = 30, repeats: int = 3,
        device_name: str = "auto", cfg: float = 7.0, fast: bool = False, batch: int = 4,
        low_vram: bool = False, cases: str = "abcd", profile: bool = False) -> dict:
    """Time every case in interleaved rounds (a, b, c, a, b, c, ...) so clock and thermal drift
    hit all cases alike; the first round is a warm-up (and, for compiled cases, the compile).
    Median ms/step per case."""
    from craftstudio.engine import compiled_unet
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
    sets = LayerSets.for_family(family)
    flat = [cfg] * steps
    compiled = {}

    def loop(model, guidance, hooks, seed, n=1, graph=False, all_rows=False):
        return _loop_ms(model, family, steps, size, device, dtype, cond, guidance, hooks, seed, n, graph, all_rows)

    def case_a(seed):
        return loop(unet, flat, None, seed)

    def case_b(seed):
        _add_peft_adapters(unet, content, style)
        try:
            return loop(unet, flat, None, seed)
        finally:
            unet.unload_lora()

    def craft(seed, model=unet, n=1, graph=False, all_rows=False):
        state = BranchState()
        with installed(unet, loras, state, sets):
            return loop(model, plan.guidance, CraftHooks(plan, state), seed, n, graph, all_rows)

    def case_d(seed):
        return _pipeline_ms(unet, family, steps, size, cond, cfg, seed)

    def compiled_unet_for(key):
        if key not in compiled:
            compiled[key] = compiled_unet.CompiledUNet(unet)
        return compiled[key]

    names = {"a": "a: base UNet, standard CFG", "b": "b: diffusers+peft, 2 adapters, set_adapters",
             "c": "c: CRAFT sampler, paper curves", "d": "d: diffusers pipeline loop, base UNet",
             "a_fast": "a_fast: base UNet, compiled", "c_fast": "c_fast: CRAFT sampler, compiled",
             "c_fast_all": "c_fast_all: CRAFT compiled, LoRAs on every row",
             "c_batch": f"c_batch: CRAFT, {batch} images per call"}
    runners = {"a": case_a, "b": case_b, "c": craft, "d": case_d}
    runners = {k: v for k, v in runners.items() if k == "a" or k in cases}
    if fast:
        runners["a_fast"] = lambda seed: loop(compiled_unet_for("a"), flat, None, seed, graph=True)
        runners["c_fast"] = lambda seed: craft(seed, compiled_unet_for("c"), graph=True)
        if profile:  # the earlier graph layout, to show what running LoRAs on the cond rows only saves
            runners["c_fast_all"] = lambda seed: craft(seed, compiled_unet_for("call"), graph=True, all_rows=True)
    if batch > 1:
        runners["c_batch"] = lambda seed: craft(seed, n=batch)
    times: dict[str, list[float]] = {k: [] for k in runners}
    peaks: dict[str, int | None] = {}
    first_ms: dict[str, float] = {}
    graphs_after_warmup = None
    for r in range(repeats + 1):
        if r == 1:
            graphs_after_warmup = compiled_unet.graph_count()
        for key, runner in runners.items():
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            ms = runner(r)
            peaks[key] = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            if r:
                times[key].append(ms)
            else:
                first_ms[key] = ms
    recompiles = compiled_unet.graph_count() - graphs_after_warmup if fast else None
    cases_out = [Case(names[k], statistics.median(times[k]), peaks[k]) for k in runners]
    base = cases_out[0]
    result = {
        "family": family_key, "size": size, "steps": steps, "device": _device_label(device),
        "dtype": str(dtype).replace("torch.", ""), "rank": RANK, "repeats": repeats,
        "cases": [{"key": k, "name": c.name, "ms_per_step": round(c.ms_per_step, 2),
                   "ratio": round(c.ms_per_step / base.ms_per_step, 3),
                   "peak_memory_ratio": (round(c.peak_bytes / base.peak_bytes, 3)
                                         if c.peak_bytes and base.peak_bytes else None),
                   "peak_gib": round(c.peak_bytes / 2**30, 2) if c.peak_bytes else None,
                   "all_ms": [round(t, 2) for t in times[k]]}
                  for c, k in zip(cases_out, runners, strict=True)],
    }
    ms = {k: statistics.median(times[k]) for k in runners}
    summary: dict = {"c/a": round(ms["c"] / ms["a"], 3) if "c" in ms else None}
    if "c" in ms and peaks.get("c") and peaks.get("a"):
        summary["peak c/a"] = round(peaks["c"] / peaks["a"], 3)
    if fast:
        summary.update({
            "c_fast/a_fast": round(ms["c_fast"] / ms["a_fast"], 3),
            "a_fast/a": round(ms["a_fast"] / ms["a"], 3),
            "recompiles_after_warmup": recompiles,
            "compile_s": {k: round(compiled[k[0]].compile_seconds, 1) for k in ("a_fast", "c_fast")},
            "first_loop_s": {k: round(first_ms[k] * steps / 1000, 1) for k in ("a_fast", "c_fast")},
            "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        })
        if "d" in ms:
            summary["a_fast/d"] = round(ms["a_fast"] / ms["d"], 3)
            # Compiling pays for itself once (eager - fast) x steps x images exceeds the compile time.
            saved = (ms["c"] - ms["c_fast"]) / 1000 * steps
            summary["images_to_repay_compile"] = (round(compiled["c"].compile_seconds / saved, 1)
                                                  if saved > 0 else None)
    if profile:
        summary["profile"] = {key: _profile(runners[key], device, steps) for key in runners
                              if key in ("a", "c", "a_fast", "c_fast", "c_fast_all")}
    if batch > 1:
        summary[f"images/s batch {batch} vs 1"] = round(batch * ms["c"] / ms["c_batch"], 3)
    if low_vram:
        if compiled:  # CUDA graph pools would count towards the offloaded case's peak
            compiled.clear()
            compiled_unet.reset()
        summary.update(_low_vram_case(unet, craft, ms["c"], device, steps))
    result["summary"] = summary
    return result


GEMM_NAMES = ("gemm", "cutlass", "xmma", "sm90_", "sm80_", "matmul", "splitk")
ATTENTION_NAMES = ("flash", "fmha", "attention", "attn")


def _profile(runner, device: torch.device, steps: int) -> dict:
    """One more loop of a case under torch.profiler: per step, the GPU kernels launched and their
    summed time by kind, against the loop's wall time (busy share = kernel time / wall time)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    if device.type != "cuda":
        return {}
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wall_ms = runner(100)
    kinds = {"gemm": [0, 0.0], "attention": [0, 0.0], "other": [0, 0.0]}
    for event in prof.events():
        if event.device_type != DeviceType.CUDA:
            continue
        name = event.name.lower()
        kind = ("attention" if any(k in name for k in ATTENTION_NAMES)
                else "gemm" if any(k in name for k in GEMM_NAMES) else "other")
        kinds[kind][0] += 1
        kinds[kind][1] += event.time_range.elapsed_us() / 1000.0
    kernels = sum(v[0] for v in kinds.values())
    gpu_ms = sum(v[1] for v in kinds.values())
    return {"wall_ms_per_step": round(wall_ms, 2), "kernels_per_step": round(kernels / steps, 1),
            "gpu_ms_per_step": round(gpu_ms / steps, 2), "busy_share": round(gpu_ms / steps / wall_ms, 3),
            "by_kind": {k: {"kernels_per_step": round(v[0] / steps, 1), "ms_per_step": round(v[1] / steps, 2)}
                        for k, v in kinds.items()}}


def _low_vram_case(unet, craft, eager_ms: float, device: torch.device, steps: int) -> dict:
    """c with the UNet's weights offloaded to the CPU between images (accelerate's hook, as
    low-VRAM generation does): per-step time including the weights' trip, and peak memory."""
    from craftstudio.engine.low_vram import unet_offload

    if device.type != "cuda":
        return {}
    hook = unet_offload(unet, device)
    times, peak = [], 0
    try:
        for seed in range(3):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            times.append(craft(seed))
            peak = max(peak, torch.cuda.max_memory_allocated())
            hook.offload()
    finally:
        hook.remove()
        unet.to(device)
    ms = statistics.median(times[1:])
    return {"low_vram_ms_per_step": round(ms, 2), "low_vram_time_vs_c": round(ms / eager_ms, 3),
            "low_vram_peak_gib": round(peak / 2**30, 2)}


def _device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def format_table(result: dict) -> str:
    lines = [f"{result['family']} {result['size']}x{result['size']}, {result['steps']} steps, "
             f"{result['dtype']}, rank {result['rank']}, {result['device']}",
             f"{'case':48} {'ms/step':>9} {'vs a':>7} {'peak mem vs a':>14} {'peak GiB':>9}"]
    for c in result["cases"]:
        mem = f"{c['peak_memory_ratio']:.3f}" if c["peak_memory_ratio"] else "n/a"
        gib = f"{c['peak_gib']:.2f}" if c.get("peak_gib") else "n/a"
        lines.append(f"{c['name']:48} {c['ms_per_step']:9.2f} {c['ratio']:7.3f} {mem:>14} {gib:>9}")
    for key, value in result.get("summary", {}).items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def main(args) -> int:
    """Entry point of `python -m craftstudio bench sampler` (arguments parsed by craftstudio/cli/bench.py)."""
    warnings.filterwarnings("ignore", message=".*peft_config.*")  # two adapters on purpose in case b
    results = []
    for family in args.family or ["sd15", "sdxl"]:
        result = run(family, args.size, args.steps, args.repeats, args.device,
                     fast=getattr(args, "fast", False), batch=getattr(args, "batch", 4),
                     low_vram=getattr(args, "low_vram", False), cases=getattr(args, "cases", "abcd"),
                     profile=getattr(args, "profile", False))
        print(format_table(result), flush=True)
        print()
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0
