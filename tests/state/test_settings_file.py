"""SettingsFile: sections kept apart, atomic writes, unreadable files ignored."""

from __future__ import annotations

import json

from craftstudio.state.settings_file import SettingsFile


def test_sections_are_saved_without_dropping_others(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"library": {"sort": "name"}}))
    settings = SettingsFile(path)
    settings.save_section("generate", {"steps": 30})
    assert json.loads(path.read_text()) == {"library": {"sort": "name"}, "generate": {"steps": 30}}
    assert settings.section("generate") == {"steps": 30}
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left


def test_missing_or_broken_file_reads_as_empty(tmp_path):
    assert SettingsFile(tmp_path / "none.json").load() == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert SettingsFile(broken).section("generate") == {}
    SettingsFile(broken).save_section("generate", {"a": 1})  # repaired on the next save
    assert SettingsFile(broken).section("generate") == {"a": 1}
