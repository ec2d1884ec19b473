"""Safetensors files of the library: their headers (read and judged in
`domain/safetensors_header.py`, shared with the engine) and their hashes.

`inspect_file` reads the header and streams the whole file once through two SHA-256 hashes:
the content hash (the library id) and the hash of the tensor bytes alone, which is what
A1111/Forge and kohya's sd-scripts call the "addnet hash" (its first 12 hex digits are the
`Lora hashes` entries of A1111 infotext).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.safetensors_header import (  # noqa: F401 (the library's names for them)
    MAX_HEADER_BYTES,
    SafetensorsHeader,
    TensorInfo,
    UnreadableFile,
    open_regular,
    parse_header,
    read_header,
)
from craftstudio.domain.safetensors_header import header_length as _header_length

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
CHUNK = 1024 * 1024


@dataclass
class FileDigest:
    """Header plus the two hashes of one streamed read of a safetensors file."""

    header: SafetensorsHeader
    sha256: str
    addnet_hash: str  # sha256 of the tensor bytes only (A1111 "Lora hashes", kohya sshs_model_hash)
    size: int
    extra: dict[str, Any] = field(default_factory=dict)


def inspect_file(path: str | Path) -> FileDigest:
    """Header and both hashes in one streamed read (constant memory, any file size)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnreadableFile(f"{path.suffix} files are pickles, which CraftStudio never opens "
                             "(they can run code): convert it to .safetensors")
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
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
    with open_regular(path) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
