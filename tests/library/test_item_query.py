"""ItemQuery: the full-text index finds what a plain substring search finds; filters, tags,
sorting and paging agree with the same question answered in Python."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from craftstudio.library import synthetic
from craftstudio.library.item_query import DRIVE_BY_LIST_UP_TO, ItemQuery
from tests.library.conftest import make_lora

WORDS = ["ink", "watercolor", "neon", "Castle", "水彩", "pastel", "x%y", "a_b"]
LAYOUTS = ["kohya-sd1", "kohya-sdxl", "diffusers-sd1", "peft-sd1", "kohya-sd2"]


@pytest.fixture
def stocked(catalog, tmp_path: Path):
    """24 LoRAs with varied names, roles, triggers, tags and families."""
    folder = tmp_path / "loras"
    for i in range(24):
        word, other = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
        layout = LAYOUTS[i % len(LAYOUTS)]
        meta = {"modelspec.title": f"{word} {other} {i}", "modelspec.trigger_phrase": f"{other} style",
                "craft.role": ("content", "style", "other")[i % 3]}
        make_lora(folder / f"{word}-{i:02d}.safetensors", layout, metadata=meta)
    catalog.scan([folder])
    for item in catalog.items.search()[::4]:
        catalog.items.change_tags(item.id, add=["Favourite Set"])
    catalog.items.edit(catalog.items.search(text="castle")[0].id, notes="made for the zine")
    return catalog


def _brute(catalog, query: ItemQuery) -> list[str]:
    """The same question answered by reading every item (the old substring search)."""
    out = []
    for item in catalog.items.page(ItemQuery(kind=None, trashed=query.trashed)):
        text = "\n".join([item.name, item.title or "", Path(item.path).name, *item.triggers, *item.tags,
                          item.description or "", item.notes or "", item.family, item.role, item.kind]).lower()
        if query.kind and item.kind != query.kind or query.family and item.family != query.family:
            continue
        if query.role and item.role != query.role:
            continue
        if not all(w in text for w in query.text.lower().split()):
            continue
        if query.trigger and not any(query.trigger.lower() in t.lower() for t in item.triggers):
            continue
        if query.tag and " ".join(query.tag.lower().split()) not in item.tags:
            continue
        out.append(item.id)
    return sorted(out)


QUERIES = [
    ItemQuery(text="water"), ItemQuery(text="COLOR"), ItemQuery(text="ink neon"), ItemQuery(text="水彩"),
    ItemQuery(text="x%y"), ItemQuery(text="a_b"), ItemQuery(text="in"), ItemQuery(text="zine"),
    ItemQuery(text='"quoted'), ItemQuery(text="nothing-like-this"), ItemQuery(family="sdxl"),
    ItemQuery(role="style", text="castle"), ItemQuery(trigger="neon sty"), ItemQuery(trigger="ne"),
    ItemQuery(tag=" favourite  set "), ItemQuery(tag="favourite set", family="sd1"), ItemQuery(),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q.text or q.family or q.role or q.trigger or q.tag))
def test_index_finds_what_a_substring_search_finds(stocked, query):
    found = sorted(i.id for i in stocked.items.page(query))
    assert found == _brute(stocked, query)
    assert stocked.items.count_matching(query) == len(found)


@pytest.mark.parametrize("sort", ["name", "family", "role", "size", "added", "used", "rating"])
@pytest.mark.parametrize("descending", [False, True])
def test_pages_join_up_to_the_whole_sorted_list_whatever_the_plan(stocked, sort, descending):
    query = ItemQuery(sort=sort, descending=descending)
    whole = [i.id for i in stocked.items.page(query)]
    assert len(whole) == 24
    for matches in (None, 24, DRIVE_BY_LIST_UP_TO + 1):  # both plans give the same order
        pages = [stocked.items.page(query, offset=o, limit=5, matches=matches) for o in range(0, 25, 5)]
        assert [i.id for i in itertools.chain(*pages)] == whole


def test_sort_orders_by_the_column(stocked):
    labels = [i.label.lower() for i in stocked.items.page(ItemQuery(sort="name"))]  # title, else name
    assert labels == sorted(labels)
    sizes = [i.size for i in stocked.items.page(ItemQuery(sort="size", descending=True))]
    assert sizes == sorted(sizes, reverse=True)


def test_last_used_and_rating_sort_first_when_descending(stocked):
    item = stocked.items.search(text="pastel")[0]
    stocked.items.mark_used(item.id)
    assert stocked.items.page(ItemQuery(sort="used", descending=True), limit=1)[0].id == item.id
    rated = stocked.items.edit(stocked.items.search(text="neon")[0].id, rating=4)
    assert stocked.items.page(ItemQuery(sort="rating", descending=True), limit=1)[0].id == rated.id


def test_index_follows_edits_tags_and_deletes(stocked):
    item = stocked.items.search(text="pastel")[0]
    stocked.items.edit(item.id, title="Moonlit harbour")
    assert [i.id for i in stocked.items.page(ItemQuery(text="harbour"))] == [item.id]
    stocked.items.change_tags(item.id, add=["night"])
    assert [i.id for i in stocked.items.page(ItemQuery(tag="night"))] == [item.id]
    stocked.items.change_tags(item.id, remove=["night"])
    assert stocked.items.count_matching(ItemQuery(tag="night")) == 0
    stocked.db.execute("DELETE FROM items WHERE id = ?", (item.id,))
    assert stocked.items.count_matching(ItemQuery(text="harbour")) == 0


def test_fits_family_keeps_unknown_and_models(catalog, tmp_path):
    make_lora(tmp_path / "f" / "one.safetensors", "kohya-sd1")
    make_lora(tmp_path / "f" / "two.safetensors", "kohya-sdxl")
    synthetic.write_safetensors(tmp_path / "f" / "odd.safetensors", {"lora_unet_x.lora_down.weight": (4, 7),
                                                                     "lora_unet_x.lora_up.weight": (7, 4)})
    catalog.scan([tmp_path / "f"])
    names = {i.name for i in catalog.items.page(ItemQuery(fits_family="sd1"))}
    assert "one" in names and "two" not in names
    assert {i.family for i in catalog.items.page(ItemQuery(fits_family="sd1"))} <= {"sd1", "unknown"}
    assert len(catalog.items.page(ItemQuery(fits_family="unknown"))) == len(catalog.items.page(ItemQuery()))


def test_tag_counts_and_trash(stocked):
    counts = dict(stocked.items.tag_counts())
    assert counts["favourite set"] == 6
    item = stocked.items.search(tag="favourite set")[0]
    stocked.remove(item.id)
    assert dict(stocked.items.tag_counts())["favourite set"] == 5
    assert [i.id for i in stocked.items.page(ItemQuery(trashed=True))] == [item.id]


def test_rating_is_checked(stocked):
    item = stocked.items.search()[0]
    with pytest.raises(Exception, match="from 0 to 5"):
        stocked.items.edit(item.id, rating=9)


def test_a_preview_the_user_set_survives_a_rescan(catalog, tmp_path):
    folder = tmp_path / "f"
    make_lora(folder / "ink.safetensors")
    catalog.scan([folder])
    item = catalog.items.search()[0]
    chosen = tmp_path / "mine.png"
    chosen.write_bytes(b"not read here")
    catalog.items.set_preview(item.id, str(chosen))
    (folder / "ink.preview.png").write_bytes(b"found later")
    catalog.scan([folder])
    assert catalog.items.get(item.id).preview == str(chosen)
    catalog.items.set_preview(item.id, None)  # back to what the folder offers
    os.utime(folder / "ink.preview.png", ns=(1, 1))  # the sidecar changed: the next scan reads it
    catalog.scan([folder])
    assert catalog.items.get(item.id).preview == str(folder / "ink.preview.png")
