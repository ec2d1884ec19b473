"""`SettingsState`: the view-model of the Settings page, and where other states read them.

Every setting here changes something (nothing is shown that the engine ignores):

- `device` and `preview_every` become the `GenerateRequest`'s fields (`request_fields()`);
- `outputs_folder`, `file_name_template` and `cpu_threads` go to each `GenerateJob`
  (`job_options()`): where images are saved, what they are called, torch's CPU threads;
- `models_folder` and `loras_folder` are the folders File › Scan library folders scans into the
  catalog (`scan_library_folders()`); File › Add folder… scans any other (`add_folder()`);
- `theme` is applied to the whole application by the ui layer when it changes;
- `gpu_selection` ("GPUs for a batch", on a computer with several CUDA GPUs) gives each
  `GenerateJob` the devices a batch is split over (`batch_devices()`).

The GPUs are listed by the app's shared `DeviceProbe` (a worker job that imports torch), asked
when the Settings page is first shown (`detect_gpus()`) or answered already for the Train page;
until then `gpu_selection.available` is empty and the page shows no GPU row. A batch is split
when two or more GPUs are ticked, the device is Automatic or CUDA, low VRAM is off and the batch
has several images; otherwise a job runs on one device as always. A remembered choice counts
before the GPUs are listed too (Generate may run before Settings or Train is ever shown): the
job then leaves out, on the worker, any GPU the computer does not have. Once they are listed, a
remembered GPU number the computer lacks is dropped here.

Values change through `change(name, value)`, which validates: an invalid value is refused,
the old one kept, and `error` holds one sentence for the page to show. Accepted values are
saved at once in the settings file's "settings" section; values in that file that fail the
same checks (a hand-edited file) are skipped with a log line. The "window" section holds the
main window's geometry, splitter positions and last area (`window_layout()`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.file_names import DEFAULT_TEMPLATE, check_template, example_name
from craftstudio.domain.generation import DEVICES
from craftstudio.library.catalog import Catalog
from craftstudio.library.paths import AppPaths
from craftstudio.state.device_probe import DeviceProbe
from craftstudio.state.gpu_selection import GpuSelection, parse_numbers
from craftstudio.state.properties import ObservableObject, Property, persisted
from craftstudio.state.settings_file import SettingsFile
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.scan_job import ScanJob, describe_report
from craftstudio.workers.train_job import DeviceInfo

log = logging.getLogger(__name__)

SETTINGS_SECTION = "settings"
WINDOW_SECTION = "window"
THEMES = ("dark", "light", "system")
MAX_PREVIEW_EVERY = 1000
MAX_THREADS = 256
FOLDERS = {"outputs_folder": "outputs", "models_folder": "models", "loras_folder": "LoRAs"}
BATCH_GPUS_KEY = "batch_gpus"  # the ticked GPUs ("0,1") in the settings section


class SettingsState(ObservableObject):
    device = Property("auto", persist=True)
    device_changed = Signal(str)
    preview_every = Property(1, persist=True)  # a step preview every N steps; 0 = none
    preview_every_changed = Signal(int)
    cpu_threads = Property(0, persist=True)  # 0 = torch's default
    cpu_threads_changed = Signal(int)
    fast = Property(False, persist=True)  # compiled UNet with CUDA graphs (GenerateRequest.fast)
    fast_changed = Signal(bool)
    low_vram = Property(False, persist=True)  # CPU offload and VAE tiling for small cards
    low_vram_changed = Signal(bool)
    theme = Property("dark", persist=True)
    theme_changed = Signal(str)
    file_name_template = Property(DEFAULT_TEMPLATE, persist=True)
    file_name_template_changed = Signal(str)
    outputs_folder = Property("", persist=True)
    outputs_folder_changed = Signal(str)
    models_folder = Property("", persist=True)
    models_folder_changed = Signal(str)
    loras_folder = Property("", persist=True)
    loras_folder_changed = Signal(str)

    # Not persisted.
    error = Property("")  # why the last change was refused; "" after an accepted one
    error_changed = Signal(str)
    example_name = Property("")  # what the file name template gives for a sample image
    example_name_changed = Signal(str)
    scan_status = Property("")  # the last folder scan, in words
    scan_status_changed = Signal(str)
    gpu_note = Property("")  # what "GPUs for a batch" does now, in words
    gpu_note_changed = Signal(str)
    # A folder the user added (File › Add folder…); it is being scanned into the catalog.
    folder_added = Signal(str)

    def __init__(self, paths: AppPaths, *, settings: SettingsFile | None = None,
                 runner: JobRunner | None = None, catalog: Catalog | None = None,
                 probe: DeviceProbe | None = None, parent: QObject | None = None) -> None:
        """`catalog`: the app's shared catalog, which scans fill (without one, a scan opens the
        catalog in `paths` for its own use). `probe`: the app's shared device probe (default:
        one of this state's own when there is a runner)."""
        super().__init__(parent)
        self._paths = paths
        self._catalog = catalog
        self._settings = settings
        self._runner = runner
        self._scan_jobs: set[int] = set()
        self._gpus_listed = False  # whether the probe has answered
        self.gpu_selection = GpuSelection(self)
        self.outputs_folder = str(paths.outputs)
        self.models_folder = str(paths.models)
        self.loras_folder = str(paths.loras)
        if settings is not None:
            section = settings.section(SETTINGS_SECTION)
            self._restore(section)
            if isinstance(section.get(BATCH_GPUS_KEY), str):
                self.gpu_selection.chosen = section[BATCH_GPUS_KEY]
        self.example_name = example_name(self.file_name_template)
        self.gpu_selection.chosen_changed.connect(lambda _chosen: self.save())
        for signal in (self.gpu_selection.chosen_changed, self.gpu_selection.available_changed,
                       self.device_changed, self.low_vram_changed):
            signal.connect(self._update_gpu_note)
        self._update_gpu_note()
        self._probe = probe if probe is not None else DeviceProbe(runner, self) if runner is not None else None
        if self._probe is not None:
            self._probe.detected.connect(self.use_devices)
            if self._probe.info is not None:
                self.use_devices(self._probe.info)
        if runner is not None:
            runner.finished.connect(self._on_scan_finished)
            runner.failed.connect(self._on_scan_failed)
            runner.cancelled.connect(self._on_scan_cancelled)

    # ---------- editing
    def change(self, name: str, value: Any) -> bool:
        """Set one setting if it is valid (and save); otherwise keep it and explain in `error`."""
        message = self.check(name, value)
        if message:
            self.error = message
            return False
        if name in FOLDERS:
            value = str(Path(value.strip()).expanduser())
        setattr(self, name, value)
        if name == "file_name_template":
            self.example_name = example_name(value)
        self.error = ""
        self.save()
        return True

    def check(self, name: str, value: Any) -> str:
        """'' if `value` is valid for setting `name`, else one sentence saying what to do."""
        if name == "device":
            return "" if value in DEVICES else f"Unknown device {value!r}: choose {', '.join(DEVICES)}."
        if name == "preview_every":
            return _in_range("Step preview", value, 0, MAX_PREVIEW_EVERY, "0 shows no previews")
        if name == "cpu_threads":
            return _in_range("CPU threads", value, 0, MAX_THREADS, "0 lets torch decide")
        if name in ("fast", "low_vram"):
            return "" if isinstance(value, bool) else f"The {name.replace('_', ' ')} setting is on or off."
        if name == "theme":
            return "" if value in THEMES else f"Unknown theme {value!r}: choose {', '.join(THEMES)}."
        if name == "file_name_template":
            if not isinstance(value, str):
                return "The file name template must be text."
            try:
                check_template(value)
            except UserError as exc:
                return str(exc)
            return ""
        if name in FOLDERS:
            return _check_folder(FOLDERS[name], value)
        return f"There is no setting called {name!r}."

    # ---------- what the settings flow into
    def request_fields(self) -> dict[str, Any]:
        """`GenerateRequest` fields these settings decide."""
        return {"device": self.device, "preview_every": self.preview_every, "fast": self.fast,
                "low_vram": self.low_vram}

    def job_options(self) -> dict[str, Any]:
        """`GenerateJob` keyword arguments these settings decide."""
        return {"outputs": Path(self.outputs_folder), "name_template": self.file_name_template,
                "threads": self.cpu_threads}

    def batch_devices(self, request: Any) -> tuple[str, ...]:
        """The devices `request`'s batch is split over ("cuda:0", "cuda:1", ...), or () for the
        ordinary one-device run (see the module docstring for when)."""
        chosen = self.gpu_selection.numbers() if self._gpus_listed else parse_numbers(self.gpu_selection.chosen)
        if (len(chosen) < 2 or request.batch_count < 2 or request.device not in ("auto", "cuda")
                or request.low_vram):
            return ()
        return tuple(f"cuda:{n}" for n in chosen)

    # ---------- the GPUs
    def detect_gpus(self) -> None:
        """List this computer's GPUs (once, on the worker; at once where there is no GPU driver)."""
        if self._probe is not None:
            self._probe.detect()

    def use_devices(self, info: DeviceInfo) -> None:
        """The probe's answer: its GPUs are those a batch may be split over."""
        self._gpus_listed = True
        self.gpu_selection.available = list(info.gpus)

    def _update_gpu_note(self, *_args: object) -> None:
        chosen = self.gpu_selection.numbers()
        if self.device not in ("auto", "cuda"):
            device = "CPU" if self.device == "cpu" else "Apple GPU"
            note = f"Not used with the {device} as the Device: choose Automatic or NVIDIA GPU (CUDA) above."
        elif self.low_vram:
            note = "Not used while Low VRAM is on: every image then runs on one GPU."
        elif len(chosen) < 2:
            note = ("Tick two or more GPUs to split every batch of several images over them; now a "
                    "batch runs on one GPU.")
        else:
            names = ", ".join(str(n) for n in chosen[:-1]) + f" and {chosen[-1]}"
            note = (f"A batch of several images is split over GPUs {names}, one model on each: the "
                    "same pictures as on one GPU, sooner. Single images run on one GPU.")
        self.gpu_note = note

    def library_folders(self) -> list[Path]:
        return [Path(self.models_folder), Path(self.loras_folder)]

    # ---------- scanning folders into the library
    def scan_library_folders(self) -> int | None:
        """Scan the models and LoRAs folders that exist; None (and `scan_status` says why) if none."""
        folders = [folder for folder in self.library_folders() if folder.is_dir()]
        if not folders:
            self.scan_status = ("Neither the models folder nor the LoRAs folder exists yet: choose "
                                "them on the Settings page.")
            return None
        return self._scan(folders)

    def add_folder(self, folder: str | Path) -> int | None:
        """Scan a folder of models or LoRAs into the library (File › Add folder…)."""
        path = Path(folder).expanduser()
        if not path.is_dir():
            self.scan_status = f"{path} is not a folder: choose a folder of models or LoRAs."
            return None
        self.folder_added.emit(str(path))
        return self._scan([path])

    def _scan(self, folders: list[Path]) -> int | None:
        if self._runner is None:
            return None
        job_id = self._runner.submit(ScanJob(self._catalog or self._paths.root, folders))
        self._scan_jobs.add(job_id)
        self.scan_status = f"Scanning {', '.join(str(f) for f in folders)}…"
        return job_id

    @Slot(int, object)
    def _on_scan_finished(self, job_id: int, report: Any) -> None:
        if job_id in self._scan_jobs:
            self._scan_jobs.discard(job_id)
            self.scan_status = describe_report(report)

    @Slot(int, str)
    def _on_scan_failed(self, job_id: int, message: str) -> None:
        if job_id in self._scan_jobs:
            self._scan_jobs.discard(job_id)
            self.scan_status = message

    @Slot(int)
    def _on_scan_cancelled(self, job_id: int) -> None:
        if job_id in self._scan_jobs:
            self._scan_jobs.discard(job_id)
            self.scan_status = "Scan cancelled; File › Scan library folders finishes it."

    # ---------- persistence
    def save(self) -> None:
        if self._settings is not None:
            self._settings.save_section(SETTINGS_SECTION, {**persisted(self),
                                                           BATCH_GPUS_KEY: self.gpu_selection.chosen})

    def window_layout(self) -> dict[str, Any]:
        """The main window's saved geometry, splitter sizes and last area ({} the first time)."""
        return self._settings.section(WINDOW_SECTION) if self._settings is not None else {}

    def save_window_layout(self, layout: dict[str, Any]) -> None:
        if self._settings is not None:
            self._settings.save_section(WINDOW_SECTION, layout)

    def _restore(self, data: dict[str, Any]) -> None:
        for name, value in persisted(self).items():
            if name not in data:
                continue
            stored = data[name]
            if isinstance(value, int) and isinstance(stored, bool):
                stored = None  # JSON true is not a thread count
            message = self.check(name, stored)
            if message:
                log.warning("setting %s=%r in %s ignored: %s", name, stored, self._settings.path, message)
                continue
            setattr(self, name, str(Path(stored.strip()).expanduser()) if name in FOLDERS else stored)


def _in_range(label: str, value: Any, low: int, high: int, note: str) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        return f"{label} must be a whole number from {low} to {high} ({note}), not {value!r}."
    return ""


def _check_folder(label: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        return f"The {label} folder is empty: choose a folder."
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        return f"The {label} folder {value!r} is not a full path: choose it with Browse…."
    if path.exists() and not path.is_dir():
        return f"The {label} folder {path} is a file, not a folder: choose a folder."
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK) and label == "outputs":
        return f"The outputs folder {path} cannot be written to: choose a folder you own."
    return ""
