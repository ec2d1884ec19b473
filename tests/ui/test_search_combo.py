"""The searchable picker: substring search, Enter takes a match or a typed path, Esc gives up."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from craftstudio.state.library_choices import Choice
from craftstudio.ui.search_combo import SearchCombo

CHOICES = [
    Choice("ShapesWorld demo (built in, 64×64)", "/app/resources/models/shapesworld", "a tiny model", builtin=True),
    Choice("Dreamy Watercolor", "/loras/dreamy_wc_v2.safetensors", "SD 1.x · style · wtrclr"),
    Choice("Ink Sketch", "/loras/ink.safetensors", "SD 1.x · style · ink sketch"),
]


@pytest.fixture
def combo(qtbot):
    widget = SearchCombo(lambda: list(CHOICES), "A model folder")
    qtbot.addWidget(widget)
    widget.resize(300, 30)
    widget.show()
    chosen = []
    widget.path_chosen.connect(chosen.append)
    widget.chosen = chosen
    return widget


def test_search_is_a_case_insensitive_substring_of_label_details_or_file_name(combo):
    assert combo.matches("WATER") == ["Dreamy Watercolor"]
    assert combo.matches("wtrclr") == ["Dreamy Watercolor"]  # a trigger in the details
    assert combo.matches("dreamy_wc") == ["Dreamy Watercolor"]  # the file name
    assert combo.matches("sketch") == ["Ink Sketch"]
    assert combo.matches("") == [c.label for c in CHOICES]


def test_typing_and_enter_takes_the_first_match(qtbot, combo):
    combo.setFocus()
    qtbot.keyClicks(combo, "ink")
    assert combo.chosen == []  # typing alone chooses nothing
    qtbot.keyClick(combo, Qt.Key.Key_Return)
    assert combo.chosen == ["/loras/ink.safetensors"]
    assert combo.lineEdit().text() == "Ink Sketch"
    assert combo.lineEdit().toolTip() == "/loras/ink.safetensors\n\nA model folder"


def test_escape_gives_up_the_search(qtbot, combo):
    combo.set_path("/loras/ink.safetensors")
    combo.setFocus()
    combo.lineEdit().selectAll()
    qtbot.keyClicks(combo, "water")
    qtbot.keyClick(combo, Qt.Key.Key_Escape)
    assert combo.chosen == [] and combo.path() == "/loras/ink.safetensors"
    assert combo.lineEdit().text() == "Ink Sketch"


def test_a_typed_path_is_taken_as_it_is_and_shown_elided_with_its_tooltip(qtbot, combo):
    long_path = "/home/artist/stable-diffusion/models/checkpoints/realistic/v5.1-final.safetensors"
    combo.setFocus()
    qtbot.keyClicks(combo, long_path)
    qtbot.keyClick(combo, Qt.Key.Key_Return)
    assert combo.chosen == [long_path] and combo.text() == long_path
    shown = combo.lineEdit().text()
    assert "…" in shown and shown.endswith(".safetensors") and shown.startswith("/home")
    assert combo.lineEdit().toolTip().startswith(long_path + "\n")


def test_clearing_chooses_nothing_and_the_demo_is_still_an_entry(qtbot, combo):
    combo.set_path("/loras/ink.safetensors")
    combo.lineEdit().clear()
    combo.lineEdit().textEdited.emit("")  # what the clear button does
    assert combo.chosen == [""] and combo.path() == ""
    combo.showPopup()
    assert combo.entries()[0] == ("ShapesWorld demo (built in, 64×64)", "/app/resources/models/shapesworld")
    combo.activated.emit(0)
    assert combo.chosen[-1] == "/app/resources/models/shapesworld"
    combo.hidePopup()


def test_set_path_shows_without_emitting(combo):
    combo.set_path("/loras/dreamy_wc_v2.safetensors")
    assert combo.lineEdit().text() == "Dreamy Watercolor" and combo.chosen == []


def test_entries_show_their_thumbnail(qtbot, tmp_path):
    from PIL import Image

    picture = tmp_path / "ink.png"
    Image.new("RGB", (64, 64), "navy").save(picture)
    combo = SearchCombo(lambda: [Choice("Ink", "/loras/ink.safetensors", thumbnail=str(picture)),
                                 Choice("Plain", "/loras/plain.safetensors")])
    qtbot.addWidget(combo)
    assert not combo.itemIcon(0).isNull() and combo.itemIcon(1).isNull()
