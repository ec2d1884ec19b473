"""The benchmark's generation step: every method's images per pair, timed and kept in the work folder.

Each (pair, method) batch is written to `WORK/samples/` as PNG files beside a JSON record, both named
by a hash of the request; the record holds the request, the sha256 of every file it reads (LoRAs,
backbone) and its seconds. With `resume`, a batch whose record matches its request and files is read
back instead of generated again, so a run stopped part-way (say by a time limit) continues where it
stopped, its cost column included. With
`workers` > 1 the pairs are generated side by side, one process each: a ShapesWorld step is a few
small kernels, so one process leaves the GPU and the other cores waiting. A pair's methods, the base
model's included, run one after another in the same process, so each method's cost ratio to the
base compares calls made under the same load. Workers start with `spawn` (CUDA cannot be forked)
and get our own request dataclasses; images come back through the PNG files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

# One batch to make: (pair index, method name, request); results are keyed by (pair index, method name).
Job = tuple[int, str, Any]


def _stem(request) -> str:
    """A batch's file name, from its request alone: runs of other pairs in the same folder never
    meet, and a batch can only be found by the very request that made it."""
    text = json.dumps(request.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _inputs(request) -> dict[str, str]:
    """sha256 of every file the request reads besides the base model."""
    from craftstudio.engine.fingerprint import file_sha256

    paths = [ref.path for ref in (request.content_lora, request.style_lora) if ref is not None]
    paths += [request.backbone] if request.backbone else []
    return {path: file_sha256(path) for path in paths}


def load_batch(folder: Path, request) -> tuple[list, float] | None:
    """The images and seconds of the batch kept in `folder` if it was made from this very request
    and the same files, else None."""
    from PIL import Image

    record = folder / f"{_stem(request)}.json"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("request") != json.loads(json.dumps(request.to_dict())) or data.get("inputs") != _inputs(request):
            return None
        images = []
        for i in range(request.batch_count):
            with Image.open(folder / f"{_stem(request)}-{i:02d}.png") as image:
                images.append(image.convert("RGB"))
        return images, float(data["seconds"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, partial or broken: made again
        return None


def _make_batch(folder: Path, pair: int, name: str, request, cuda: bool) -> float:
    """Generate and time one batch (after an untimed two-step call of the same request, which loads
    the model and LoRA files: no method's cost includes loading or first-shape set-up); write it."""
    import time

    import torch

    from craftstudio.engine.generation import generate

    generate(dataclasses.replace(request, steps=2))
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    images = generate(request).images
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        image.save(folder / f"{_stem(request)}-{i:02d}.png")
    record = {"pair": pair, "method": name, "seconds": seconds, "request": request.to_dict(),
              "inputs": _inputs(request)}
    (folder / f"{_stem(request)}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return seconds


def _make_unit(folder: Path, unit: Sequence[Job], cuda: bool, resume: bool, threads: int,
               say: Callable[[str], None] | None = None, parent: int | None = None) -> int:
    """Make every batch of `unit` that is not kept already; returns how many were made. In a worker
    (`parent` given) it stops before the next batch once the benchmark process is gone."""
    import torch

    from craftstudio.demo.lab.parallel_training import watch_parent
    from craftstudio.domain.cancel import CancelToken

    if threads:
        torch.set_num_threads(threads)
    orphaned = CancelToken()
    if parent is not None:
        threading.Thread(target=watch_parent, args=(orphaned, parent), daemon=True).start()
    made = 0
    for pair, name, request in unit:
        if orphaned.cancelled:
            os._exit(1)  # no one is left to use the pictures
        if resume and load_batch(folder, request) is not None:
            if say:
                say(f"kept {name} of pair {pair} (generated before from the same request)")
            continue
        seconds = _make_batch(folder, pair, name, request, cuda)
        made += 1
        if say:
            say(f"generated {request.batch_count} x pair {pair} [{name}] ({seconds / request.batch_count:.2f} s/image)")
    return made


def generate_all(units: Sequence[Sequence[Job]], folder: Path, *, cuda: bool, resume: bool = False,
                 workers: int = 1, threads: int = 0,
                 say: Callable[[str], None] = print) -> dict[tuple[int, str], tuple[list, float]]:
    """Images and seconds of every job, making those not kept; with `workers` > 1, one unit per
    process, that many at a time (each unit's batches in order). Raises the first failure."""
    if workers <= 1:
        for unit in units:
            _make_unit(folder, unit, cuda, resume, 0, say)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_make_unit, folder, unit, cuda, resume, threads, None, os.getpid()): unit
                       for unit in units}
            for future in as_completed(futures):
                unit, made = futures[future], future.result()
                say(f"generated pair {unit[0][0]}: {made} of {len(unit)} batches made"
                    + (f", {len(unit) - made} kept from before" if made < len(unit) else ""))
    out = {}
    for unit in units:
        for pair, name, request in unit:
            kept = load_batch(folder, request)
            if kept is None:
                raise RuntimeError(f"The images of {name} for pair {pair} were not written to {folder}.")
            out[(pair, name)] = kept
    return out
