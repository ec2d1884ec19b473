"""The Library page in the whole window: cards from a scanned folder, the search box, the
"Use as" buttons reaching Generate, thumbnails painted without waiting, drops and details."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from craftstudio.state.library_model import IdRole
from craftstudio.ui.library_card_delegate import PICTURE_BOX
from tests.kit.library_files import write_lora_folder, write_png
from tests.workers.fake_engine import FakeEngine

TIMEOUT = 10_000


def open_library(qtbot, make_studio, tmp_path):
    studio = make_studio(FakeEngine())
    library = studio.library
    library.fits_model = False
    folder = write_lora_folder(tmp_path / "loras")
    write_png(folder / "watercolor.preview.png")
    library.add_folder(folder)
    qtbot.waitUntil(lambda: not library.scanning, timeout=TIMEOUT)
    studio.window.show_area("Library")
    return studio, studio.window.page("Library")


def select_card(page, name: str) -> None:
    model = page.state.model
    row = next(r for r in range(model.rowCount()) if model.item(r).name == name)
    page.grid.setCurrentIndex(model.index(row, 0))


def test_scanned_folder_shows_cards_and_problems(qtbot, make_studio, tmp_path):
    studio, page = open_library(qtbot, make_studio, tmp_path)
    assert page.views.currentWidget() is page.grid
    assert page.state.model.rowCount() == 6 and page.count_label.text().startswith("6 items")
    assert page.folders_button.text() == "1 watched folder"
    page.show_combo.setCurrentIndex(page.show_combo.findData("problems"))
    assert page.views.currentWidget() is page.problems_table
    assert page.problems_table.item(0, 0).text() == "broken.safetensors"
    assert "too short" in page.problems_table.item(0, 1).text()


def test_typing_in_the_search_box_filters_the_cards(qtbot, make_studio, tmp_path):
    _, page = open_library(qtbot, make_studio, tmp_path)
    with qtbot.waitSignal(page.state.model.modelReset, timeout=TIMEOUT):
        qtbot.keyClicks(page.search, "glass fig")
    assert [page.state.model.item(r).name for r in range(page.state.model.rowCount())] == ["glass"]
    page.search.clear()
    page.state.flush_search()
    page.family_combo.setCurrentIndex(page.family_combo.findData("sd2"))
    assert [page.state.model.item(r).name for r in range(page.state.model.rowCount())] == ["pastel"]


def test_use_as_style_button_fills_generate_and_shows_it(qtbot, make_studio, tmp_path):
    studio, page = open_library(qtbot, make_studio, tmp_path)
    select_card(page, "watercolor")
    details = page.details
    assert details.title.text() == "Watercolour" and details.use_style.isEnabled()
    assert not details.use_model.isEnabled()
    qtbot.mouseClick(details.use_style, Qt.MouseButton.LeftButton)
    assert studio.window.current_area == "Generate"
    assert studio.generate.craft.style_lora.endswith("watercolor.safetensors")
    assert "watercolor style <s>" in studio.generate.prompt


def test_editing_tags_in_the_details_reaches_the_catalog(qtbot, make_studio, tmp_path):
    studio, page = open_library(qtbot, make_studio, tmp_path)
    select_card(page, "pastel")
    page.details.tags.setText("dreamy, soft")
    page.details.tags.editingFinished.emit()
    item = studio.library.catalog.items.by_path(tmp_path / "loras" / "sd2" / "pastel.safetensors")
    assert item.tags == ["dreamy", "soft"]
    assert page.tag_combo.findData("dreamy") >= 0
    assert "Caption tags" in page.details.metadata.text() and "ss_" not in page.details.metadata.text()


def test_cards_paint_at_once_and_pictures_follow(qtbot, make_studio, tmp_path):
    _, page = open_library(qtbot, make_studio, tmp_path)
    page.grid.viewport().grab()  # paints now: the picture is not ready yet, a placeholder is drawn
    assert page.delegate.painted >= 6
    model = page.state.model
    item = model.item(next(r for r in range(model.rowCount()) if model.item(r).name == "watercolor"))
    qtbot.waitUntil(lambda: page.delegate.pixmap(item.id, item.preview) is not None, timeout=TIMEOUT)
    assert page.delegate.pixmap(item.id, item.preview).size() == PICTURE_BOX  # cut to the card's box once
    cached = list(Path(page.state.thumbnails.cache_dir).glob("*.jpg"))
    assert len(cached) == 1 and Image.open(cached[0]).size == (96, 64)  # the 96×64 preview, not enlarged


def test_dropping_a_file_adds_it(qtbot, make_studio, tmp_path):
    studio, page = open_library(qtbot, make_studio, tmp_path)
    other = write_lora_folder(tmp_path / "elsewhere")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other / "xl" / "glass.safetensors")),
                  QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    page.dropEvent(event)
    qtbot.waitUntil(lambda: not studio.library.scanning, timeout=TIMEOUT)
    glass = studio.library.catalog.items.by_path(other / "xl" / "glass.safetensors")
    assert glass is not None and glass.in_place


def test_list_view_sorts_through_the_catalog(qtbot, make_studio, tmp_path):
    _, page = open_library(qtbot, make_studio, tmp_path)
    qtbot.mouseClick(page.view_toggle, Qt.MouseButton.LeftButton)
    assert page.views.currentWidget() is page.table
    page.table.horizontalHeader().setSortIndicator(3, Qt.SortOrder.DescendingOrder)  # Size
    assert (page.state.sort, page.state.descending) == ("size", True)
    sizes = [page.state.model.item(r).size for r in range(page.state.model.rowCount())]
    assert sizes == sorted(sizes, reverse=True)
    assert page.sort_combo.currentData() == "size"
    assert page.table.model().index(0, 0).data(IdRole) == page.state.model.item(0).id
