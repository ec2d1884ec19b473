"""Safetensors headers, read by hand: no tensor is loaded, nothing is unpickled, no torch.

A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON
(`{"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {str: str}}`), then the tensor
bytes. Every way a file can be broken (empty, truncated, absurd header length, not JSON, offsets
past the end) raises `UnreadableFile` with a short reason, never anything else.

`inspect_file` reads the header and streams the whole file once through two SHA-256 hashes:
the content hash (the library id) and the hash of the tensor bytes alone, which is what
A1111/Forge and kohya's sd-scripts call the "addnet hash" (its first 12 hex digits are the
`Lora hashes` entries of A1111 infotext).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The safetensors library refuses headers over 100 MB; real LoRA headers are a few hundred KB.
MAX_HEADER_BYTES = 100 * 1024 * 1024
CHUNK = 1024 * 1024
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")


class UnreadableFile(Exception):
    """The file is not a readable safetensors file; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    header_bytes: int  # length of the JSON part
    file_size: int

    @property
    def data_offset(self) -> int:
        return 8 + self.header_bytes


@dataclass
class FileDigest:
    """Header plus the two hashes of one streamed read of a safetensors file."""

    header: SafetensorsHeader
    sha256: str
    addnet_hash: str  # sha256 of the tensor bytes only (A1111 "Lora hashes", kohya sshs_model_hash)
    size: int
    extra: dict[str, Any] = field(default_factory=dict)


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def _header_length(first8: bytes, size: int) -> int:
    if size == 0:
        raise UnreadableFile("the file is empty")
    if len(first8) < 8:
        raise UnreadableFile(f"the file is too short ({size} bytes) to be a safetensors file")
    (n,) = struct.unpack("<Q", first8)
    if n > MAX_HEADER_BYTES:
        raise UnreadableFile(f"the header claims {_human(n)}, more than any safetensors file has: "
                             "not a safetensors file or damaged")
    if n < 2:
        raise UnreadableFile("the header is empty: not a safetensors file")
    if 8 + n > size:
        raise UnreadableFile(f"the file is truncated or not a safetensors file (header of {_human(n)} "
                             f"in a file of {_human(size)})")
    return n


def parse_header(raw: bytes, size: int) -> SafetensorsHeader:
    """Validate the JSON header `raw` of a file of `size` bytes."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UnreadableFile("the header is not JSON: not a safetensors file or damaged") from None
    if not isinstance(data, dict):
        raise UnreadableFile("the header is not a JSON object: not a safetensors file")
    metadata_raw = data.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict):
        raise UnreadableFile("the __metadata__ entry is not an object")
    # The format says str -> str; some writers store numbers or objects. Keep them as JSON text.
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata_raw.items()}
    payload = size - 8 - len(raw)
    tensors: dict[str, TensorInfo] = {}
    end_max = 0
    for name, entry in data.items():
        try:
            dtype = entry["dtype"]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(x) for x in entry["data_offsets"])
        except (TypeError, KeyError, ValueError):
            raise UnreadableFile(f"the header entry for {name!r} is malformed") from None
        if not isinstance(dtype, str) or begin < 0 or end < begin or any(d < 0 for d in shape):
            raise UnreadableFile(f"the header entry for {name!r} is malformed")
        tensors[name] = TensorInfo(dtype, shape)
        end_max = max(end_max, end)
    if end_max > payload:
        raise UnreadableFile(f"the file is truncated: its tensors need {_human(end_max)} of data "
                             f"but only {_human(max(payload, 0))} are there")
    return SafetensorsHeader(tensors, metadata, len(raw), size)


def read_header(path: str | Path) -> SafetensorsHeader:
    """Only the header. Raises `UnreadableFile`, `FileNotFoundError` (vanished) or `PermissionError`."""
    with open(path, "rb") as fh:
        size = _fstat_size(fh)
        n = _header_length(fh.read(8), size)
        return parse_header(fh.read(n), size)


def _fstat_size(fh: Any) -> int:
    return os.fstat(fh.fileno()).st_size


def inspect_file(path: str | Path) -> FileDigest:
    """Header and both hashes in one streamed read (constant memory, any file size)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnreadableFile(f"{path.suffix} files are pickles, which CraftStudio never opens "
                             "(they can run code): convert it to .safetensors")
    with open(path, "rb") as fh:
        size = _fstat_size(fh)
        first8 = fh.read(8)
        n = _header_length(first8, size)
        raw = fh.read(n)
        header = parse_header(raw, size)
        full = hashlib.sha256(first8)
        full.update(raw)
        payload = hashlib.sha256()
        read = 8 + n
        while chunk := fh.read(CHUNK):
            full.update(chunk)
            payload.update(chunk)
            read += len(chunk)
        if read != size:  # changed while we read it
            raise UnreadableFile("the file changed while it was being read; scan again")
    return FileDigest(header, full.hexdigest(), payload.hexdigest(), size)


def sha256_file(path: str | Path) -> str:
    """Streamed SHA-256 of any file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
