"""Composition root of the GUI: QApplication, view-models, the job runner, the main window.

Imports only Qt and CraftStudio's torch-free layers; the engine (torch, diffusers) is imported
by the first job on the worker thread, after the window is on screen.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QApplication

from craftstudio.domain.errors import UserError
from craftstudio.domain.resources import resources_dir
from craftstudio.library.catalog import Catalog
from craftstudio.library.paths import AppPaths
from craftstudio.state.compare_state import CompareState
from craftstudio.state.gallery_state import GalleryState
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.queue_state import QueueState
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.timeline_state import TimelineState
from craftstudio.ui.main_window import MainWindow
from craftstudio.workers.generate_job import GenerateFn
from craftstudio.workers.job_runner import JobRunner

log = logging.getLogger("craftstudio")
LOG_NAME = "craftstudio.log"


@dataclass
class Studio:
    """Everything the GUI is made of, wired together; `shutdown()` before the app exits."""

    paths: AppPaths
    runner: JobRunner
    generate: GenerateState
    window: MainWindow
    catalog: Catalog | None = None
    gallery: GalleryState | None = None
    queue: QueueState | None = None
    compare: CompareState | None = None
    timeline: TimelineState | None = None

    def shutdown(self) -> None:
        """Save settings, cancel jobs and join the worker thread. Safe to call twice."""
        self.window.hide()  # a running step may take a moment to stop: don't look frozen
        self.generate.save_settings()
        self.runner.shutdown()
        if self.catalog is not None:
            self.catalog.close()
            self.catalog = None


def build_studio(*, engine: GenerateFn | None = None, paths: AppPaths | None = None) -> Studio:
    """Build the GUI objects (a QApplication must exist). `engine` replaces the real one."""
    paths = paths or AppPaths.default()
    runner = JobRunner()
    catalog = open_catalog(paths)
    state = GenerateState(runner, engine=engine, settings=SettingsFile(paths.settings),
                          outputs=paths.outputs, history=catalog.history)
    gallery = GalleryState(catalog, state)
    queue = QueueState(runner)
    compare = CompareState(runner, state, engine=engine, outputs=paths.outputs, history=catalog.history)
    timeline = TimelineState(runner, state)
    compare.cell_opened.connect(gallery.open_path)
    compare.cells_recorded.connect(gallery.refresh)
    window = MainWindow(state, gallery=gallery, queue=queue, compare=compare, timeline=timeline)
    return Studio(paths, runner, state, window, catalog, gallery, queue, compare, timeline)


def open_catalog(paths: AppPaths) -> Catalog:
    """The library catalog (gallery history); in memory for this session if the file cannot be
    opened, so the window still opens (the log says why)."""
    try:
        return Catalog.open(paths.root)
    except UserError as exc:
        log.error("%s The gallery keeps this session's images only.", exc)
        return Catalog.in_memory(paths.root)


def configure_logging(paths: AppPaths) -> Path | None:
    """Log to stderr and to `<data dir>/craftstudio.log` (where "details in the log" points)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file: Path | None = paths.root / LOG_NAME
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000,
                                                             backupCount=2, encoding="utf-8"))
    except OSError:
        log_file = None
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return log_file


def _log_uncaught(kind, value, traceback) -> None:
    # An exception escaping a Qt slot must not pass silently to stderr: keep it in the log.
    log.error("uncaught exception", exc_info=(kind, value, traceback))


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("CraftStudio")
    app.setStyle("Fusion")
    style_sheet = resources_dir() / "styles" / "studio.qss"
    if style_sheet.is_file():  # optional: the app works unstyled
        app.setStyleSheet(style_sheet.read_text(encoding="utf-8"))
    studio = build_studio()
    log_file = configure_logging(studio.paths)
    sys.excepthook = _log_uncaught
    app.aboutToQuit.connect(studio.shutdown)
    studio.window.show()
    log.info("window shown in %.2f s (log: %s)", time.perf_counter() - t0, log_file)
    return app.exec()
