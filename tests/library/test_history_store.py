"""History paging and the gallery's filters."""

from __future__ import annotations

import dataclasses

from craftstudio.domain.curves import load_preset
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
from craftstudio.library.database import Database
from craftstudio.library.history_store import GalleryFilter, HistoryStore


def _store():
    store = HistoryStore(Database())
    base = GenerateRequest(model="/models/shapes", prompt="a heart", seed=0)
    for i in range(7):
        request = dataclasses.replace(
            base, seed=i, prompt="a star" if i % 2 else "a heart",
            content_lora=LoraRef(f"/loras/{'heart' if i < 4 else 'star'}.safetensors"),
            switches=FusionSwitches.for_mode("direct" if i == 6 else "craft"),
            curves=load_preset("paper").to_dict() if i in (1, 2) else None)
        store.add_generation(request, [f"/out/{i}.png"])
    return store


def test_pages_are_newest_first_and_do_not_overlap():
    store = _store()
    first, second = store.page(limit=4), store.page(offset=4, limit=4)
    assert [r.seed for r in first + second] == [6, 5, 4, 3, 2, 1, 0]
    assert store.count() == 7


def test_each_filter_narrows_the_history():
    store = _store()
    seeds = lambda **kw: [r.seed for r in store.page(GalleryFilter(**kw))]  # noqa: E731
    assert seeds(text="star") == [5, 3, 1]
    assert seeds(lora="heart") == [3, 2, 1, 0]
    assert seeds(mode="direct") == [6]
    assert seeds(curves="paper") == [2, 1]
    assert seeds(lora="star", text="heart") == [6, 4]
    assert seeds(since=0.0, until=1.0) == []
    assert store.count(GalleryFilter(model="shapes")) == 7
    assert store.loras() == ["/loras/heart.safetensors", "/loras/star.safetensors"]


def test_delete_output_moves_the_file_and_drops_the_record(tmp_path):
    store = HistoryStore(Database())
    image = tmp_path / "a.png"
    image.write_bytes(b"png")
    store.add_generation(GenerateRequest(model="/m", prompt="p"), [str(image)])
    moved = store.delete_output(str(image), tmp_path / "trash")
    assert moved == tmp_path / "trash" / "a.png" and moved.read_bytes() == b"png" and not image.exists()
    assert store.count() == 0
