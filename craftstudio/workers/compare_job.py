"""`CompareJob`: the CRAFT explorer. One seed, several fusion settings, one contact sheet.

Two kinds of comparison, each a list of labelled cells (`SheetCell`) built from the current
request:

- `fusion_cells`: the ablation grid of DESIGN.md §1 — direct merge, full CRAFT, CRAFT with each
  single component off (backbone, routing, asymmetric CFG, gates), and each LoRA alone (content
  only, style only; both under full CRAFT).
- `sweep_cells`: one value varied over a row — the style LoRA's weight, the content LoRA's
  weight, the CFG scale, or the curve preset.

The job runs the cells one after another on the runner's thread (one job, so the queue shows
one entry and its progress counts cells), saves every cell as an ordinary PNG with its own
request, then writes the sheet with every cell's settings in it (library/contact_sheet).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.curves import load_preset
from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, GenerateResult, LoraRef
from craftstudio.domain.progress import PreviewEvent, ProgressCallback, ProgressEvent
from craftstudio.library.contact_sheet import SheetCell, save_sheet
from craftstudio.library.paths import AppPaths
from craftstudio.workers.generate_job import GenerateFn, engine_generate, free_name, save_new_png

SWEEP_FIELDS = {"style_weight": "style weight", "content_weight": "content weight",
                "cfg_scale": "CFG", "curves": "curves"}
_SINGLE_OFF = (("backbone", "no backbone"), ("routing", "no routing"),
               ("asymmetric", "no asymmetric CFG"), ("gates", "no gates"))


def _switch_text(switches: FusionSwitches) -> str:
    names = {"backbone": "B", "routing": "R", "asymmetric": "A", "gates": "G"}
    # ASCII signs: the sheet's built-in font has no U+2212 minus.
    return " ".join(f"{short}{'+' if getattr(switches, name) else '-'}" for name, short in names.items())


def _cell(label: str, request: GenerateRequest) -> SheetCell:
    detail = f"{request.mode.value} · {_switch_text(request.switches)}"
    return SheetCell(label, request, request.seed, detail=detail)


def fusion_cells(request: GenerateRequest) -> list[SheetCell]:
    """The ablation grid for `request`'s LoRAs, prompt and seed (one image each)."""
    if request.content_lora is None or request.style_lora is None:
        raise RequestError("The fusion compare needs a content LoRA and a style LoRA: choose both in "
                           "the CRAFT fusion section.")
    base = dataclasses.replace(request, batch_count=1, peer_mode=None)  # the grid is CRAFT's ablation
    craft = FusionSwitches()
    cells = [_cell("direct merge", dataclasses.replace(base, switches=FusionSwitches.for_mode("direct"))),
             _cell("CRAFT", dataclasses.replace(base, switches=craft))]
    for name, label in _SINGLE_OFF:
        cells.append(_cell(label, dataclasses.replace(base, switches=dataclasses.replace(craft, **{name: False}))))
    cells.append(_cell("content LoRA only", dataclasses.replace(base, switches=craft, style_lora=None)))
    cells.append(_cell("style LoRA only", dataclasses.replace(base, switches=craft, content_lora=None)))
    return cells


def parse_values(field_name: str, text: str) -> list[Any]:
    """The values of a sweep typed as "0.25, 0.5, 1" (preset names for curves)."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise RequestError("Type the values to compare, separated by commas (e.g. 0.25, 0.5, 1).")
    if field_name == "curves":
        return parts
    try:
        return [float(p) for p in parts]
    except ValueError as exc:
        name = SWEEP_FIELDS.get(field_name, field_name)
        raise RequestError(f"{name[:1].upper() + name[1:]} values must be numbers "
                           f"separated by commas, not {text!r}.") from exc


def sweep_cells(request: GenerateRequest, field_name: str, values: list[Any]) -> list[SheetCell]:
    """One cell per value of `field_name` (a key of SWEEP_FIELDS), everything else as `request`."""
    if field_name not in SWEEP_FIELDS:
        raise RequestError(f"Cannot compare {field_name!r}: choose one of {', '.join(SWEEP_FIELDS)}.")
    base = dataclasses.replace(request, batch_count=1)
    cells = []
    for value in values:
        if field_name in ("style_weight", "content_weight"):
            role = field_name.split("_")[0]
            ref: LoraRef | None = getattr(base, f"{role}_lora")
            if ref is None:
                raise RequestError(f"Comparing the {role} weight needs a {role} LoRA: choose one first.")
            changed = dataclasses.replace(base, **{f"{role}_lora": dataclasses.replace(ref, weight=float(value))})
            label = f"{role} weight {float(value):g}"
        elif field_name == "cfg_scale":
            changed = dataclasses.replace(base, cfg_scale=float(value))
            label = f"CFG {float(value):g}"
        else:
            changed = dataclasses.replace(base, curves=load_preset(str(value)).to_dict())
            label = f"curves {value}"
        cells.append(_cell(label, changed))
    return cells


@dataclass
class CompareOutput:
    cells: list[SheetCell]
    sheet: Path
    images: list[Any] = field(default_factory=list)
    results: list[GenerateResult] = field(default_factory=list)


class CompareJob:
    kind = "compare"

    def __init__(self, cells: list[SheetCell], *, title: str = "", columns: int | None = None,
                 engine: GenerateFn | None = None, outputs: Path | None = None) -> None:
        if not cells:
            raise ValueError("a compare job needs at least one cell")
        self.cells = cells
        self.title = title
        self.columns = columns
        self._engine = engine or engine_generate
        self._outputs = outputs

    @property
    def label(self) -> str:
        return f"Compare: {self.title or f'{len(self.cells)} cells'} · seed {self.cells[0].seed}"

    def duplicate(self) -> CompareJob:
        cells = [dataclasses.replace(c, path="") for c in self.cells]
        return CompareJob(cells, title=self.title, columns=self.columns, engine=self._engine,
                          outputs=self._outputs)

    def run(self, progress: ProgressCallback, cancel: CancelToken) -> CompareOutput:
        folder = (self._outputs or AppPaths.default().outputs)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        count = len(self.cells)
        images, results = [], []
        for index, cell in enumerate(self.cells):
            def forward(event: Any, index: int = index, cell: SheetCell = cell) -> None:
                # Steps of cell i count as image i of the whole job (one progress bar).
                if isinstance(event, PreviewEvent):
                    progress(dataclasses.replace(event, image_index=index))
                elif isinstance(event, ProgressEvent):
                    progress(dataclasses.replace(event, image_index=index, image_count=count,
                                                 message=event.message or cell.label))

            progress(ProgressEvent("cell", index, count, index, count, message=cell.label))
            result = self._engine(cell.request, progress=forward, cancel=cancel)
            cancel.raise_if_cancelled()
            image = result.images[0]
            name = f"{stamp}-compare-{index + 1:02d}-{cell.seed}.png"
            cell.path = str(save_new_png(image, folder / "compare", Path(name).stem, cell.request, cell.seed,
                                      result.model_name))
            images.append(image)
            results.append(result)
        progress(ProgressEvent("save", count, count, count - 1, count, message="writing the contact sheet"))
        # A free name: a second compare within the same second never replaces the first's sheet.
        sheet = save_sheet(images, self.cells, free_name(folder / "compare", f"{stamp}-sheet-{self.cells[0].seed}"),
                           columns=self.columns, title=self.title,
                           model_name=results[0].model_name if results else "")
        return CompareOutput(self.cells, sheet, images, results)
