"""Safetensors headers, read by hand: no tensor is loaded, nothing is unpickled, standard library only.

A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON
(`{"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {str: str}}`), then the tensor
bytes. Every way a file can be broken (empty, truncated, absurd header length, not JSON, offsets
past the end or not two numbers, an unknown dtype, a shape that disagrees with its offsets,
`__metadata__` that is not an object) raises `UnreadableFile` with a short reason, never anything
else. The library (scan, import) and the engine (loading a model, LoRA or backbone) both read
headers here, so a file is judged the same way everywhere. Special files (a FIFO, a device) are
refused without blocking on them.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# The safetensors library refuses headers over 100 MB; real LoRA headers are a few hundred KB.
MAX_HEADER_BYTES = 100 * 1024 * 1024
CHUNK = 1024 * 1024
# Bits per element of every dtype the safetensors format defines.
DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
              "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64,
              "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


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


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def header_length(first8: bytes, size: int) -> int:
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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UnreadableFile("the header is not JSON: not a safetensors file or damaged") from None
    if not isinstance(data, dict):
        raise UnreadableFile("the header is not a JSON object: not a safetensors file")
    metadata_raw = data.pop("__metadata__", None)
    metadata_raw = {} if metadata_raw is None else metadata_raw
    if not isinstance(metadata_raw, dict):
        raise UnreadableFile("the __metadata__ entry is not an object")
    # The format says str -> str; some writers store numbers or objects. Keep them as JSON text.
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata_raw.items()}
    payload = size - 8 - len(raw)
    tensors: dict[str, TensorInfo] = {}
    end_max = 0
    for name, entry in data.items():
        # Plain type checks, not helper calls per number: a scan parses thousands of headers.
        try:
            dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (TypeError, KeyError):
            raise UnreadableFile(f"the header entry for {_short(name)} is malformed") from None
        if (type(shape) is not list or type(offsets) is not list or len(offsets) != 2
                or not all(type(d) is int and d >= 0 for d in shape)
                or type(offsets[0]) is not int or type(offsets[1]) is not int):
            raise UnreadableFile(f"the header entry for {_short(name)} is malformed")
        begin, end = offsets
        if type(dtype) is not str or begin < 0 or end < begin:
            raise UnreadableFile(f"the header entry for {_short(name)} is malformed")
        bits = DTYPE_BITS.get(dtype)
        if bits is None:
            raise UnreadableFile(f"the tensor {_short(name)} has the unknown dtype {_short(dtype)}")
        shape = tuple(shape)
        if end - begin != math.ceil(math.prod(shape) * bits / 8):
            raise UnreadableFile(f"the tensor {_short(name)} has shape {list(shape)} of {dtype}, which "
                                 f"disagrees with its {end - begin} bytes: the file is damaged")
        tensors[name] = TensorInfo(dtype, shape)
        end_max = max(end_max, end)
    if end_max > payload:
        raise UnreadableFile(f"the file is truncated: its tensors need {_human(end_max)} of data "
                             f"but only {_human(max(payload, 0))} are there")
    return SafetensorsHeader(tensors, metadata, len(raw), size)


def _whole(value: Any) -> int:
    """A JSON whole number (not text, not a bool, not 2.5)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def open_regular(path: str | Path) -> BinaryIO:
    """Open a file for reading, refusing (`UnreadableFile`) anything but a regular file without
    blocking: opening a FIFO for reading would wait for a writer for ever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        raise UnreadableFile(f"it is {what}, not a regular file")
    return os.fdopen(fd, "rb")


def read_header(path: str | Path) -> SafetensorsHeader:
    """Only the header. Raises `UnreadableFile`, `FileNotFoundError` (vanished) or another `OSError`."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        n = header_length(fh.read(8), size)
        return parse_header(fh.read(n), size)


