"""GalleryState over a real catalog and the fake engine: generations land in the gallery with
their settings, filters narrow it, the viewer's actions reach Generate."""

from __future__ import annotations

import dataclasses

import pytest

from craftstudio.library.catalog import Catalog
from craftstudio.library.png_params import read_request
from craftstudio.state.gallery_state import PAGE_SIZE, GalleryState
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


@pytest.fixture
def catalog(tmp_path):
    catalog = Catalog.in_memory(tmp_path / "home")
    yield catalog
    catalog.close()


def _studio(runner, tmp_path, catalog, engine=None):
    generate = make_state(runner, tmp_path, engine or FakeEngine())
    generate._history = catalog.history  # as build_studio wires it
    return generate, GalleryState(catalog, generate)


def _lora(tmp_path, name):
    path = tmp_path / "loras" / f"{name}.safetensors"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"x")
    return str(path)


def test_thirty_generations_land_in_the_gallery_with_their_settings(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.random_seed, generate.seed, generate.repeat = False, 100, 30
    generate.craft.content_lora = _lora(tmp_path, "heart")
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT * 4)
    assert gallery.count == 30
    rows = gallery.model.image_rows()
    assert len(rows) == 30
    newest = gallery.model.entry(rows[0])
    assert newest.seed == 129 and newest.record.request.prompt == "a ginger cat"
    assert newest.record.request.content_lora.path.endswith("heart.safetensors")
    assert read_request(newest.path).seed == 129  # the file and the record agree
    assert gallery.model.entry(0).is_header and gallery.model.entry(0).day == "Today"


def test_filter_by_lora_and_by_prompt(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.random_seed = False
    for lora, prompt in (("heart", "a heart"), ("star", "a star"), ("heart", "another heart")):
        generate.craft.content_lora = _lora(tmp_path, lora)
        generate.prompt = prompt
        generate.generate()
        qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    gallery.lora_filter = "heart"
    assert gallery.count == 2
    prompts = {gallery.model.entry(r).record.request.prompt for r in gallery.model.image_rows()}
    assert prompts == {"a heart", "another heart"}
    gallery.lora_filter, gallery.search = "", "star"
    assert [gallery.model.entry(r).record.request.prompt for r in gallery.model.image_rows()] == ["a star"]
    gallery.search, gallery.mode_filter = "", "direct"
    assert gallery.count == 0


def test_reuse_all_settings_fills_generate_exactly(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.random_seed, generate.seed, generate.steps, generate.cfg_scale = False, 77, 4, 5.5
    generate.craft.content_lora = _lora(tmp_path, "heart")
    generate.craft.style_lora, generate.craft.style_weight = _lora(tmp_path, "mosaic"), 0.25
    generate.craft.set_mode("direct")
    generate.prompt = "a sks <c> in ohwx style <s:0.25>"
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    made = generate.request()
    # Change everything, then reuse the image's settings.
    generate.prompt, generate.steps, generate.seed, generate.random_seed = "other", 9, 1, True
    generate.craft.set_mode("craft")
    generate.craft.style_weight = 1.0
    gallery.open_row(gallery.model.image_rows()[0])
    with qtbot.waitSignal(generate.show_requested, timeout=TIMEOUT):
        assert gallery.reuse_all() == []
    assert generate.request() == made
    assert not generate.random_seed


def test_viewer_steps_through_images_and_pages_in_more(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    request = generate.request()
    for seed in range(PAGE_SIZE + 5):
        path = tmp_path / f"{seed}.png"
        catalog.history.add_generation(dataclasses.replace(request, seed=seed), [str(path)])
    gallery.refresh()
    assert len(gallery.model.image_rows()) == PAGE_SIZE  # one page read
    gallery.open_row(gallery.model.image_rows()[-1])
    assert gallery.step(+1)  # the next image is on the next page
    assert gallery.current.seed == 4 and len(gallery.model.image_rows()) == PAGE_SIZE + 5
    assert gallery.step(-1) and gallery.current.seed == 5


def test_delete_moves_the_file_to_the_trash(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    entry = gallery.model.entry(gallery.model.image_rows()[0])
    assert gallery.delete([entry.path]) == 1
    assert gallery.count == 0
    assert (catalog.paths.trash / entry.path.rsplit("/", 1)[-1]).exists()


def test_restore_png_restores_settings_and_lists_what_is_missing(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.craft.content_lora = str(tmp_path / "gone.safetensors")
    generate.random_seed, generate.seed = False, 31
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    path = generate.image_paths[0]
    generate.seed, generate.craft.content_lora = 2, ""
    problems = gallery.restore_png(path)
    assert generate.seed == 31 and generate.craft.content_lora.endswith("gone.safetensors")
    assert any("gone.safetensors" in p for p in problems)
    assert "Not restored" in generate.status


def test_export_copies_with_metadata_and_preview_needs_a_catalogued_lora(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    generate.craft.content_lora = _lora(tmp_path, "heart")
    generate.random_seed, generate.seed = False, 12
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    entry = gallery.model.entry(gallery.model.image_rows()[0])
    written = gallery.export([entry.path, entry.path], tmp_path / "export")
    assert [p.name for p in written] == [entry.path.rsplit("/", 1)[-1], written[1].name]
    assert written[1].name.endswith("-2.png") and read_request(written[1]).seed == 12
    gallery.open_row(gallery.model.image_rows()[0])
    assert not gallery.use_as_lora_preview("content")
    assert gallery.error == "This image's content LoRA is not in the library: scan or import it first."


def test_restore_an_a1111_png_lists_what_it_could_not_restore(qtbot, runner, tmp_path, catalog):
    from PIL import Image, PngImagePlugin

    generate, gallery = _studio(runner, tmp_path, catalog)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red house, <lora:watercolor_v2:0.8>\nSteps: 12, Sampler: Euler a, "
                                "CFG scale: 6, Seed: 4242, Size: 64x64, Model: dreamy, Hires upscale: 2")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    problems = gallery.restore_png(path)
    assert (generate.prompt, generate.steps, generate.seed, generate.cfg_scale) == ("a red house", 12, 4242, 6.0)
    assert "LoRA 'watercolor_v2' is not in the library: scan or import it." in problems
    assert any("Hires upscale" in p for p in problems)


def test_an_image_becomes_generates_init_image(qtbot, runner, tmp_path, catalog):
    generate, gallery = _studio(runner, tmp_path, catalog)
    path = tmp_path / "made.png"
    from PIL import Image

    Image.new("RGB", (48, 32), "red").save(path)
    catalog.history.add_generation(generate.request(), [str(path)])
    gallery.refresh()
    gallery.open_row(gallery.model.image_rows()[0])
    shown = []
    generate.show_requested.connect(lambda: shown.append(True))
    gallery.use_as_init_image()
    assert generate.pictures.init_image == str(path) and generate.pictures.picture_size == (48, 32)
    assert shown
