"""The first-run welcome: shown on a fresh home, closed for good, brought back by show_welcome()."""

from __future__ import annotations

from PySide6.QtCore import Qt

from craftstudio.state.settings_file import SettingsFile


def test_welcome_shows_once_and_comes_back_from_the_help_menu(qtbot, make_studio):
    studio = make_studio()
    panel = studio.window.generate_panel
    welcome = panel.welcome
    assert welcome.isVisible()
    text = welcome.body.text()
    assert "&lt;c&gt;" in text and "&lt;s&gt;" in text and "Library" in text and "Train" in text
    qtbot.mouseClick(welcome.close_button, Qt.MouseButton.LeftButton)
    assert not welcome.isVisible()
    assert SettingsFile(studio.paths.settings).section("generate")["welcome_dismissed"] is True
    studio.window.show_area("Library")
    panel.show_welcome()
    assert welcome.isVisible() and studio.window.current_area == "Generate"


def test_a_dismissed_welcome_stays_closed_in_the_next_session(qtbot, make_studio):
    first = make_studio()
    first.generate.dismiss_welcome()
    first.shutdown()
    second = make_studio()
    assert not second.window.generate_panel.welcome.isVisible()
