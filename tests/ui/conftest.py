"""A whole studio (window, state, runner) per test, with its data in a temporary folder."""

from __future__ import annotations

import pytest

from craftstudio.app import build_studio
from craftstudio.library.paths import AppPaths
from tests.state.fake_demo import install_demo_assets


@pytest.fixture(autouse=True)
def no_demo(monkeypatch):
    """The panel starts empty, as on a machine without the demo model; tests that want the
    first-run demo defaults install their own."""
    install_demo_assets(monkeypatch, demo_model_dir=lambda: None)


@pytest.fixture
def make_studio(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(tmp_path / "home"))
    built = []

    def make(engine=None):
        studio = build_studio(engine=engine, paths=AppPaths.default())
        qtbot.addWidget(studio.window)
        studio.window.show()
        built.append(studio)
        return studio

    yield make
    for studio in built:
        studio.shutdown()


def type_path(qtbot, picker, path: str) -> None:
    """Type a path into a picker and press Enter, as a user pasting a path does."""
    from PySide6.QtCore import Qt

    qtbot.keyClicks(picker, path)
    qtbot.keyClick(picker, Qt.Key.Key_Return)
