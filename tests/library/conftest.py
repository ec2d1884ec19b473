"""Fixtures for library tests: catalogs in temporary folders and synthetic LoRA files."""

from __future__ import annotations

from pathlib import Path

import pytest

from craftstudio.library import synthetic
from craftstudio.library.catalog import Catalog


def make_lora(path: Path, layout: str = "kohya-sd1", rank: int = 4, metadata: dict[str, str] | None = None) -> Path:
    """A tiny LoRA with a real key layout (see craftstudio.library.synthetic.LAYOUTS)."""
    return synthetic.write_safetensors(path, synthetic.LAYOUTS[layout](rank), metadata)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def catalog(home: Path):
    """A catalog with its database on disk (WAL), in a temporary library folder."""
    cat = Catalog.open(home)
    yield cat
    cat.close()


@pytest.fixture
def memory_catalog(home: Path):
    cat = Catalog.in_memory(home)
    yield cat
    cat.close()


@pytest.fixture
def loras(tmp_path: Path) -> Path:
    """A user folder with four LoRAs of different layouts (one in a sub-folder with a non-ASCII name)."""
    folder = tmp_path / "my loras"
    make_lora(folder / "ink sketch.safetensors", "kohya-sd1",
              metadata=synthetic.kohya_metadata("inkSketch", "sd1", 4, {"ink": 50, "sketch": 20, "1girl": 3}))
    make_lora(folder / "xl" / "neon city.safetensors", "kohya-sdxl", rank=8)
    make_lora(folder / "水彩 style.safetensors", "diffusers-sd1",
              metadata={"modelspec.title": "Watercolour", "craft.role": "style",
                        "modelspec.trigger_phrase": "watercolor style, soft edges"})
    make_lora(folder / "cat.safetensors", "peft-sd1", metadata={"craft.role": "content"})
    return folder
