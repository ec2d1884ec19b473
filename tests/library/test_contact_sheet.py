"""Contact sheets: a labelled grid whose PNG records every cell's request."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import FusionSwitches, GenerateRequest
from craftstudio.library.contact_sheet import MIN_CELL, SheetCell, read_sheet, save_sheet
from craftstudio.library.png_params import read_request


def _cells():
    base = GenerateRequest(model="/m", prompt="a sks <c> in ohwx style <s>", width=64, height=64, seed=3)
    return [SheetCell("CRAFT", base, 3), SheetCell("no gates", dataclasses.replace(base, switches=FusionSwitches(
        gates=False)), 3), SheetCell("direct merge", dataclasses.replace(base, switches=FusionSwitches.for_mode(
            "direct")), 3)]


def test_cells_round_trip_and_small_images_are_enlarged_crisply(tmp_path):
    cells = _cells()
    images = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    images[0].putpixel((0, 0), (255, 255, 255))
    path = save_sheet(images, cells, tmp_path / "sheet.png", columns=3, title="demo")
    back = read_sheet(path)
    assert [(c.label, c.request.mode.value, c.request.switches) for c in back] == [
        ("CRAFT", "craft", FusionSwitches()), ("no gates", "custom", FusionSwitches(gates=False)),
        ("direct merge", "direct", FusionSwitches.for_mode("direct"))]
    assert read_request(path).prompt == cells[0].request.prompt  # A1111 text for other tools
    scale = MIN_CELL // 64 + (MIN_CELL % 64 > 0)
    with Image.open(path) as sheet:
        assert sheet.width > 3 * 64 * scale
        pixels = sheet.convert("RGB")
        # The white corner pixel became a scale×scale block, its neighbours untouched red.
        corner = [(x, y) for x in range(sheet.width) for y in range(60) if pixels.getpixel((x, y)) == (255, 255, 255)]
        xs, ys = {x for x, _ in corner}, {y for _, y in corner}
        assert len(xs) == scale and len(ys) == scale


def test_a_plain_png_is_not_a_sheet(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(RequestError, match="is not a CraftStudio contact sheet"):
        read_sheet(path)
