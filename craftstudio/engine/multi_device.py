"""One batch on several devices at once: `generate --batch N --devices cuda:0,cuda:1`.

The batch's seeds are split into contiguous shares, one per device (the first devices take one
more when N does not divide): device d generates images start_d … start_d + n_d − 1 as an
ordinary `generate` of seed `seed + start_d` and batch n_d, in its own thread, with its own model
(model_cache.slot), on its own GPU (the thread's current CUDA device). The first share on the
device a plain `generate` uses (the current CUDA device, or the CPU) takes the caller's own slot,
whose thread waits meanwhile: in the app, a split batch after ordinary jobs reuses the model they
left on GPU 0 instead of loading a second copy next to it. Image i is seeded
`seed + i` as on one device, so it is the same picture; batched UNet calls of another size round
differently, so "the same" means within one 8-bit level, as for any batch (tests).

The models (and LoRAs) are loaded first, one device after another, in the calling thread:
loading builds modules on the meta device by patching torch for the whole process, which must
not happen while another thread is sampling. Progress follows the first device, which has the
largest share. A cancel stops every device;
an error on one stops the others and is raised. The result lists the images in seed order and
records the devices in its details.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Sequence

import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import GenerateRequest, GenerateResult
from craftstudio.domain.progress import ProgressCallback
from craftstudio.engine import model_cache
from craftstudio.engine.devices import pick_device, pick_dtype
from craftstudio.engine.generation import generate
from craftstudio.engine.inputs import check_inputs


def parse_devices(text: str | Sequence[str]) -> list[str]:
    """`cuda:0,cuda:1` (or `cpu,cpu`, `mps`) as a checked list."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise RequestError("No devices are given: name them separated by commas, e.g. cuda:0,cuda:1.")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in names:
        kind, _, index = name.partition(":")
        if kind == "cuda":
            if not index.isdigit() and index:
                raise RequestError(f"{name} is not a device: write cuda:0, cuda:1, ...")
            number = int(index or 0)
            if number >= count:
                have = f"GPUs 0 to {count - 1}" if count else "no CUDA GPU"
                raise RequestError(f"There is no {name} here ({have}): choose among the GPUs that nvidia-smi lists.")
        elif kind == "mps" and not index:
            if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
                raise RequestError("Apple MPS is not available here: choose cpu or cuda:N devices.")
        elif kind != "cpu" or index:
            raise RequestError(f"Unknown device {name!r}: use cuda:N, mps or cpu.")
    return names


def present(names: Sequence[str]) -> list[str]:
    """The devices of `names` that this computer has: a remembered `cuda:N` it lacks (a settings
    file carried from another computer) is left out, silently; cpu always stays."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    out = []
    for name in names:
        kind, _, index = name.strip().lower().partition(":")
        if (kind == "cpu" and not index) or (kind == "mps" and not index and mps) or \
                (kind == "cuda" and (index or "0").isdigit() and int(index or 0) < count):
            out.append(f"{kind}:{index}" if index else kind)
    return out


def shares(count: int, devices: int) -> list[tuple[int, int]]:
    """(first image, images) per device, contiguous, sizes differing by at most one."""
    base, extra = divmod(count, devices)
    out, start = [], 0
    for d in range(devices):
        n = base + (1 if d < extra else 0)
        out.append((start, n))
        start += n
    return out


class _Linked(CancelToken):
    """Cancelled when the caller's token is, or when another device failed."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self._outer = outer

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self._outer is not None and self._outer.cancelled)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled by the user")


def generate_on_devices(request: GenerateRequest, devices: str | Sequence[str] | None, *,
                        progress: ProgressCallback | None = None,
                        cancel: CancelToken | None = None) -> GenerateResult:
    """`generate(request)` with its seeds split over `devices`; None or "" = `request.device`."""
    if not devices:
        return generate(request, progress=progress, cancel=cancel)
    names = parse_devices(devices)
    request.validate()
    started = time.perf_counter()
    parts = [(name, start, n) for name, (start, n) in zip(names, shares(request.batch_count, len(names)),
                                                           strict=True) if n]
    check_inputs(request)  # a missing or damaged file is one sentence, before anything loads
    slots = _slots([name for name, _, _ in parts])
    for position, (name, _, _) in enumerate(parts):
        with model_cache.slot(slots[position]), _on(name):
            _load(request, name)
    token = _Linked(cancel)
    results: dict[int, GenerateResult] = {}
    errors: list[BaseException] = []

    def work(position: int, name: str, start: int, n: int) -> None:
        kind = name.partition(":")[0]
        sub = dataclasses.replace(request, seed=request.seed + start, batch_count=n, device=kind)
        try:
            with model_cache.slot(slots[position]), _on(name):
                results[position] = generate(sub, progress=progress if position == 0 else None, cancel=token)
        except BaseException as exc:  # noqa: BLE001 (raised again below, in the caller's thread)
            errors.append(exc)
            token.cancel()  # the other devices stop too

    threads = [threading.Thread(target=work, args=(i, *part), name=f"craftstudio-{part[0]}", daemon=True)
               for i, part in enumerate(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        # The device that failed first explains the others' Cancelled.
        raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
    ordered = [results[i] for i in range(len(parts))]
    first = ordered[0]
    # The first device's recorded request (with what generate fills in, e.g. a picture's hash), for
    # the whole batch.
    recorded = dataclasses.replace(first.request, seed=request.seed, batch_count=request.batch_count,
                                   device=request.device)
    return GenerateResult(
        request=recorded, images=[image for r in ordered for image in r.images],
        seeds=[seed for r in ordered for seed in r.seeds], family=first.family, model_name=first.model_name,
        device=",".join(name for name, _, _ in parts), seconds=time.perf_counter() - started,
        details={**first.details, "devices": [{"device": name, "seeds": r.seeds}
                                              for (name, _, _), r in zip(parts, ordered, strict=True)]})


def _slots(names: list[str]) -> list[str]:
    """Each share's model slot: its own, except the first share on the caller's device, which uses
    the caller's slot (the caller's thread only waits while the shares run)."""
    here = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    mine = next((i for i, name in enumerate(names) if name in (here, here.partition(":")[0])), None)
    return [model_cache.current_slot() if i == mine else f"{name}#{i}" for i, name in enumerate(names)]


def _load(request: GenerateRequest, name: str) -> None:
    """What `generate` will take from the cache on this device: the model and its LoRAs."""
    device = pick_device(name.partition(":")[0])
    # The same choice as generate's (a model loaded again there would load while others sample).
    switches = getattr(request, "effective_switches", request.switches)
    backbone = request.backbone if switches.backbone else None
    model = model_cache.get_model(request.model, device, pick_dtype(device), backbone,
                                  low_vram=bool(getattr(request, "low_vram", False)))
    for ref in (request.content_lora, request.style_lora):
        if ref is not None:
            model_cache.get_lora(ref.path, model)


def _on(name: str):
    """This thread's current CUDA device for `cuda:N` (the engine then puts everything there)."""
    kind, _, index = name.partition(":")
    if kind == "cuda":
        return torch.cuda.device(int(index or 0))
    return contextlib.nullcontext()
