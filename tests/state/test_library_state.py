"""LibraryState: folders scanned as jobs, cards with family and role, filters and search, edits,
previews, "Use as ...", trash and restore, problems, duplicates; the GUI thread stays free."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from craftstudio.library import synthetic
from craftstudio.library.catalog import Catalog
from craftstudio.library.item_query import ItemQuery
from craftstudio.state.library_model import MIME_ITEM, ItemRole, item_ids
from craftstudio.state.library_state import LibraryState
from craftstudio.state.settings_file import SettingsFile
from tests.kit.library_files import CORRUPT, write_checkpoint, write_lora_folder, write_many, write_png
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.open(tmp_path / "home")
    yield cat
    cat.close()


@pytest.fixture
def library(qtbot, runner, catalog, tmp_path):
    engine = FakeEngine()
    generate = make_state(runner, tmp_path, engine=engine, prompt="")
    state = LibraryState(catalog, runner, generate, settings=SettingsFile(tmp_path / "settings.json"),
                         thumbnail_cache=tmp_path / "cache", engine=engine)
    state.start()
    yield state
    state.shutdown()


def scan(qtbot, library, folder: Path) -> None:
    library.add_folder(folder)
    assert library.scanning
    qtbot.waitUntil(lambda: not library.scanning, timeout=TIMEOUT * 6)


def rows(library) -> list:
    model = library.model
    while model.canFetchMore():
        model.fetchMore()
    return [model.data(model.index(r, 0), ItemRole) for r in range(model.rowCount())]


def select(library, name: str):
    item = next(i for i in rows(library) if i.name == name)
    library.select(item.id)
    return item


@pytest.fixture
def scanned(qtbot, library, tmp_path):
    library.fits_model = False
    scan(qtbot, library, write_lora_folder(tmp_path / "my loras"))
    return library


def test_added_folder_is_scanned_into_cards_with_family_and_role(scanned):
    items = {i.name: i for i in rows(scanned)}
    assert set(items) == {"ink sketch", "robot pilot", "watercolor", "neon city", "glass", "pastel"}
    assert (items["neon city"].family, items["glass"].family, items["pastel"].family) == ("sdxl", "sdxl", "sd2")
    assert (items["watercolor"].role, items["robot pilot"].role, items["ink sketch"].role) == \
        ("style", "content", "style")
    assert scanned.total == 6 and "6 added" in scanned.status


def test_corrupt_file_is_listed_under_problems_with_its_reason(scanned):
    problem = next(p for p in scanned.problems if p.name == CORRUPT)
    assert problem.status == "unreadable" and "too short" in problem.reason
    assert "could not be used" in scanned.status


def test_filter_by_family_and_role(scanned):
    scanned.family = "sdxl"
    assert {i.name for i in rows(scanned)} == {"neon city", "glass"}
    scanned.role = "content"
    assert [i.name for i in rows(scanned)] == ["glass"]
    scanned.family = scanned.role = ""
    assert scanned.total == 6


def test_search_by_trigger_after_the_debounce(qtbot, scanned):
    with qtbot.waitSignal(scanned.model.modelReset, timeout=TIMEOUT):
        scanned.search_text = "ROBOT pil"
    assert [i.name for i in rows(scanned)] == ["robot pilot"]
    scanned.search_text = "watercolor style"
    scanned.flush_search()
    assert [i.name for i in rows(scanned)] == ["watercolor"]


def test_fits_the_current_model_hides_other_families(qtbot, scanned, tmp_path):
    base = write_checkpoint(tmp_path / "models" / "base-xl.safetensors", "sdxl")
    scanned.fits_model = True
    scanned.generate.model = str(base)
    assert scanned.model_family == "sdxl"
    assert {i.family for i in rows(scanned)} == {"sdxl"}
    assert "SDXL" in scanned.fits_note
    scanned.fits_model = False
    assert scanned.total == 6


def test_use_as_style_lora_fills_generate_and_inserts_the_style_marker(qtbot, scanned):
    item = select(scanned, "watercolor")
    with qtbot.waitSignal(scanned.generate.show_requested, timeout=TIMEOUT):
        assert scanned.use_as("style")
    assert scanned.generate.craft.style_lora == item.path
    assert scanned.generate.prompt == "watercolor style <s>"
    assert scanned.catalog.items.get(item.id).last_used_at is not None
    assert not scanned.use_as("model")  # a LoRA is not a base model
    assert scanned.error == "Watercolour is a LoRA: it cannot be used as the base model."


def test_use_as_base_model(qtbot, scanned, tmp_path):
    base = write_checkpoint(tmp_path / "my loras" / "models" / "base.safetensors")
    scanned.kind = ""
    scanned.rescan()
    qtbot.waitUntil(lambda: not scanned.scanning, timeout=TIMEOUT)
    select(scanned, "base")
    assert scanned.use_as("model") and scanned.generate.model == str(base)


def test_edits_go_to_the_catalog_at_once(scanned):
    item = select(scanned, "pastel")
    scanned.set_tags("Soft, dreamy ,")
    scanned.set_notes("good at 0.6")
    scanned.set_rating(4)
    scanned.set_title("Pastel dream")
    scanned.set_triggers("pastel colours, soft light")
    stored = scanned.catalog.items.get(item.id)
    assert (stored.tags, stored.notes, stored.rating, stored.title) == (["soft", "dreamy"], "good at 0.6", 4,
                                                                        "Pastel dream")
    assert stored.triggers == ["pastel colours", "soft light"] and scanned.selected == stored
    assert scanned.tags[:2] == ["dreamy", "soft"] or set(scanned.tags) >= {"soft", "dreamy"}
    scanned.tag = "dreamy"
    assert [i.id for i in rows(scanned)] == [item.id]
    scanned.set_rating(7)
    assert "0 to 5" in scanned.error


def test_set_a_preview_from_an_image_and_from_the_last_generation(qtbot, scanned, tmp_path):
    item = select(scanned, "glass")
    assert scanned.previews.set_from_image(write_png(tmp_path / "pic.png"))
    first = scanned.catalog.items.get(item.id).preview
    assert Path(first).parent == scanned.catalog.paths.previews and Path(first).is_file()
    row = scanned.model.row_of(item.id)
    assert scanned.model.data(scanned.model.index(row, 0), ItemRole).preview == first
    assert not scanned.previews.use_last_generated() and "generate an image first" in scanned.error
    scanned.generate.image_paths = [str(write_png(tmp_path / "out" / "last.png", (10, 200, 10)))]
    assert scanned.previews.use_last_generated()
    second = scanned.catalog.items.get(item.id).preview
    assert second != first and not Path(first).exists()  # the replaced copy is not left behind
    assert not scanned.previews.set_from_image(tmp_path / "my loras" / "broken.safetensors")
    assert "not an image" in scanned.error


def test_make_a_preview_generates_with_the_trigger_and_sets_it(qtbot, scanned):
    scanned.generate.model = "/models/fake"
    item = select(scanned, "robot pilot")
    with qtbot.waitSignal(scanned.previews.making_changed, timeout=TIMEOUT * 2,
                          check_params_cb=lambda making: not making):
        assert scanned.previews.make() is not None
    request = scanned.engine.calls[-1]
    assert request.prompt == "robot pilot <c>" and request.content_lora.path == item.path
    assert request.style_lora is None and request.batch_count == 1
    preview = Path(scanned.catalog.items.get(item.id).preview)
    assert preview.is_file() and preview.is_relative_to(scanned.catalog.paths.previews)


def test_trash_and_restore(scanned):
    item = select(scanned, "neon city")
    scanned.trash()
    assert item.id not in [i.id for i in rows(scanned)] and scanned.total == 5
    assert Path(item.path).exists()  # registered in place: only hidden
    scanned.show = "trash"
    assert [i.id for i in rows(scanned)] == [item.id]
    scanned.select(item.id)
    scanned.restore()
    assert scanned.total == 0
    scanned.show = "items"
    assert scanned.total == 6


def test_dropped_files_are_registered_in_place_or_copied(qtbot, library, tmp_path):
    folder = write_lora_folder(tmp_path / "drop")
    library.fits_model = False
    library.import_paths([str(folder / "glass.safetensors".replace("glass", "xl/glass"))])
    qtbot.waitUntil(lambda: not library.scanning, timeout=TIMEOUT)
    assert [i.path for i in rows(library)] == [str(folder / "xl" / "glass.safetensors")]
    library.copy_on_import = True
    library.import_paths([str(folder / "watercolor.safetensors"), str(folder / CORRUPT)])
    qtbot.waitUntil(lambda: not library.scanning, timeout=TIMEOUT)
    copied = next(i for i in rows(library) if i.name == "watercolor")
    assert Path(copied.path).is_relative_to(library.catalog.paths.loras)
    assert CORRUPT in library.error


def test_duplicates_show_copies_of_one_file(qtbot, scanned, tmp_path):
    shutil.copy(tmp_path / "my loras" / "watercolor.safetensors", tmp_path / "my loras" / "copy.safetensors")
    scanned.rescan()
    qtbot.waitUntil(lambda: not scanned.scanning, timeout=TIMEOUT)
    scanned.show = "duplicates"
    (item, paths), = scanned.duplicates
    assert item.name == "watercolor" and len(paths) == 2


def test_a_file_added_to_a_watched_folder_appears(qtbot, scanned, tmp_path):
    scanned.watch._timer.setInterval(50)
    synthetic.write_safetensors(tmp_path / "my loras" / "xl" / "fresh.safetensors", synthetic.peft("sdxl", 2),
                                {"modelspec.title": "Fresh"})
    qtbot.waitUntil(lambda: scanned.total == 7 and not scanned.scanning, timeout=TIMEOUT * 3)
    assert "fresh" in {i.name for i in rows(scanned)}


def test_watched_folders_and_sort_persist(qtbot, scanned, runner, tmp_path):
    scanned.sort, scanned.descending = "size", True
    again = LibraryState(scanned.catalog, runner, scanned.generate,
                         settings=SettingsFile(tmp_path / "settings.json"), watch=False)
    assert again.folders == [str(tmp_path / "my loras")]
    assert (again.sort, again.descending, again.fits_model) == ("size", True, False)
    assert again.query() == ItemQuery(sort="size", descending=True)


def test_drag_carries_the_file_and_the_item_id(scanned):
    item = select(scanned, "glass")
    row = scanned.model.row_of(item.id)
    mime = scanned.model.mimeData([scanned.model.index(row, 0)])
    assert [u.toLocalFile() for u in mime.urls()] == [item.path]
    assert mime.hasFormat(MIME_ITEM) and item_ids(mime) == [item.id]


def test_scan_runs_in_the_worker_while_the_gui_thread_keeps_running(qtbot, library, tmp_path):
    folder = write_many(tmp_path / "many", 2000)
    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(library.runner.is_busy))
    scan_threads: set[int] = set()
    scan = library.catalog.scan

    def watched_scan(*args, **kwargs):
        scan_threads.add(threading.get_ident())
        return scan(*args, **kwargs)

    library.catalog.scan = watched_scan
    timer.start()
    library.add_folder(folder)
    qtbot.waitUntil(lambda: not library.scanning, timeout=60_000)
    timer.stop()
    assert sum(ticks) >= 3  # the timer fired again and again while the scan was running
    assert scan_threads and threading.get_ident() not in scan_threads
    assert library.catalog.items.count("lora") == 2000
    library.fits_model = False
    assert library.total == 2000 and library.model.rowCount() < 2000  # paged
