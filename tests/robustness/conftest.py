"""Bad inputs, generated (no binary fixtures): broken safetensors headers, special files, hostile
PNGs, damaged checkpoints; and the assertions every refused case shares."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from craftstudio.cli import main
from craftstudio.library.catalog import Catalog
from craftstudio.library.synthetic import LAYOUTS, write_safetensors

# ---------- safetensors files


def raw_safetensors(path: Path, header: bytes | dict | list, payload: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
    return path


def _entry(**fields) -> dict:
    return {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], **fields}}


# name → (header, payload): every way a safetensors header can be broken.
BAD_HEADERS: dict[str, tuple[bytes | dict | list, bytes]] = {
    "offsets-text": (_entry(data_offsets="xy"), bytes(8)),
    "offsets-one": (_entry(data_offsets=[8]), bytes(8)),
    "offsets-three": (_entry(data_offsets=[0, 4, 8]), bytes(8)),
    "offsets-float": (_entry(data_offsets=[0, 8.5]), bytes(9)),
    "offsets-bool": (_entry(data_offsets=[False, True]), bytes(8)),
    "offsets-negative": (_entry(data_offsets=[-8, 0]), bytes(8)),
    "offsets-backwards": (_entry(data_offsets=[8, 0]), bytes(8)),
    "offsets-past-end": (_entry(data_offsets=[0, 8000]), bytes(8)),
    "unknown-dtype": (_entry(dtype="Q7"), bytes(8)),
    "dtype-number": (_entry(dtype=32), bytes(8)),
    "shape-disagrees": (_entry(shape=[3, 3]), bytes(8)),
    "shape-text": (_entry(shape="2"), bytes(8)),
    "shape-negative": (_entry(shape=[-2]), bytes(8)),
    "metadata-list": ({"__metadata__": ["a"], **_entry()}, bytes(8)),
    "metadata-text": ({"__metadata__": "a", **_entry()}, bytes(8)),
    "entry-text": ({"w": "nope"}, b""),
    "header-list": ([1, 2], b""),
    "header-not-json": (b"hello world", b""),
    "header-not-utf8": (b'{"\xff": 1}', b""),
    "header-deep": (b"[" * 100_000 + b"]" * 100_000, b""),
}


def bad_safetensors(folder: Path, kind: str, stem: str = "bad") -> Path:
    """A broken `.safetensors` file of `kind` (a key of BAD_HEADERS, or one of the framing faults)."""
    path = folder / f"{stem}-{kind}.safetensors"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "short":
        path.write_bytes(b"abc")
    elif kind == "huge-length":
        path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    else:
        header, payload = BAD_HEADERS[kind]
        raw_safetensors(path, header, payload)
    return path


BAD_FILE_KINDS = ["empty", "short", "huge-length", *BAD_HEADERS]


def special_path(folder: Path, kind: str, name: str = "x.safetensors") -> Path:
    """A path that is not a plain readable file: fifo, loop, missing, folder, pickle, non-UTF-8 name."""
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        os.symlink(folder / f"other-{name}", path)
        os.symlink(path, folder / f"other-{name}")
    elif kind == "folder":
        path.mkdir()
    elif kind == "pickle":
        path = path.with_suffix(".ckpt")
        path.write_bytes(b"\x80\x04 not really a pickle")
    elif kind == "non-utf8":
        path = Path(os.fsdecode(bytes(folder) + b"/caf\xe9-" + name.encode()))
        write_safetensors(path, LAYOUTS["kohya-sd1"](4))
    elif kind != "missing":
        raise ValueError(kind)
    return path


SPECIAL_KINDS = ["fifo", "loop", "missing", "folder", "pickle", "non-utf8"]

# ---------- PNG files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int = 4, height: int = 4, chunks: list[tuple[bytes, bytes]] = (), pixels: bool = True) -> bytes:
    """A grey 8-bit PNG with extra chunks before its pixel data; without `pixels`, no IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    for kind, data in chunks:
        body += _chunk(kind, data)
    if pixels:
        body += _chunk(b"IDAT", zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(height))))
    return body + _chunk(b"IEND", b"")


def text_chunk(key: str, text: str) -> tuple[bytes, bytes]:
    return b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1", "replace")


def itxt_chunk(key: str, text: str) -> tuple[bytes, bytes]:
    return b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")


@functools.cache
def ztxt_chunk(key: str, data: bytes) -> tuple[bytes, bytes]:
    return b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(data, 9)


def craft_png(path: Path, request, seed: int = 1) -> Path:
    """A PNG whose craftstudio chunk holds `request` (any JSON value) as the recorded request."""
    document = json.dumps({"version": 1, "request": request, "seed": seed, "model_name": "m"})
    path.write_bytes(png_bytes(chunks=[itxt_chunk("craftstudio", document)]))
    return path


def good_request(**changes) -> dict:
    data = {"model": "/models/none", "prompt": "a red square", "negative_prompt": "", "width": 64, "height": 64,
            "steps": 4, "cfg_scale": 5.0, "seed": 3, "scheduler": "euler", "batch_count": 1, "device": "cpu",
            "preview_every": 0, "content_lora": None, "style_lora": None, "backbone": None,
            "switches": {"backbone": True, "routing": True, "asymmetric": True, "gates": True},
            "curves": None, "routing_overrides": None}
    data.update(changes)
    return data


def bad_png(folder: Path, kind: str) -> Path:
    """A PNG (or a file named .png) that no reader may crash on; refused as a whole."""
    path = folder / f"{kind}.png"
    if kind == "bomb":  # Pillow refuses twice its pixel limit at open
        path.write_bytes(png_bytes(60_000, 60_000, pixels=False))
    elif kind == "bomb-warning":  # between the limit and twice it Pillow only warns
        path.write_bytes(png_bytes(10_000, 10_000, pixels=False))
    elif kind == "ztxt-50mb":
        path.write_bytes(png_bytes(chunks=[ztxt_chunk("parameters", b"a" * 50_000_000)]))
    elif kind == "parameters-5mb":
        path.write_bytes(png_bytes(chunks=[text_chunk("parameters", "a, " * 1_750_000)]))
    elif kind == "record-3mb":
        path.write_bytes(png_bytes(chunks=[itxt_chunk("craftstudio", " " * 3_000_000 + "{}")]))
    elif kind == "record-not-json":
        path.write_bytes(png_bytes(chunks=[itxt_chunk("craftstudio", "{not json")]))
    elif kind == "record-list":
        path.write_bytes(png_bytes(chunks=[itxt_chunk("craftstudio", "[1, 2]")]))
    elif kind == "record-deep":
        path.write_bytes(png_bytes(chunks=[itxt_chunk("craftstudio", "[" * 100_000 + "]" * 100_000)]))
    elif kind == "request-string":
        craft_png(path, "a cat")
    elif kind == "request-list":
        craft_png(path, ["a", "cat"])
    elif kind == "request-null":
        craft_png(path, None)
    elif kind == "request-number":
        craft_png(path, 7)
    elif kind == "not-an-image":
        path.write_text("hello, not a picture\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(png_bytes(chunks=[text_chunk("parameters", "a cat\nSteps: 4, Seed: 1, Size: 64x64")])[:40])
    elif kind == "no-parameters":
        path.write_bytes(png_bytes())
    else:
        return special_path(folder, kind, f"{kind}.png")
    return path


BAD_PNG_KINDS = ["bomb", "bomb-warning", "ztxt-50mb", "parameters-5mb", "record-3mb", "record-not-json",
                 "record-list", "record-deep", "request-string", "request-list", "request-null",
                 "request-number", "not-an-image", "empty", "truncated", "fifo", "loop", "missing", "folder"]

# recorded setting → (JSON value, words the message must hold): dropped, the rest restored.
BAD_RECORDED = {
    "cfg-text": ({"cfg_scale": "high"}, "CFG scale"),
    "cfg-nan": ({"cfg_scale": float("nan")}, "CFG scale"),
    "cfg-inf": ({"cfg_scale": float("inf")}, "CFG scale"),
    "cfg-negative": ({"cfg_scale": -3}, "CFG scale"),
    "steps-text": ({"steps": "many"}, "Steps"),
    "steps-huge": ({"steps": 10**9}, "Steps"),
    "steps-fraction": ({"steps": 2.5}, "Steps"),
    "width-odd": ({"width": 513}, "width"),
    "height-list": ({"height": [64]}, "height"),
    "seed-negative": ({"seed": -1}, "Seed"),
    "seed-bool": ({"seed": True}, "Seed"),
    "scheduler-unknown": ({"scheduler": "heun"}, "scheduler"),
    "scheduler-number": ({"scheduler": 3}, "scheduler"),
    "prompt-number": ({"prompt": 42}, "prompt"),
    "content-lora-text": ({"content_lora": "x.safetensors"}, "content LoRA"),
    "content-lora-nan": ({"content_lora": {"path": "x.safetensors", "weight": float("nan")}}, "content LoRA weight"),
    "style-lora-99": ({"style_lora": {"path": "x.safetensors", "weight": 99}}, "style LoRA weight"),
    "style-lora-negative": ({"style_lora": {"path": "x.safetensors", "weight": -5}}, "style LoRA weight"),
    "style-lora-extra-key": ({"style_lora": {"path": "x.safetensors", "weight": 1, "evil": 1}}, "style lora"),
    "switches-text": ({"switches": "all"}, "switches"),
    "switches-number": ({"switches": {"backbone": 1, "routing": True, "asymmetric": True, "gates": True}},
                        "switches"),
    "curves-text": ({"curves": "paper"}, "curves"),
    "curves-nan": ({"curves": {"guidance": {"interpolation": "linear", "points": [[0, float("nan")]]},
                               "content": {"interpolation": "step", "points": [[0, 1]]},
                               "style": {"interpolation": "step", "points": [[0, 1]]}}}, "guidance"),
    "device-unknown": ({"device": "tpu"}, "device"),
    "batch-zero": ({"batch_count": 0}, "Batch count"),
    "backbone-number": ({"backbone": 5}, "backbone"),
}

# ---------- checkpoints


def write_checkpoint(folder: Path, *, step=3, document: dict | list | None = None, tensors=None,
                     raw: bytes | None = None) -> Path:
    """`<out>.checkpoints/last.safetensors` as the training code writes it, or as given."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.safetensors"
    if raw is not None:
        path.write_bytes(raw)
        return path
    if document is None:
        document = {"format": "craft-train-checkpoint", "step": step, "request": {},
                    "optimizer": {"scalars": {}, "param_groups": []}, "losses": [], "scaler": {}}
    tensors = tensors if tensors is not None else {"param.a": torch.zeros(2, 2)}
    save_file(tensors, str(path), metadata={"craft.checkpoint": json.dumps(document)})
    return path

# ---------- shared assertions


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # what fixtures printed (building a tiny model) is not the command's
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line(rc: int, err: str, *names: str) -> str:
    """Exit 2, exactly one line on stderr that names each of `names`, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def shown(path: Path | str) -> str:
    """How a path appears in a one-line error (control characters and stray bytes escaped)."""
    from craftstudio.domain.terminal_text import one_line

    return one_line(str(path))


def catalog_state(home: Path) -> tuple:
    """Everything the catalog holds (rows of every table, files under the library folder)."""
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*")
                   if p.is_file() and not p.name.startswith("library.sqlite"))
    db = home / "library.sqlite"
    if not db.exists():
        return files, None
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        rows = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        conn.close()
    return files, hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A library with one LoRA in it; CRAFTSTUDIO_HOME points at it."""
    home = tmp_path / "home"
    lora = write_safetensors(tmp_path / "kept.safetensors", LAYOUTS["kohya-sd1"](4))
    with Catalog.open(home) as cat:
        cat.import_file(lora)
    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(home))
    return home


@pytest.fixture
def unchanged(home: Path) -> Callable[[], None]:
    """Call at the end of a case: the catalog is as it was at its start."""
    before = catalog_state(home)
    return lambda: _assert_same(before, catalog_state(home))


def _assert_same(before, after) -> None:
    assert after == before
