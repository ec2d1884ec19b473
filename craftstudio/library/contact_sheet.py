"""Contact sheets: several generated images in one labelled grid PNG that records every cell.

A compare run (the CRAFT explorer) makes one image per fusion setting; the sheet puts them side
by side with a label under each and keeps, in a `craftstudio-sheet` JSON chunk, the label, the
full request, the seed and the saved file of every cell, so any cell can be reopened or made
again. The `parameters` chunk holds the first cell's A1111 text so other tools still show
something useful.

Small images (the 64×64 demo) are enlarged by whole factors with nearest-neighbour scaling, so
the sheet stays crisp; labels are drawn with Pillow's built-in font (no font file needed).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from craftstudio.domain.errors import RequestError, UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.infotext import format_infotext
from craftstudio.library.png_params import CHUNK_PARAMETERS, read_text_chunks

CHUNK_SHEET = "craftstudio-sheet"
MIN_CELL = 192  # cells are enlarged (nearest neighbour, whole factors) to at least this side
LABEL_HEIGHT = 40
PADDING = 8
BACKGROUND = (30, 31, 34)
TEXT = (230, 230, 230)
MUTED = (150, 150, 160)


@dataclass
class SheetCell:
    """One cell: its label (e.g. "no routing"), the request that made it and its image file."""

    label: str
    request: GenerateRequest
    seed: int
    path: str = ""
    detail: str = ""  # a second, smaller line under the label (e.g. the switches)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "detail": self.detail, "seed": self.seed, "path": self.path,
                "request": self.request.to_dict(), "mode": self.request.mode.value,
                "switches": dict(vars(self.request.switches))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SheetCell:
        return cls(str(data["label"]), GenerateRequest.from_dict(data["request"]), int(data["seed"]),
                   str(data.get("path", "")), str(data.get("detail", "")))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # an old Pillow without sized default fonts
        return ImageFont.load_default()


def compose(images: list[Image.Image], cells: list[SheetCell], *, columns: int | None = None,
            title: str = "") -> Image.Image:
    """The sheet image: cells in rows of `columns` (default: a near-square grid), labelled."""
    if len(images) != len(cells) or not images:
        raise ValueError("one image per cell, at least one")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    scale = max(1, math.ceil(MIN_CELL / max(width, height)))
    cell_w, cell_h = width * scale, height * scale
    title_h = LABEL_HEIGHT if title else 0
    sheet = Image.new("RGB", (PADDING + columns * (cell_w + PADDING),
                              title_h + PADDING + rows * (cell_h + LABEL_HEIGHT + PADDING)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    big, small = _font(16), _font(12)
    if title:
        draw.text((PADDING, PADDING + 4), title, fill=TEXT, font=big)
    for index, (image, cell) in enumerate(zip(images, cells, strict=True)):
        row, column = divmod(index, columns)
        x = PADDING + column * (cell_w + PADDING)
        y = title_h + PADDING + row * (cell_h + LABEL_HEIGHT + PADDING)
        tile = image.convert("RGB")
        if tile.size != (cell_w, cell_h):
            tile = tile.resize((cell_w, cell_h), Image.Resampling.NEAREST)
        sheet.paste(tile, (x, y))
        draw.text((x, y + cell_h + 3), _fit(draw, cell.label, big, cell_w), fill=TEXT, font=big)
        if cell.detail:
            draw.text((x, y + cell_h + 22), _fit(draw, cell.detail, small, cell_w), fill=MUTED, font=small)
    return sheet


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """`text`, shortened with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def save_sheet(images: list[Image.Image], cells: list[SheetCell], path: str | Path, *,
               columns: int | None = None, title: str = "", model_name: str = "") -> Path:
    """Compose and write the sheet with its cells' settings; written to a temporary file and
    renamed into place."""
    path = Path(path)
    sheet = compose(images, cells, columns=columns, title=title)
    info = PngImagePlugin.PngInfo()
    first = cells[0]
    info.add_text(CHUNK_PARAMETERS, format_infotext(first.request, model_name, seed=first.seed))
    payload = {"version": 1, "title": title, "columns": columns or math.ceil(math.sqrt(len(cells))),
               "cells": [c.to_dict() for c in cells]}
    info.add_itxt(CHUNK_SHEET, json.dumps(payload, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            sheet.save(fh, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"Could not write {path}: {exc.strerror or exc}; free some disk space or "
                        "choose another folder.") from exc
    return path


def read_sheet(path: str | Path) -> list[SheetCell]:
    """The cells recorded in a contact sheet, in grid order."""
    chunks = read_text_chunks(path)
    if CHUNK_SHEET not in chunks:
        raise RequestError(f"{path} is not a CraftStudio contact sheet (no {CHUNK_SHEET} chunk).")
    try:
        return [SheetCell.from_dict(c) for c in json.loads(chunks[CHUNK_SHEET])["cells"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RequestError(f"{path} has a damaged {CHUNK_SHEET} chunk ({exc}).") from exc
