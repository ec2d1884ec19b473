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

from craftstudio.domain.resources import resources_dir
from craftstudio.library.paths import AppPaths
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from craftstudio.state.train_state import TrainState
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
    train: TrainState | None = None

    def shutdown(self) -> None:
        """Save settings, cancel jobs and join the worker thread. Safe to call twice."""
        self.window.hide()  # a running step may take a moment to stop: don't look frozen
        self.generate.save_settings()
        if self.train is not None:
            self.train.save_settings()
        self.runner.shutdown()


def build_studio(*, engine: GenerateFn | None = None, paths: AppPaths | None = None) -> Studio:
    """Build the GUI objects (a QApplication must exist). `engine` replaces the real one."""
    paths = paths or AppPaths.default()
    runner = JobRunner()
    settings = SettingsFile(paths.settings)
    state = GenerateState(runner, engine=engine, settings=settings, outputs=paths.outputs)
    train = TrainState(runner, library_home=paths.root, settings=settings, generate=state)
    return Studio(paths, runner, state, MainWindow(state, train), train)


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
