"""Hashes that tie files to the models they were made for.

`file_sha256` is the full content hash (the library's LoRA ids). `model_fingerprint` identifies a
base model cheaply: sha256 of its UNet weights' safetensors header plus 1 MiB of tensor data from
the middle of the file — enough to tell models apart, without reading gigabytes on every load.
"""

from __future__ import annotations

import hashlib
import struct
from functools import lru_cache
from pathlib import Path

_SAMPLE = 1 << 20


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _unet_weights(model_path: Path) -> Path:
    if model_path.is_file():
        return model_path
    files = sorted((model_path / "unet").glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no UNet weights in {model_path}")
    return files[0]


def model_fingerprint(model_path: str | Path) -> str:
    path = _unet_weights(Path(model_path))
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        raw = fh.read(8)
        (length,) = struct.unpack("<Q", raw)
        digest.update(fh.read(length))
        size = path.stat().st_size
        fh.seek(max(8 + length, size // 2 - _SAMPLE // 2))
        digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()[:16]
