"""`ExceptionHook`: an exception that escapes a Qt slot is logged and shown, never silent.

Installed as `sys.excepthook` by the app. It writes the traceback to the log (a rotating file
in the user log folder, see app.py) and tells the user in a dialog, in one sentence, with the
log's place; the app keeps running. The dialog is injectable (`show`), so tests record the
message instead of opening a window, and the default dialog is non-modal: nothing waits on it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("craftstudio")
_MAX_TEXT = 300  # an exception's text can be huge (tensor reprs); the log has it whole

ShowFn = Callable[[str], None]


class ExceptionHook:
    def __init__(self, log_file: Path | None, show: ShowFn | None = None) -> None:
        self.log_file = log_file
        self._show = show or show_error_dialog
        self._showing = False
        self.messages: list[str] = []  # what was shown, newest last

    def __call__(self, kind: type[BaseException], value: BaseException,
                 traceback: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
            return
        log.error("uncaught exception", exc_info=(kind, value, traceback))
        message = self.describe(value)
        self.messages.append(message)
        if self._showing:  # the dialog itself failed: the log has it, don't loop
            return
        self._showing = True
        try:
            self._show(message)
        except Exception:  # noqa: BLE001 (showing must never raise out of the hook)
            log.exception("could not show the error dialog")
        finally:
            self._showing = False

    def describe(self, value: BaseException) -> str:
        text = str(value).strip() or type(value).__name__
        if len(text) > _MAX_TEXT:
            text = text[:_MAX_TEXT] + "…"
        where = f" The details are in {self.log_file}." if self.log_file else ""
        return (f"Something went wrong inside CraftStudio: {text}.{where} Your images and settings "
                "are safe; if this keeps happening, please report it with that log.")


_open_dialogs: list[QMessageBox] = []  # keeps non-modal dialogs alive until closed


def show_error_dialog(message: str) -> None:
    """A non-modal message box over the active window (nothing blocks on it)."""
    if QApplication.instance() is None:
        print(message, file=sys.stderr)
        return
    box = QMessageBox(QMessageBox.Icon.Critical, "CraftStudio: unexpected error", message,
                      QMessageBox.StandardButton.Ok, QApplication.activeWindow())
    box.setModal(False)
    box.finished.connect(lambda _result: _open_dialogs.remove(box) if box in _open_dialogs else None)
    _open_dialogs.append(box)
    box.show()
