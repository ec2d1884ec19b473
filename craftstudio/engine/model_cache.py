"""Keeps the last loaded base model, so consecutive generations skip loading."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from craftstudio.engine.loader import LoadedModel, load_model

_lock = threading.Lock()
_slot: dict[tuple, LoadedModel] = {}


def _key(path: Path, device: torch.device, dtype: torch.dtype) -> tuple:
    resolved = path.expanduser().resolve()
    try:
        stamp = resolved.stat().st_mtime_ns
    except OSError:
        stamp = None
    return (str(resolved), stamp, str(device), str(dtype))


def get_model(path: str | Path, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """The model at `path` on `device`, loaded once; a different model replaces the cached one."""
    key = _key(Path(path), device, dtype)
    with _lock:
        if key in _slot:
            return _slot[key]
        _slot.clear()  # free the old model before loading the next one
        model = load_model(path, device, dtype)
        _slot[key] = model
        return model


def clear() -> None:
    with _lock:
        _slot.clear()
