"""LibraryModel: pages on demand, columns and sorting through the catalog, rows refreshed in place."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt

from craftstudio.library.catalog import Catalog
from craftstudio.library.item_query import ItemQuery
from craftstudio.state import library_model
from craftstudio.state.library_model import COLUMNS, IdRole, LibraryModel, family_label, size_label
from tests.kit.library_files import write_many


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.open(tmp_path / "home")
    cat.scan([write_many(tmp_path / "loras", 25)])
    yield cat
    cat.close()


def test_pages_are_fetched_as_the_view_asks(qtbot, catalog, monkeypatch):
    monkeypatch.setattr(library_model, "PAGE", 10)
    model = LibraryModel(catalog.items)
    model.set_query(ItemQuery())
    assert (model.total, model.rowCount()) == (25, 10) and model.canFetchMore(QModelIndex())
    with qtbot.waitSignal(model.rowsInserted):
        model.fetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 25 and not model.canFetchMore(QModelIndex())
    ids = [model.index(r, 0).data(IdRole) for r in range(25)]
    assert len(set(ids)) == 25 and ids == [i.id for i in catalog.items.page(ItemQuery())]


def test_columns_and_sorting_by_a_column(qtbot, catalog):
    model = LibraryModel(catalog.items)
    model.set_query(ItemQuery())
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())] == \
        [title for _, title in COLUMNS]
    assert model.index(0, 1).data() in ("SD 1.x", "SDXL") and model.index(0, 5).data() == "never"
    with qtbot.waitSignal(model.modelReset):
        model.sort(0, Qt.SortOrder.DescendingOrder)
    labels = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert labels == sorted(labels, reverse=True) and model.query.descending


def test_an_edited_item_is_refreshed_in_its_row(qtbot, catalog):
    model = LibraryModel(catalog.items)
    model.set_query(ItemQuery())
    item = model.item(3)
    edited = catalog.items.edit(item.id, title="Renamed")
    with qtbot.waitSignal(model.dataChanged):
        model.refresh_item(edited)
    assert model.index(3, 0).data() == "Renamed" and model.row_of(item.id) == 3


def test_labels():
    assert (family_label("sdxl"), family_label("unknown")) == ("SDXL", "?")
    assert (size_label(999), size_label(27_800), size_label(2_100_000_000)) == ("999 B", "27.8 KB", "2.1 GB")
