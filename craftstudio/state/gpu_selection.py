"""`GpuSelection`: which GPUs a training run uses, on a computer that has several.

The GPUs are listed by a worker job (`DeviceProbeJob`, which asks torch), never here: this
module holds only their labels, in the order nvidia-smi numbers them. The choice is a comma
list of GPU numbers ("0,1"), remembered in the settings file by the Train page's state; a
remembered GPU that this computer does not have is left out, so a settings file carried to
another computer never asks for a GPU that is not there. Nothing chosen, or only GPU 0, is the
ordinary one-process run. Several chosen GPUs make a run of one process per GPU, which splits
every batch over them (the batch size must divide evenly; the request says so if not).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from craftstudio.state.properties import ObservableObject, Property


def parse_numbers(text: str) -> list[int]:
    """ "0, 2" → [0, 2]; anything that is not a number is dropped (a hand-edited settings file)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in out:
            out.append(int(part))
    return sorted(out)


class GpuSelection(ObservableObject):
    chosen = Property("")  # "0,1": the GPU numbers asked for (persisted by TrainState)
    chosen_changed = Signal(str)
    available = Property([], equal=lambda a, b: a == b)  # list[str]: one label per GPU, by number
    available_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    @property
    def several(self) -> bool:
        """Whether there is a choice to make (the page shows the GPU row only then)."""
        return len(self.available) > 1

    def numbers(self) -> list[int]:
        """The chosen GPUs that this computer has."""
        return [n for n in parse_numbers(self.chosen) if n < len(self.available)]

    def is_used(self, number: int) -> bool:
        chosen = self.numbers()
        return number in chosen if chosen else number == 0

    def use(self, number: int, on: bool) -> None:
        chosen = self.numbers() or [0]
        chosen = sorted(set(chosen) | {number}) if on else [n for n in chosen if n != number]
        self.chosen = ",".join(str(n) for n in chosen)

    def request_fields(self, device: str) -> dict[str, Any]:
        """`num_processes` and `gpus` for a request on `device` (nothing for the default run)."""
        chosen = self.numbers()
        if device not in ("auto", "cuda") or not chosen or chosen == [0]:
            return {}
        return {"num_processes": len(chosen), "gpus": tuple(chosen)}

    @property
    def summary(self) -> str:
        chosen = self.numbers() or [0]
        if len(chosen) == 1:
            return f"GPU {chosen[0]} (one process)"
        return f"GPUs {', '.join(str(n) for n in chosen)}: one process each, the batch split over them"
