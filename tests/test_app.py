"""The composition root: where the log goes."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from craftstudio.app import log_folder
from craftstudio.library.paths import AppPaths


def test_logs_go_under_the_overridden_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(tmp_path))
    assert log_folder(AppPaths.default()) == tmp_path / "logs"


def test_logs_go_to_the_user_log_folder_by_default(monkeypatch):
    monkeypatch.delenv("CRAFTSTUDIO_HOME", raising=False)
    assert log_folder(AppPaths.default()) == Path(platformdirs.user_log_dir("CraftStudio", appauthor=False))
