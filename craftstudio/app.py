"""Composition root of the GUI: QApplication, view-models, the job runner, the main window.

Imports only Qt and CraftStudio's torch-free layers; the engine (torch, diffusers) is imported
by the first job on the worker thread, after the window is on screen.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from craftstudio.domain.errors import UserError
from craftstudio.domain.resources import resources_dir
from craftstudio.library.catalog import Catalog
from craftstudio.library.paths import APP_NAME, AppPaths
from craftstudio.state.compare_state import CompareState
from craftstudio.state.device_probe import DeviceProbe
from craftstudio.state.gallery_state import GalleryState
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.library_state import LibraryState
from craftstudio.state.merge_state import MergeState
from craftstudio.state.queue_state import QueueState
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.settings_state import SettingsState
from craftstudio.state.timeline_state import TimelineState
from craftstudio.state.train_state import TrainState
from craftstudio.ui.compare_view import CompareView
from craftstudio.ui.exception_hook import ExceptionHook
from craftstudio.ui.gallery_page import GalleryPage
from craftstudio.ui.library_page import LibraryPage
from craftstudio.ui.main_window import MainWindow
from craftstudio.ui.merge_dialog import MergeDialog
from craftstudio.ui.queue_view import QueueView
from craftstudio.ui.theme import apply_theme
from craftstudio.ui.timeline_strip import TimelineStrip
from craftstudio.ui.train_page import TrainPage
from craftstudio.workers.generate_job import GenerateFn
from craftstudio.workers.job_runner import JobRunner
from craftstudio.workers.thumbnail_loader import cache_dir

log = logging.getLogger("craftstudio")
LOG_NAME = "craftstudio.log"


@dataclass
class Studio:
    """Everything the GUI is made of, wired together; `shutdown()` before the app exits."""

    paths: AppPaths
    runner: JobRunner
    settings: SettingsState
    generate: GenerateState
    window: MainWindow
    catalog: Catalog
    library: LibraryState
    train: TrainState
    gallery: GalleryState
    queue: QueueState
    compare: CompareState
    timeline: TimelineState
    merge: MergeState | None = None
    closed: bool = False

    def shutdown(self) -> None:
        """Save settings and the window's layout, cancel jobs and join the worker thread.
        Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.window.save_layout()
        self.window.hide()  # a running step may take a moment to stop: don't look frozen
        self.generate.save_settings()
        self.train.save_settings()
        self.runner.shutdown()
        self.library.shutdown()  # after the runner: a scan job uses the catalog
        self.catalog.close()


def build_studio(*, engine: GenerateFn | None = None, paths: AppPaths | None = None,
                 pages: Iterable[tuple[str, QWidget]] = ()) -> Studio:
    """Build the GUI objects (a QApplication must exist). `engine` replaces the real one;
    `pages` are (area, widget) pairs that replace or add areas (tests, screenshots)."""
    paths = paths or AppPaths.default()
    runner = JobRunner()
    catalog = open_catalog(paths)
    settings_file = SettingsFile(paths.settings)
    # One probe of the GPUs for Settings and Train, run when the first of them is shown.
    probe = DeviceProbe(runner)
    settings = SettingsState(paths, settings=settings_file, runner=runner, catalog=catalog, probe=probe)
    state = GenerateState(runner, engine=engine, settings=settings_file, outputs=paths.outputs,
                          app_settings=settings, history=catalog.history)
    settings.theme_changed.connect(apply_theme)
    library = LibraryState(catalog, runner, state, settings=settings_file,
                           thumbnail_cache=cache_dir(paths), engine=engine)
    train = TrainState(runner, library_home=paths.root, settings=settings_file, generate=state, probe=probe)
    gallery = GalleryState(catalog, state)
    queue = QueueState(runner)
    compare = CompareState(runner, state, engine=engine, history=catalog.history)  # outputs: Settings
    timeline = TimelineState(runner, state)
    compare.cell_opened.connect(gallery.open_path)
    compare.cells_recorded.connect(gallery.refresh)

    built = [("Library", LibraryPage(library)), ("Train", TrainPage(train)),
             ("Gallery", GalleryPage(gallery))]
    window = MainWindow(state, settings, pages=[*built, *pages], logs=log_folder(paths))
    panel = window.generate_panel
    panel.craft_panel.add_below_editor(TimelineStrip(timeline))
    panel.add_side_page("Queue", QueueView(queue))
    panel.add_side_page("Compare", CompareView(compare))
    window.png_opener = gallery.restore_png  # also finds an A1111 image's LoRAs in the library
    window.folder_adder = library.add_folder  # watched from then on, scanned now
    merge = MergeState(runner, state, folder=lambda: settings.loras_folder)
    merge.merged.connect(lambda path: library.import_paths([path]))
    merge_dialog = MergeDialog(merge, state.choices, window)
    window.merge_opener = merge_dialog.open_for_generate
    queue.confirm_close = lambda question: window.confirm(question, "Jobs are not finished")
    window.close_guards.append(queue.may_close)
    gallery.show_requested.connect(lambda: window.show_area("Gallery"))
    library.start()
    return Studio(paths, runner, settings, state, window, catalog, library, train, gallery, queue,
                  compare, timeline, merge)


def open_catalog(paths: AppPaths) -> Catalog:
    """The library catalog (models, LoRAs, gallery history); in memory for this session if the
    file cannot be opened, so the window still opens (the log says why)."""
    try:
        return Catalog.open(paths.root)
    except UserError as exc:
        log.error("%s The library and the gallery keep this session's items only.", exc)
        return Catalog.in_memory(paths.root)


def log_folder(paths: AppPaths) -> Path:
    """`<CRAFTSTUDIO_HOME>/logs` when the data folder is overridden, else the platform's user log
    folder (~/.local/state/CraftStudio/log, ~/Library/Logs/CraftStudio, ...)."""
    if os.environ.get("CRAFTSTUDIO_HOME") or paths != AppPaths.default():
        return paths.root / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def configure_logging(folder: Path) -> Path | None:
    """Log to stderr and to a rotating `craftstudio.log` in `folder` (where "details in the log"
    points); None if that folder cannot be made (the app still starts)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file: Path | None = folder / LOG_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000,
                                                             backupCount=2, encoding="utf-8"))
    except OSError:
        log_file = None
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return log_file


def main(argv: list[str] | None = None, *, exit_after: float | None = None) -> int:
    """Open the window and run the event loop; `exit_after` seconds closes it (smoke tests)."""
    t0 = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("CraftStudio")
    app.setApplicationDisplayName("CraftStudio")
    app.setDesktopFileName("craftstudio")  # matches packaging/linux/craftstudio.desktop
    icon = resources_dir() / "icons" / "craftstudio-256.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    studio = build_studio()
    apply_theme(studio.settings.theme)
    log_file = configure_logging(log_folder(studio.paths))
    # An exception escaping a Qt slot is logged and shown in a dialog, never a silent death.
    sys.excepthook = ExceptionHook(log_file)
    app.aboutToQuit.connect(studio.shutdown)
    studio.window.show()
    log.info("window shown in %.2f s (log: %s)", time.perf_counter() - t0, log_file)
    if exit_after is not None:
        QTimer.singleShot(round(exit_after * 1000), app.quit)
    return app.exec()
