"""Safetensors headers read by hand: every broken file becomes a reason, never a crash."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from craftstudio.library.header import MAX_HEADER_BYTES, UnreadableFile, inspect_file, read_header
from craftstudio.library.synthetic import write_safetensors


def _raw(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def test_reads_tensors_and_metadata(tmp_path):
    path = write_safetensors(tmp_path / "a.safetensors", {"x.lora_down.weight": (4, 320), "x.alpha": ()},
                             {"ss_network_dim": "4"})
    header = read_header(path)
    assert header.tensors["x.lora_down.weight"].shape == (4, 320)
    assert header.tensors["x.alpha"].shape == ()
    assert header.metadata == {"ss_network_dim": "4"}


def test_hashes_are_the_file_and_the_tensor_bytes(tmp_path):
    path = write_safetensors(tmp_path / "a.safetensors", {"w": (8, 8)}, {"k": "v"})
    path.write_bytes(path.read_bytes()[:-4] + b"\x01\x02\x03\x04")  # non-zero data
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    digest = inspect_file(path)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.addnet_hash == hashlib.sha256(data[8 + n:]).hexdigest()
    assert digest.size == len(data)


def test_non_string_metadata_is_kept_as_json(tmp_path):
    path = _raw(tmp_path / "a.safetensors", json.dumps({"__metadata__": {"n": 3, "s": "x"}}).encode())
    assert read_header(path).metadata == {"n": "3", "s": "x"}


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty"),
    (b"abc", "too short"),
    (struct.pack("<Q", 2**40) + b"{}", "claims 1.0 TB"),
    (struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}", "claims"),
    (struct.pack("<Q", 1000) + b"{}", "truncated"),
    (struct.pack("<Q", 5) + b"hello", "not JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (struct.pack("<Q", 0), "header is empty"),
    (b"PK\x03\x04" + bytes(60), "not a safetensors file"),  # a zip (torch .pt) renamed .safetensors
], ids=["empty", "short", "terabyte-header", "over-limit", "truncated-header", "not-json", "not-object",
        "zero-header", "zip"])
def test_broken_files_are_unreadable_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as info:
        inspect_file(path)
    assert reason in info.value.reason


def test_truncated_tensor_data(tmp_path):
    path = write_safetensors(tmp_path / "a.safetensors", {"w": (64, 64)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UnreadableFile, match="truncated"):
        inspect_file(path)


@pytest.mark.parametrize("entry", [{"dtype": "F16"}, {"dtype": "F16", "shape": [2], "data_offsets": [4, 0]},
                                   {"dtype": "F16", "shape": "x", "data_offsets": [0, 4]}, "nope"])
def test_malformed_entries(tmp_path, entry):
    path = _raw(tmp_path / "a.safetensors", json.dumps({"w": entry}).encode(), bytes(8))
    with pytest.raises(UnreadableFile, match="malformed"):
        read_header(path)


def test_pickles_are_never_opened(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"\x80\x04 any pickle")
    with pytest.raises(UnreadableFile, match="pickle"):
        inspect_file(path)
