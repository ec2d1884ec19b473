"""ExceptionHook: an exception escaping a slot is logged and shown, never a silent death."""

from __future__ import annotations

import logging
import logging.handlers

import pytest
from PySide6.QtCore import QObject, QTimer, Signal

from craftstudio.ui.exception_hook import ExceptionHook


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "logs" / "craftstudio.log"
    path.parent.mkdir()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=100_000, backupCount=1, encoding="utf-8")
    logger = logging.getLogger("craftstudio")
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    handler.close()


class Emitter(QObject):
    fired = Signal()


def _broken_slot() -> None:
    raise ValueError("the curve has no points")


def test_an_exception_in_a_slot_is_logged_and_shown(qtbot, log_file, monkeypatch):
    shown: list[str] = []
    hook = ExceptionHook(log_file, show=shown.append)
    monkeypatch.setattr("sys.excepthook", hook)
    emitter = Emitter()
    emitter.fired.connect(_broken_slot)
    QTimer.singleShot(0, emitter.fired.emit)
    qtbot.waitUntil(lambda: bool(shown))
    assert shown == [f"Something went wrong inside CraftStudio: the curve has no points. The details are "
                     f"in {log_file}. Your images and settings are safe; if this keeps happening, please "
                     "report it with that log."]
    text = log_file.read_text(encoding="utf-8")
    assert "uncaught exception" in text and "Traceback" in text and "_broken_slot" in text


def test_a_failing_dialog_is_logged_and_does_not_loop(qtbot, log_file):
    def broken_dialog(message: str) -> None:
        raise RuntimeError("no display")

    hook = ExceptionHook(log_file, show=broken_dialog)
    try:
        raise KeyError("x")
    except KeyError as exc:
        hook(type(exc), exc, exc.__traceback__)
    assert len(hook.messages) == 1
    assert "could not show the error dialog" in log_file.read_text(encoding="utf-8")


def test_long_messages_are_cut_and_empty_ones_named(qtbot):
    hook = ExceptionHook(None, show=lambda message: None)
    assert "x" * 300 + "…." in hook.describe(ValueError("x" * 5000))
    assert hook.describe(RuntimeError()).startswith("Something went wrong inside CraftStudio: RuntimeError.")
    assert "details are in" not in hook.describe(RuntimeError("a"))


def test_the_default_dialog_does_not_block(qtbot):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from craftstudio.ui import exception_hook

    exception_hook.show_error_dialog("Something went wrong inside CraftStudio: test.")
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert boxes and not boxes[-1].isModal()
    assert boxes[-1].text() == "Something went wrong inside CraftStudio: test."
    boxes[-1].close()
    qtbot.waitUntil(lambda: not exception_hook._open_dialogs)
