"""`TimelineState`: the step previews of the current generation, placed on the curves' x axis.

Step k of N (0-based) sits at x = k/(N−1), the same x the curve editor uses (DESIGN.md,
"Curves"), so the strip under the editor shows where the shape forms and where the texture
arrives relative to the gates. Frames of the first image of a Generate job are kept (a batch's
other images would repeat the same steps); a new job of that state clears the strip, and the
frames stay after the job ends until the next one starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.progress import PreviewEvent
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.properties import ObservableObject, Property, same_object
from craftstudio.workers.job_runner import JobRunner


@dataclass(frozen=True)
class TimelineFrame:
    step: int  # 0-based step index k
    total: int  # steps N
    image: Any  # PIL image

    @property
    def x(self) -> float:
        return self.step / (self.total - 1) if self.total > 1 else 0.0


class TimelineState(ObservableObject):
    frames = Property([], equal=same_object)  # TimelineFrames in step order
    frames_changed = Signal(object)
    selected = Property(-1)  # index into frames of the one shown larger, -1 = none
    selected_changed = Signal(int)

    def __init__(self, runner: JobRunner, generate: GenerateState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generate = generate
        runner.started.connect(self._on_started)
        runner.preview.connect(self._on_preview)

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.frames) else -1

    @property
    def selected_frame(self) -> TimelineFrame | None:
        return self.frames[self.selected] if 0 <= self.selected < len(self.frames) else None

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        if job_id in self._generate.job_ids:
            self.selected = -1
            self.frames = []

    @Slot(int, object)
    def _on_preview(self, job_id: int, event: PreviewEvent) -> None:
        if job_id not in self._generate.job_ids or event.image_index != 0:
            return
        frame = TimelineFrame(event.step - 1, event.total, event.image)  # events count steps from 1
        self.frames = [*(f for f in self.frames if f.step != frame.step), frame]
