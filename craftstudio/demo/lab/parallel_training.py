"""Train several LoRAs at once, one process each, for the quality benchmark.

A ShapesWorld LoRA step is a few small kernels, so one training keeps a GPU (or a core) mostly
idle waiting on Python; separate processes overlap those waits (on one H100, sixteen 1,500-step
LoRAs trained side by side in about 290 s, where one took 170–280 s beside a few others). Every
request carries its own seed, so a LoRA trained in a worker is the same file it would be in the
calling process (tested). Workers start with `spawn` (CUDA cannot be forked) and get requests and
results as our own dataclasses, never user files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

Report = dict[str, Any]  # seconds, final_loss, layers


def _summary(result) -> Report:
    return {"seconds": result.seconds, "final_loss": result.final_loss, "layers": result.details.get("layers")}


def _train_in_worker(request, threads: int) -> Report:
    import torch

    from craftstudio.engine.training import train

    torch.set_num_threads(threads)
    return _summary(train(request))


def train_many(requests: Mapping[Hashable, Any], *, workers: int = 1, threads: int = 1,
               say: Callable[[str], None] = print,
               progress_for: Callable[[Hashable], Callable | None] = lambda key: None) -> dict[Hashable, Report]:
    """Train every request; with `workers` > 1, that many at a time in worker processes (their
    per-step progress is not reported, only each finished file). Raises the first failure."""
    from craftstudio.engine.training import train

    if workers <= 1:
        return {key: _summary(train(request, progress=progress_for(key))) for key, request in requests.items()}
    started = time.perf_counter()
    reports: dict[Hashable, Report] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_train_in_worker, request, threads): key for key, request in requests.items()}
        for future in as_completed(futures):
            key = futures[future]
            reports[key] = future.result()
            say(f"    trained {requests[key].out} ({reports[key]['seconds']:.0f} s; {len(reports)}/{len(requests)} "
                f"done after {time.perf_counter() - started:.0f} s)")
    return {key: reports[key] for key in requests}
