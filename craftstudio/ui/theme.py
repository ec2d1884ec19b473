"""The application's look: Qt's Fusion style with a dark, a light or the system's palette.

Dark is the default, as in most creative tools: pictures read better on a neutral dark ground.
`resources/styles/studio.qss` only refers to palette roles (`palette(mid)`, ...), so one style
sheet serves every theme.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from craftstudio.domain.resources import resources_dir

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup

# role -> (dark, light); the light one is a little warmer than Fusion's grey default.
_COLORS: dict[QPalette.ColorRole, tuple[str, str]] = {
    _Role.Window: ("#2b2b2e", "#f3f2ef"),
    _Role.WindowText: ("#e6e6e6", "#1f1f1f"),
    _Role.Base: ("#1f1f22", "#ffffff"),
    _Role.AlternateBase: ("#27272b", "#f7f6f3"),
    _Role.ToolTipBase: ("#3a3a3f", "#ffffe8"),
    _Role.ToolTipText: ("#f0f0f0", "#1f1f1f"),
    _Role.PlaceholderText: ("#8c8c93", "#8a8a8a"),
    _Role.Text: ("#e6e6e6", "#1f1f1f"),
    _Role.Button: ("#35353a", "#e9e7e2"),
    _Role.ButtonText: ("#e6e6e6", "#1f1f1f"),
    _Role.BrightText: ("#ff6b6b", "#c0392b"),
    _Role.Light: ("#4a4a50", "#ffffff"),
    _Role.Midlight: ("#3d3d42", "#e0ded8"),
    _Role.Mid: ("#4f4f55", "#b9b6ae"),
    _Role.Dark: ("#1a1a1c", "#9f9c94"),
    _Role.Shadow: ("#0d0d0e", "#6b6964"),
    _Role.Highlight: ("#3d7fd6", "#2f6fc4"),
    _Role.HighlightedText: ("#ffffff", "#ffffff"),
    _Role.Link: ("#6aa8ff", "#1f5fb4"),
}
_DISABLED = {  # role -> (dark, light) for disabled widgets
    _Role.WindowText: ("#7a7a80", "#9a9a9a"),
    _Role.Text: ("#7a7a80", "#9a9a9a"),
    _Role.ButtonText: ("#7a7a80", "#9a9a9a"),
    _Role.Base: ("#2b2b2e", "#f0efec"),
}


_system_palette: QPalette | None = None  # the platform's, as it was before any theme was applied


def palette_for(theme: str) -> QPalette:
    """The palette of `theme` ("dark", "light"; anything else: the system's)."""
    if theme not in ("dark", "light"):
        return QPalette(_system_palette) if _system_palette is not None else QApplication.palette()
    which = 0 if theme == "dark" else 1
    palette = QPalette()
    for role, colors in _COLORS.items():
        palette.setColor(role, QColor(colors[which]))
    for role, colors in _DISABLED.items():
        palette.setColor(_Group.Disabled, role, QColor(colors[which]))
    return palette


def apply_theme(theme: str) -> None:
    """Give the whole application `theme`'s palette and the studio style sheet."""
    global _system_palette
    app = QApplication.instance()
    if app is None:
        return
    if _system_palette is None:
        _system_palette = QPalette(app.palette())  # follows the desktop's light or dark mode
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # the palettes are made for Fusion; native styles ignore them
    app.setPalette(palette_for(theme))
    style_sheet = resources_dir() / "styles" / "studio.qss"
    if style_sheet.is_file() and not app.styleSheet():
        app.setStyleSheet(style_sheet.read_text(encoding="utf-8"))
