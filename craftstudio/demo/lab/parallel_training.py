"""Train several LoRAs at once, one process each, for the quality benchmark.

A ShapesWorld LoRA step is a few small kernels, so one training keeps a GPU (or a core) mostly
idle waiting on Python; separate processes overlap those waits (on one H100, sixteen 1,500-step
LoRAs trained side by side in about 290 s, where one took 170–280 s beside a few others). Every
request carries its own seed, so a LoRA trained in a worker is the same file it would be in the
calling process (tested). Workers start with `spawn` (CUDA cannot be forked) and get requests and
results as our own dataclasses, never user files. A ZipLoRA merge (`ZipLoraRequest`) is a short
training of its own and runs the same way (`merge_ziplora` instead of `train`). A worker whose
benchmark process is killed stops its training at the next step and exits (`watch_parent`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from craftstudio.domain.cancel import Cancelled, CancelToken

Report = dict[str, Any]  # seconds, final_loss, layers


def _run(request, progress=None, cancel=None) -> Report:
    """Train (or, for a ZipLoRA request, merge) in this process; the numbers the benchmark keeps."""
    from craftstudio.domain.merging import ZipLoraRequest

    if isinstance(request, ZipLoraRequest):
        from craftstudio.engine.training.ziplora import merge_ziplora

        merged = merge_ziplora(request, progress=progress, cancel=cancel)
        return {"seconds": merged.seconds, "final_loss": merged.losses[-1]["loss"] if merged.losses else None,
                "layers": merged.layers, "similarity": merged.similarity}
    from craftstudio.engine.training import train

    result = train(request, progress=progress, cancel=cancel)
    return {"seconds": result.seconds, "final_loss": result.final_loss, "layers": result.details.get("layers")}


def watch_parent(cancel: CancelToken, parent: int, *, ppid: Callable[[], int] = os.getppid,
                 pause: Callable[[float], None] = time.sleep, every: float = 1.0) -> None:
    """Cancel `cancel` once this process's parent is no longer `parent` (it was killed and the
    worker re-parented): a stopped benchmark must not leave its workers training for half an
    hour. Returns when it cancels or the token is cancelled otherwise."""
    while not cancel.cancelled:
        if ppid() != parent:
            cancel.cancel()
            return
        pause(every)


def _train_in_worker(request, threads: int, parent: int) -> Report:
    import torch

    torch.set_num_threads(threads)
    cancel = CancelToken()
    threading.Thread(target=watch_parent, args=(cancel, parent), daemon=True).start()
    try:
        return _run(request, cancel=cancel)
    except Cancelled:
        if os.getppid() != parent:
            os._exit(1)  # no one is left to report to, and the pool would keep this process waiting
        raise


# How a file is trained, not what: a compiled step trains the same weights (within float error).
_HOW = ("fast",)


def trained_before(request) -> Report | None:
    """The report of the file already at `request.out` (a LoRA, backbone or ZipLoRA merge) if it
    was made from this very request (its recorded `craft.request`, `fast` aside), else None. A
    LoRA or backbone must state its resolution: the file records the one the trainer resolved,
    not 0 (the model's own). Whether the files a request is made from were themselves kept is the
    caller's check (`train_many`)."""
    from craftstudio.domain.merging import ZipLoraRequest
    from craftstudio.domain.training import BackboneTrainRequest, LoraTrainRequest

    if not isinstance(request, (LoraTrainRequest, BackboneTrainRequest, ZipLoraRequest)):
        return None
    if not request.resolution or not os.path.isfile(request.out):
        return None
    from craftstudio.domain.safetensors_header import UnreadableFile, read_header

    try:  # the header only: no tensors, nothing unpickled
        recorded = json.loads(read_header(request.out).metadata.get("craft.request", "null"))
    except (OSError, ValueError, UnreadableFile):  # unreadable: trained again, not trusted
        return None
    wanted = request.to_dict()
    if not isinstance(recorded, dict) or ({k: v for k, v in recorded.items() if k not in _HOW}
                                          != {k: v for k, v in wanted.items() if k not in _HOW}):
        return None
    return {"seconds": 0.0, "final_loss": None, "layers": None, "reused": True}


def train_many(requests: Mapping[Hashable, Any], *, workers: int = 1, threads: int = 1,
               say: Callable[[str], None] = print,
               progress_for: Callable[[Hashable], Callable | None] = lambda key: None,
               after: Mapping[Hashable, Iterable[Hashable]] | None = None,
               reuse: bool = False) -> dict[Hashable, Report]:
    """Train every request (LoRA, backbone or ZipLoRA merge); with `workers` > 1, that many at a
    time in worker processes (their per-step progress is not reported, only each finished file).
    `after[key]` names the requests whose files `key` needs (a LoRA on the backbone, a merge of
    two LoRAs): it starts once they are done, and the rest run meanwhile. Requests are listed
    after what they need. With `reuse`, a file already made from the same request
    (`trained_before`) is kept instead of trained again, if every file it needs was kept too (a
    LoRA on a backbone trained anew is trained anew). Raises the first failure."""
    needs = {key: set((after or {}).get(key, ())) for key in requests}
    order = list(requests)
    for key, wanted in needs.items():
        early = [w for w in wanted if w not in requests or order.index(w) > order.index(key)]
        if early:
            raise ValueError(f"{key!r} needs {early[0]!r}, which is not listed before it.")
    reports: dict[Hashable, Report] = {}
    for key in order if reuse else ():  # in order, so what a file needs is decided before it
        if needs[key] <= set(reports) and (report := trained_before(requests[key])) is not None:
            reports[key] = report
            say(f"    kept {requests[key].out} (trained before from the same request)")
    if workers <= 1:
        for key, request in requests.items():
            if key not in reports:
                reports[key] = _run(request, progress=progress_for(key))
        return {key: reports[key] for key in requests}
    started = time.perf_counter()
    waiting = [key for key in order if key not in reports]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        running: dict[Future, Hashable] = {}

        def submit_ready() -> None:
            for key in [k for k in waiting if needs[k] <= set(reports)]:
                waiting.remove(key)
                running[pool.submit(_train_in_worker, requests[key], threads, os.getpid())] = key

        submit_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                reports[key] = future.result()
                say(f"    trained {requests[key].out} ({reports[key]['seconds']:.0f} s; {len(reports)}/"
                    f"{len(requests)} done after {time.perf_counter() - started:.0f} s)")
            submit_ready()
    return {key: reports[key] for key in requests}
