"""Import, search, edit, tag, rename, trash and restore; sidecars; history."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from PIL import Image

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import GenerateRequest, LoraRef
from craftstudio.library import synthetic
from craftstudio.library.item_store import NotInLibrary
from tests.library.conftest import make_lora


def _png_bytes(color=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def test_import_copies_into_the_library(catalog, tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    (tmp_path / "ink.preview.png").write_bytes(_png_bytes())
    result = catalog.import_file(src)
    item = result.item
    assert result.created and not item.in_place
    assert item.path == str(catalog.paths.loras / "ink.safetensors")
    assert (catalog.paths.loras / "ink.preview.png").exists()
    assert item.preview == str(catalog.paths.loras / "ink.preview.png")
    assert src.exists()  # the original stays
    assert not [p for p in catalog.paths.loras.iterdir() if p.name.endswith(".tmp")]


def test_import_twice_gives_the_same_item(catalog, tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    first = catalog.import_file(src).item
    again = catalog.import_file(src)
    assert not again.created and again.item.id == first.id
    assert len(list(catalog.paths.loras.glob("*.safetensors"))) == 1


def test_import_name_clash_keeps_both(catalog, tmp_path):
    a = make_lora(tmp_path / "a" / "ink.safetensors", rank=4)
    b = make_lora(tmp_path / "b" / "ink.safetensors", rank=8)
    ia, ib = catalog.import_file(a).item, catalog.import_file(b).item
    assert ia.id != ib.id and os.path.basename(ib.path) == "ink-2.safetensors"


def test_import_in_place_registers_without_copying(catalog, tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    item = catalog.import_file(src, in_place=True).item
    assert item.in_place and item.path == str(src)
    assert not catalog.paths.loras.exists() or not list(catalog.paths.loras.iterdir())


def test_import_errors_name_the_file(catalog, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        catalog.import_file(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage!garbage!")
    with pytest.raises(UserError, match="bad.safetensors cannot be imported"):
        catalog.import_file(bad)
    vae = synthetic.write_safetensors(tmp_path / "vae.safetensors", {"decoder.up.0.w": (2, 2)})
    with pytest.raises(UserError, match="VAE"):
        catalog.import_file(vae)


def test_remove_and_restore_a_library_file(catalog, tmp_path):
    item = catalog.import_file(make_lora(tmp_path / "ink.safetensors")).item
    catalog.items.change_tags(item.id, add=["ink"])
    path = item.path
    removed = catalog.remove(item.short_id)
    assert not os.path.exists(path) and os.path.exists(removed.trash_path)
    assert removed.trash_path.startswith(str(catalog.paths.trash))
    assert catalog.items.search() == []
    assert [i.id for i in catalog.items.search(trashed=True)] == [item.id]
    restored = catalog.restore(item.id)
    assert os.path.exists(path) and restored.path == path and not restored.trashed
    assert restored.tags == ["ink"]
    assert [i.id for i in catalog.items.search()] == [item.id]


def test_remove_never_touches_a_file_registered_in_place(catalog, tmp_path):
    src = make_lora(tmp_path / "mine.safetensors")
    before = src.read_bytes()
    item = catalog.import_file(src, in_place=True).item
    catalog.remove(item.id)
    assert src.read_bytes() == before
    assert catalog.items.search() == []
    catalog.scan([tmp_path])  # a later scan does not bring it back
    assert catalog.items.search() == []
    catalog.restore(item.id)
    assert [i.path for i in catalog.items.search()] == [str(src)]


def test_restore_refuses_to_overwrite(catalog, tmp_path):
    item = catalog.import_file(make_lora(tmp_path / "ink.safetensors")).item
    catalog.remove(item.id)
    make_lora(catalog.paths.loras / "ink.safetensors", rank=2)
    with pytest.raises(UserError, match="already exists"):
        catalog.restore(item.id)


def test_remove_twice_and_restore_untrashed_say_so(catalog, tmp_path):
    item = catalog.import_file(make_lora(tmp_path / "ink.safetensors")).item
    with pytest.raises(UserError, match="not in the trash"):
        catalog.restore(item.id)
    catalog.remove(item.id)
    with pytest.raises(UserError, match="already in the trash"):
        catalog.remove(item.id)


def test_find_by_prefix_name_and_path(catalog, loras):
    catalog.scan([loras])
    item = catalog.items.find("ink sketch")
    assert catalog.items.find(item.id[:8]).id == item.id
    assert catalog.items.find(item.path).id == item.id
    with pytest.raises(NotInLibrary, match="Nothing in the library matches"):
        catalog.items.find("no such lora")


def test_search_filters(catalog, loras):
    catalog.scan([loras])
    names = lambda **kw: sorted(i.name for i in catalog.items.search(**kw))  # noqa: E731
    assert names() == ["cat", "ink sketch", "neon city", "水彩 style"]
    assert names(family="sdxl") == ["neon city"]
    assert names(role="style") == ["水彩 style"]
    assert names(role="content", family="sd1") == ["cat"]
    assert names(text="WATERCOLOUR") == ["水彩 style"]  # title, case-insensitive
    assert names(text="水彩") == ["水彩 style"]
    assert names(trigger="soft") == ["水彩 style"]
    assert names(text="ink 1girl") == ["ink sketch"]  # every word, from name and trigger tags
    assert names(text="100%") == []
    ink = catalog.items.find("ink sketch")
    catalog.items.change_tags(ink.id, add=["Line Art", "bw"])
    assert names(tag="line art") == ["ink sketch"]
    catalog.items.change_tags(ink.id, remove=["bw"])
    assert catalog.items.get(ink.id).tags == ["line art"]


def test_edits_survive_a_rescan_of_a_changed_file(catalog, tmp_path):
    path = make_lora(tmp_path / "loras" / "ink.safetensors", metadata={"modelspec.title": "Ink"})
    catalog.scan([tmp_path / "loras"])
    item = catalog.items.find("ink")
    catalog.items.edit(item.id, title="My Ink", role="style", triggers=["inky"])
    catalog.items.change_tags(item.id, add=["fav"])
    make_lora(path, rank=8, metadata={"modelspec.title": "Ink v2"})  # retrained: new content, new id
    catalog.scan([tmp_path / "loras"])
    [new] = catalog.items.search()
    assert new.id != item.id and new.rank == 8
    assert (new.title, new.role, new.triggers, new.tags) == ("My Ink", "style", ["inky"], ["fav"])
    assert catalog.items.get(item.id) is None


def test_edit_validates(catalog, loras):
    catalog.scan([loras])
    item = catalog.items.find("cat")
    with pytest.raises(UserError, match="Role 'hero'"):
        catalog.items.edit(item.id, role="hero")


def test_rename_library_file_renames_it_and_its_sidecars(catalog, tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    (tmp_path / "ink.civitai.info").write_text(json.dumps({"trainedWords": ["inky"]}))
    item = catalog.import_file(src).item
    renamed = catalog.rename(item.id, "Ink Wash")
    assert renamed.name == "Ink Wash" and renamed.path.endswith("Ink Wash.safetensors")
    assert (catalog.paths.loras / "Ink Wash.civitai.info").exists()
    assert not (catalog.paths.loras / "ink.safetensors").exists()
    assert catalog.items.find(str(catalog.paths.loras / "Ink Wash.safetensors")).id == item.id
    with pytest.raises(UserError, match="cannot be a name"):
        catalog.rename(item.id, "../escape")


def test_rename_in_place_keeps_the_users_file_name(catalog, tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    item = catalog.import_file(src, in_place=True).item
    assert catalog.rename(item.id, "Ink").name == "Ink"
    assert src.exists()


def test_sidecars_fill_gaps(catalog, tmp_path):
    folder = tmp_path / "loras"
    make_lora(folder / "pony.safetensors", "kohya-sdxl")
    (folder / "pony.png").write_bytes(_png_bytes())
    (folder / "pony.civitai.info").write_text(json.dumps({
        "id": 123, "trainedWords": ["ponystyle, bright"], "baseModel": "Pony",
        "model": {"name": "Pony Style", "tags": ["style"]}, "description": "<p>hi</p>"}))
    (folder / "pony.json").write_text(json.dumps({"activation text": "bright, shiny", "sd version": "SDXL",
                                                  "description": "my notes", "preferred weight": 0.7}))
    make_lora(folder / "nometa.safetensors", "kohya-sdxl", rank=2)
    synthetic.write_safetensors(folder / "ff.safetensors",  # no shape evidence: civitai baseModel decides
                                {"lora_unet_mid_block_ff_net_2.lora_down.weight": (4, 5120)})
    (folder / "ff.civitai.info").write_text(json.dumps({"baseModel": "SD 1.5"}))
    catalog.scan([folder])
    pony = catalog.items.find("pony")
    assert pony.triggers == ["ponystyle", "bright", "shiny"]
    assert pony.title == "Pony Style" and pony.description == "my notes"
    assert pony.preview == str(folder / "pony.png")
    assert pony.meta["preferred_weight"] == 0.7
    ff = catalog.items.find("ff")
    assert ff.family == "sd1" and "civitai" in ff.meta["family_evidence"]


def test_modelspec_thumbnail_becomes_a_preview(catalog, tmp_path):
    uri = "data:image/png;base64," + base64.b64encode(_png_bytes((0, 0, 255))).decode()
    make_lora(tmp_path / "thumb.safetensors", metadata={"modelspec.thumbnail": uri})
    make_lora(tmp_path / "broken thumb.safetensors", rank=2, metadata={"modelspec.thumbnail": "data:image/png;base64,!!"})
    catalog.scan([tmp_path])
    item = catalog.items.find("thumb")
    assert item.preview and item.preview.startswith(str(catalog.paths.previews))
    with Image.open(item.preview) as im:
        assert im.getpixel((0, 0)) == (0, 0, 255)
    assert catalog.items.find("broken thumb").preview is None


def test_usable_with_a_base_model(catalog, loras, tmp_path):
    checkpoint = synthetic.write_safetensors(tmp_path / "models" / "base15.safetensors", {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)})
    catalog.scan([loras, checkpoint.parent])
    usable = sorted(i.name for i in catalog.items.usable_with("base15"))
    assert usable == ["cat", "ink sketch", "水彩 style"]
    with pytest.raises(NotInLibrary):
        catalog.items.usable_with("ink sketch")  # not a base model


def test_backbones_usable_with_their_base_model_only(catalog, tmp_path):
    base = synthetic.write_safetensors(tmp_path / "base.safetensors", {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)})
    other = synthetic.write_safetensors(tmp_path / "other.safetensors", {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
        "model.diffusion_model.x": (1,)})
    base_id = catalog.import_file(base, in_place=True).item.id
    catalog.import_file(other, in_place=True)
    for name, target in (("mine", base_id), ("theirs", "f" * 64)):
        synthetic.write_safetensors(tmp_path / f"{name}.safetensors", {"q": (320, 8)}, {
            "craft.kind": "backbone", "craft.family": "sd1", "craft.base_model_hash": target})
        catalog.import_file(tmp_path / f"{name}.safetensors")
    assert [b.name for b in catalog.items.usable_with("base", kind="backbone")] == ["mine"]
    assert [b.name for b in catalog.items.usable_with("other", kind="backbone")] == []


def test_history(memory_catalog):
    history = memory_catalog.history
    request = GenerateRequest(model="m", prompt="a cat <c>", seed=5,
                              content_lora=LoraRef("/x/cat.safetensors", 0.8, sha256="unknown"))
    gid = history.add_generation(request, ["/out/1.png", "/out/2.png"], timings={"total": 1.5},
                                 record={"device": "cpu"})
    record = history.generation(gid)
    assert record.request == request and record.outputs == ["/out/1.png", "/out/2.png"]
    assert record.timings == {"total": 1.5} and record.seed == 5
    assert history.generation_for_output("/out/2.png").id == gid
    assert [g.id for g in history.generations(search="cat")] == [gid]
    run = history.start_training_run("content", {"steps": 10})
    history.finish_training_run(run, "finished", output_path="/x/out.safetensors", result={"loss": 0.1})
    [tr] = history.training_runs()
    assert (tr.status, tr.output_path, tr.result) == ("finished", "/x/out.safetensors", {"loss": 0.1})
    history.save_curve_preset("paper", {"content": [[0, 1], [0.7, 0]]})
    history.save_curve_preset("paper", {"content": [[0, 1]]})
    assert history.curve_presets() == {"paper": {"content": [[0, 1]]}}
    history.delete_curve_preset("paper")
    with pytest.raises(UserError, match="No curve preset"):
        history.curve_preset("paper")
