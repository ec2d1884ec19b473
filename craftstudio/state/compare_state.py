"""`CompareState`: the CRAFT explorer's view-model (fusion grid and one-value sweeps).

Takes the Generate panel's current settings (`GenerateState.request()`, one seed), builds the
cells (`workers.compare_job`), runs them as one `CompareJob` on the shared runner and follows
it: progress by cell, the finished sheet's path and its cells. Each cell is also recorded in
the history store, so the gallery holds it with its settings and the viewer can open it.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.markers import MarkerError, parse_prompt
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.library.contact_sheet import SheetCell
from craftstudio.library.history_store import HistoryStore
from craftstudio.state.generate_state import MAX_RANDOM_SEED, GenerateState
from craftstudio.state.properties import ObservableObject, Property, same_object
from craftstudio.workers.compare_job import (
    SWEEP_FIELDS,
    CompareJob,
    CompareOutput,
    fusion_cells,
    parse_values,
    sweep_cells,
)
from craftstudio.workers.generate_job import GenerateFn
from craftstudio.workers.job_runner import JobRunner

log = logging.getLogger(__name__)
FUSION_COLUMNS = 4


class CompareState(ObservableObject):
    sweep_field = Property("style_weight", persist=True)
    sweep_field_changed = Signal(str)
    sweep_values = Property("0, 0.25, 0.5, 1", persist=True)
    sweep_values_changed = Signal(str)

    is_busy = Property(False)
    is_busy_changed = Signal(bool)
    progress = Property(0.0)
    progress_changed = Signal(float)
    status = Property("")
    status_changed = Signal(str)
    error = Property("")
    error_changed = Signal(str)
    sheet_path = Property("")  # the last finished contact sheet
    sheet_path_changed = Signal(str)
    cells = Property([], equal=same_object)  # its SheetCells (label, request, seed, path)
    cells_changed = Signal(object)
    preview = Property(None, equal=same_object)  # the running cell's latest step preview (PIL)
    preview_changed = Signal(object)
    columns = Property(FUSION_COLUMNS)
    columns_changed = Signal(int)
    # A cell was chosen to be seen in the viewer (its image file).
    cell_opened = Signal(str)
    # The finished cells were recorded in the history store: the gallery shows them.
    cells_recorded = Signal()

    def __init__(self, runner: JobRunner, generate: GenerateState, *, engine: GenerateFn | None = None,
                 outputs: Path | None = None, history: HistoryStore | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._generate = generate
        self._engine = engine
        self._outputs = outputs
        self._history = history
        self._job_id: int | None = None
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    @property
    def job_id(self) -> int | None:
        return self._job_id

    @staticmethod
    def sweep_fields() -> dict[str, str]:
        return dict(SWEEP_FIELDS)

    def run_fusion_grid(self) -> int | None:
        """Queue the ablation grid for the current settings; the job id or None (`error` set)."""
        return self._submit(lambda request: fusion_cells(request), "fusion modes", FUSION_COLUMNS)

    def run_sweep(self) -> int | None:
        """Queue a row varying `sweep_field` over `sweep_values`."""
        field = self.sweep_field

        def build(request):
            return sweep_cells(request, field, parse_values(field, self.sweep_values))
        return self._submit(build, f"{SWEEP_FIELDS.get(field, field)} sweep", None)

    def open_cell(self, index: int) -> bool:
        cell = cell_at(self.cells, index)
        if cell is None or not cell.path:
            return False
        self.cell_opened.emit(cell.path)
        return True

    def cancel(self) -> None:
        if self._job_id is not None and self._runner.cancel(self._job_id):
            self.status = "Cancelling…"

    def _submit(self, build, title: str, columns: int | None) -> int | None:
        if self.is_busy:
            self.error = "A compare is already running: wait for it or cancel it."
            return None
        self.error = ""
        generate = self._generate
        try:
            parse_prompt(generate.prompt)
        except MarkerError as exc:
            self.error = str(exc)
            return None
        if generate.random_seed:
            generate.seed = random.randint(0, MAX_RANDOM_SEED)
        request = generate.request()
        try:
            request.validate()
            cells = build(request)
        except UserError as exc:
            self.error = str(exc)
            return None
        columns = columns or len(cells)
        job = CompareJob(cells, title=f"{title} · seed {request.seed}", columns=columns,
                         engine=self._engine, outputs=self._outputs or self._generate.outputs_folder())
        self._job_id = self._runner.submit(job)
        self.columns = columns
        self.is_busy, self.progress = True, 0.0
        self.status = f"Comparing {len(cells)} settings…"
        return self._job_id

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if job_id != self._job_id:
            return
        count = max(event.image_count, 1)
        if event.stage == "denoise":
            self.progress = min(1.0, (event.image_index + event.fraction) / count)
        elif event.stage == "cell":
            self.status = f"Cell {event.step + 1} of {count}: {event.message}"

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: PreviewEvent) -> None:
        if job_id == self._job_id:
            self.preview = event.image

    @Slot(int, object)
    def _on_finished(self, job_id: int, output: Any) -> None:
        if job_id != self._job_id:
            return
        assert isinstance(output, CompareOutput)
        self._record(output)
        self._job_id = None
        self.progress, self.is_busy, self.preview = 1.0, False, None
        self.cells = list(output.cells)
        self.sheet_path = str(output.sheet)
        self.status = f"{len(output.cells)} cells saved in {output.sheet.name}"

    def _record(self, output: CompareOutput) -> None:
        if self._history is None:
            return
        for cell, result in zip(output.cells, output.results, strict=False):
            try:
                self._history.add_generation(cell.request, [cell.path], seed=cell.seed,
                                             timings={"total": result.seconds},
                                             record={**result.details, "compare": cell.label})
            except UserError as exc:
                log.warning("compare cell not recorded in the history: %s", exc)
        self.cells_recorded.emit()

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._job_id:
            self._job_id, self.is_busy = None, False
            self.error, self.status, self.progress = message, "", 0.0

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job_id:
            self._job_id, self.is_busy = None, False
            self.status, self.progress = "Compare cancelled.", 0.0


def cell_at(cells: list[SheetCell], index: int) -> SheetCell | None:
    return cells[index] if 0 <= index < len(cells) else None
