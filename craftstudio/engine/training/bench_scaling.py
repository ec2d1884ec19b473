"""`craftstudio bench train --num-processes N`: how a training step scales over N GPUs.

For SD1.5 at 512² and SDXL at 1024² (UNets with random weights from the standard configs, as in
bench_train.py), at one global batch (default 8), it times (b) the routed content-LoRA step
and (c) the Rank-FT step, first on one process (the baseline) and then on N processes, each
process taking batch/N rows under DDP (replicas.py): the trainers' own step objects, with the
gradient all-reduce inside the step. Both runs are launched fresh through the same launcher
(launcher.py), so they start from the same state.

Reported, per model and step: ms per step (the median over the measured steps of the slowest
process), samples per second (global batch / step time) and its ratio to the baseline (the
target on 2 GPUs is ≥ 1.8×), and the peak memory of each GPU (torch.cuda.max_memory_allocated,
weights included) with its ratio to the baseline's one GPU.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

import torch

from craftstudio.domain.progress import ProgressCallback, ProgressEvent
from craftstudio.engine.devices import pick_device
from craftstudio.engine.routing import CONTENT
from craftstudio.engine.training.backbone_training import RankFtStep
from craftstudio.engine.training.backbone_training import make_optimizer as rank_ft_optimizer
from craftstudio.engine.training.bench_train import (
    FAMILIES,
    NOISE_CONFIG,
    build_unet,
    device_name,
    random_inputs,
    unet_config,
)
from craftstudio.engine.training.compiled_step import step_module
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    draw_batch,
    make_noise_scheduler,
    step_generator,
)
from craftstudio.engine.training.lora_training import LoraStep, add_lora, make_optimizer, role_modules
from craftstudio.engine.training.losses import make_denoising_loss
from craftstudio.engine.training.precision import resolve_precision
from craftstudio.engine.training.rank_ft import Projection, ProjectionBases, layer_specs
from craftstudio.engine.training.replicas import Replicas

TARGET = 1.8  # samples/s on 2 GPUs against 1
STEPS = {"b": "(b) routed content LoRA", "c": "(c) Rank-FT backbone step"}


def run(families: list[str], *, processes: int, batch: int = 8, size: int | None = None, steps: int = 10,
        warmup: int = 3, rank: int = 64, preset: str | None = None, device: str = "auto",
        precision: str = "auto", checkpointing: bool = True, gpus: tuple[int, ...] = (),
        fast: bool = False, which: str = "bc", sync: bool = True, baseline: bool = True,
        one_bucket: bool = False, say=print) -> dict[str, Any]:
    """Launch the baseline (1 process) and the N-process measurement; the report of both. One of
    them alone (`processes` 1, or `baseline` False) when a long benchmark is split over commands
    (an SDXL compile takes minutes per half): its rows then carry no speed-up."""
    from craftstudio.domain.errors import RequestError
    from craftstudio.engine.training.launcher import run_launched, uses_cpu

    if processes < 1 or batch % processes:
        raise RequestError(f"The scaling benchmark needs 1 or more processes that split the batch {batch} "
                           f"evenly, not {processes}.")
    cpu = uses_cpu(device, processes, gpus)
    preset = preset or ("small" if cpu else "full")
    options = {"families": families, "batch": batch, "size": size, "steps": steps, "warmup": warmup, "rank": rank,
               "preset": preset, "device": "cpu" if cpu else device, "precision": precision,
               "checkpointing": checkpointing, "fast": fast, "which": which, "sync": sync, "one_bucket": one_bucket}

    def relay(event) -> None:
        if isinstance(event, ProgressEvent) and event.message:
            say(event.message)

    runs = {}
    counts = (1, processes) if baseline and processes > 1 else (processes,)
    for count in counts:
        say(f"launching {count} process{'es' if count > 1 else ''}"
            f"{'' if sync or count == 1 else ' (no gradient all-reduce: a diagnosis, not training)'}")
        runs[count] = run_launched({"kind": "bench-train", "options": options}, processes=count,
                                   gpus=gpus[:count], cpu=cpu, progress=relay)
        for row in runs[count]["rows"]:  # as it comes, so a later failure keeps what was measured
            say(f"  {row['family']} {row['label']}: {row['ms_per_step']:.1f} ms/step, peak {row['peak_mib']} MiB "
                f"on {', '.join(row['devices'])}")
    compared = len(counts) == 2
    return {"device": runs[processes]["device"], "torch": torch.__version__, "processes": processes,
            "batch": batch, "rank": rank, "preset": preset, "precision": runs[processes]["precision"],
            "gradient_checkpointing": checkpointing, "fast": fast, "one_bucket": one_bucket, "steps": steps,
            "warmup": warmup,
            "rows": _rows(runs[1]["rows"], runs[processes]["rows"]) if compared else runs[processes]["rows"],
            "compared": compared, "target": TARGET}


def _rows(base: list[dict[str, Any]], scaled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for one, many in zip(base, scaled, strict=True):
        out.append({**many, "base_ms": one["ms_per_step"], "base_peak_mib": one["peak_mib"],
                    "speedup": one["ms_per_step"] / many["ms_per_step"],
                    "memory_ratio": ([p / one["peak_mib"][0] for p in many["peak_mib"]]
                                     if one["peak_mib"][0] and all(many["peak_mib"]) else None)})
    return out


# ---------- inside each launched process


def measure_here(options: dict[str, Any], progress: ProgressCallback | None = None) -> dict[str, Any]:
    """This process's part of the benchmark; the main process's return holds every process's numbers."""
    replicas = Replicas.current(pick_device(options["device"]))
    rows = []
    for family in options["families"]:
        rows += _family(family, options, replicas, progress)
    return {"device": device_name(replicas.device), "processes": replicas.world,
            "precision": resolve_precision(options["precision"], replicas.device).label, "rows": rows}


def _family(family: str, options: dict[str, Any], replicas: Replicas,
            progress: ProgressCallback | None) -> list[dict[str, Any]]:
    device = replicas.device
    precision = resolve_precision(options["precision"], device)
    size = options["size"] or FAMILIES[family][2]
    config = unet_config(family, options["preset"])
    unet = build_unet(config, device, precision.load_dtype)  # seeded: the same weights in every process
    unet.requires_grad_(False)
    if options["checkpointing"]:
        unet.enable_gradient_checkpointing()
    unet.train()
    cache, text = random_inputs(config, family, size, device)
    scheduler = make_noise_scheduler(NOISE_CONFIG)
    loss = make_denoising_loss("mse", scheduler)
    batch, rank = options["batch"], options["rank"]
    rows_of_mine = replicas.rows(batch)

    def noisy(i: int):
        return draw_batch(cache, [0] * batch, step_generator(0, i), 1000, device, rows_of_mine)

    rows = []
    for key in options.get("which", "bc"):
        if progress is not None:
            progress(ProgressEvent("bench", 0, 1, message=f"{family} {STEPS[key]} on {replicas.world} "
                                                         f"process{'es' if replicas.world > 1 else ''}"))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if key == "b":
            params = add_lora(unet, role_modules(unet, FAMILIES[family][1], CONTENT, None), rank, rank, seed=0)
            module = (replicas.wrap(unet, one_bucket=options.get("one_bucket", False))
                      if options.get("sync", True) else unet)
            setup = DenoisingSetup(step_module(module, options.get("fast", False), device), scheduler, precision, loss)
            step = LoraStep(setup, make_optimizer(list(params.values()), 1e-4, adam_8bit=False))
            ms, peak, where = _measure(lambda i, run=step: run(noisy(i), text), replicas, options)
            del setup, step, params
            unet.unload_lora()
        else:
            specs = layer_specs(unet, rank, rank)
            bases = ProjectionBases(specs, 0, device)
            # Compiled: Q reaches the graph through fixed copies (rank_ft.Projection, staged).
            projection = Projection(unet, [s.name for s in specs], staged=options.get("fast", False))
            step = RankFtStep(DenoisingSetup(step_module(unet, options.get("fast", False), device), scheduler,
                                             precision, loss), bases, projection,
                              rank_ft_optimizer(bases.parameters(), 1e-3), 1.0, 0.0,
                              replicas.wrap(bases) if replicas.world > 1 else None)
            with projection.installed():
                ms, peak, where = _measure(lambda i, run=step: run(CONTENT, noisy(i), text), replicas, options)
            del step, bases
        rows.append({"family": family, "size": size, "step": key, "label": STEPS[key], "ms_per_step": ms,
                     "samples_per_s": batch / (ms / 1000.0), "peak_mib": peak, "devices": where})
    del unet
    return rows


def _measure(step, replicas: Replicas, options: dict[str, Any]) -> tuple[float, list[float | None]]:
    """The slowest process's median step time and every process's peak memory."""
    from accelerate.utils import gather_object

    device = replicas.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(options["warmup"] + options["steps"]):
        _sync(device)
        began = time.perf_counter()
        step(i)
        _sync(device)
        if i >= options["warmup"]:
            times.append((time.perf_counter() - began) * 1000.0)
    mine = (statistics.median(times), torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            str(device))
    every = gather_object([mine]) if replicas.world > 1 else [mine]
    return max(ms for ms, _, _ in every), [peak for _, peak, _ in every], [where for _, _, where in every]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def format_table(report: dict[str, Any]) -> str:
    n = report["processes"]
    lines = [f"card: {report['device']} | torch {report['torch']} | {report['precision']} | global batch "
             f"{report['batch']} | rank {report['rank']} | gradient checkpointing "
             f"{'on' if report['gradient_checkpointing'] else 'off'} | "
             f"{'compiled (--fast)' if report.get('fast') else 'eager'}"
             f"{' | one DDP bucket (routed LoRA)' if report.get('one_bucket') else ''} | median of {report['steps']} "
             "steps", ""]
    if not report.get("compared", True):  # one half alone: no baseline to compare with
        lines += ["| model | step | processes | ms/step | samples/s | peak memory per GPU |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in report["rows"]:
            lines.append(f"| {_model_name(r, report)} | {r['label']} | {n} | {r['ms_per_step']:.1f} | "
                         f"{r['samples_per_s']:.2f} | {', '.join(_gib(p) for p in r['peak_mib'])} |")
        return "\n".join(lines)
    lines += [f"| model | step | ms/step, 1 process | ms/step, {n} | samples/s, 1 | samples/s, {n} | "
              f"speed-up | peak memory per GPU, 1 | peak per GPU, {n} (vs 1) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        base_peak = _gib(r["base_peak_mib"][0])
        ratios = r["memory_ratio"] or [None] * len(r["peak_mib"])
        peaks = ", ".join(f"{_gib(p)}" + (f" ({q:.2f}×)" if q is not None else "")
                          for p, q in zip(r["peak_mib"], ratios, strict=True))
        lines.append(f"| {_model_name(r, report)} | {r['label']} | {r['base_ms']:.1f} | {r['ms_per_step']:.1f} | "
                     f"{report['batch'] / (r['base_ms'] / 1000):.2f} | {r['samples_per_s']:.2f} | "
                     f"{r['speedup']:.2f}× | {base_peak} | {peaks} |")
    lines.append("")
    if n == 2:
        met = all(r["speedup"] >= report["target"] for r in report["rows"])
        lines.append(f"target: ≥ {report['target']}× the samples/s on 2 processes: {'met' if met else 'NOT met'} "
                     f"(lowest {min(r['speedup'] for r in report['rows']):.2f}×)")
    return "\n".join(lines)


def _model_name(row: dict[str, Any], report: dict[str, Any]) -> str:
    name = {"sd15": "SD1.5 UNet", "sdxl": "SDXL UNet"}[row["family"]]
    return f"{name}{' (small)' if report['preset'] == 'small' else ''} {row['size']}²"


def _gib(mib: float | None) -> str:
    return f"{mib / 1024:.2f} GiB" if mib is not None else "n/a"
