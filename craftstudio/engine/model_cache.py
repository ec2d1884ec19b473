"""Keeps the last loaded base model (with its backbone applied) and recently read LoRAs, so
consecutive generations skip loading. A backbone is baked into the cached model's weights, so a
different backbone (or none) means a different cache entry, loaded fresh from disk.

A batch split over several devices (multi_device.py) runs one generation per device at once,
each in its own thread and `slot`: every slot keeps its own last model (so two devices, or two
CPU workers, never share one model's hooks). Models load one at a time even so: diffusers and
transformers build modules on the meta device by patching torch globally, which two threads
loading at once break. Outside a `slot` everything uses the one default slot, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch

from craftstudio.engine.loader import LoadedModel, load_model

_lock = threading.Lock()  # guards the dictionaries
_loading = threading.Lock()  # one model load at a time, whichever slot
_models: dict[str, dict[tuple, LoadedModel]] = {}  # slot → its last model
_loras: OrderedDict[tuple, object] = OrderedDict()
_LORA_SLOTS = 4
_slot: ContextVar[str] = ContextVar("model_slot", default="")


@contextmanager
def slot(name: str) -> Iterator[None]:
    """Use (and keep) a model of slot `name` in this thread while the block runs."""
    token = _slot.set(name)
    try:
        yield
    finally:
        _slot.reset(token)


def current_slot() -> str:
    """This thread's slot ("" = the default one)."""
    return _slot.get()


def _stamp(path: Path) -> tuple[str, int | None]:
    resolved = path.expanduser().resolve()
    try:
        return str(resolved), resolved.stat().st_mtime_ns
    except OSError:
        return str(resolved), None


def get_model(path: str | Path, device: torch.device, dtype: torch.dtype,
              backbone: str | Path | None = None, *, low_vram: bool = False) -> LoadedModel:
    """The model at `path` on `device` with `backbone` applied, loaded once. With `low_vram` the
    weights stay on the CPU and each component moves to `device` only while it runs."""
    key = (_stamp(Path(path)), _stamp(Path(backbone)) if backbone else None, str(device), str(dtype),
           low_vram)
    with _lock:
        cached = _models.setdefault(_slot.get(), {})
    with _loading:
        if key in cached:
            return cached[key]
        with _lock:
            cached.clear()  # free the slot's old model before loading the next one
            _loras.clear()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if low_vram:
            from craftstudio.engine.low_vram import offload

            model = load_model(path, torch.device("cpu"), dtype)
            if backbone:
                _apply_backbone(model, Path(backbone))
            offload(model, device)
        else:
            model = load_model(path, device, dtype)
            if backbone:
                _apply_backbone(model, Path(backbone))
        with _lock:
            cached[key] = model
        return model


def _apply_backbone(model: LoadedModel, path: Path) -> None:
    from craftstudio.engine.backbone import apply_backbone, check_fits, load_backbone
    from craftstudio.engine.fingerprint import model_fingerprint

    backbone = load_backbone(path)
    check_fits(backbone, fingerprint=model_fingerprint(model.path), family=model.family, model_name=model.name)
    apply_backbone(model.unet, backbone.bases)
    model.backbone = backbone


def get_lora(path: str | Path, model: LoadedModel):
    """LoRA deltas of `path` for `model` (the few most recent are kept)."""
    from craftstudio.engine.lora_adapters import load_lora

    key = (_stamp(Path(path)), id(model))
    with _lock:
        if key in _loras:
            _loras.move_to_end(key)
            return _loras[key]
    with _loading:  # peft builds the adapter on the meta device too
        lora = load_lora(path, model)
    for delta in lora.deltas.values():  # an offloaded UNet loads it on the CPU; it runs next to the UNet
        delta.down.to(model.device)
        delta.up.to(model.device)
    with _lock:
        _loras[key] = lora
        while len(_loras) > _LORA_SLOTS:
            _loras.popitem(last=False)
    return lora


def clear() -> None:
    with _lock:
        _models.clear()
        _loras.clear()
