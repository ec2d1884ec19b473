"""`WelcomePanel`: a short first-run note at the top of the Generate page.

Says what the demo is, what the `<c>`/`<s>` markers in its prompt do, and the two next steps
(own models in the Library, a LoRA of one's own in Train). Closing it sets
`GenerateState.welcome_dismissed`, which is saved; the Help menu brings it back through
`GenerateState.show_welcome()` (or `GeneratePanel.show_welcome()`).
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from craftstudio.state.generate_state import GenerateState
from craftstudio.ui.curve_editor import COLORS

TITLE = "Welcome to CraftStudio"


def welcome_text(content_trigger: str = "", style_trigger: str = "") -> str:
    content, style = COLORS["content"].name(), COLORS["style"].name()
    triggers = (f" (triggers <i>{escape(content_trigger)}</i> and <i>{escape(style_trigger)}</i>)"
                if content_trigger and style_trigger else "")
    return (
        "This is the built-in <b>ShapesWorld demo</b>: a tiny model of shapes and styles that runs on "
        f"any computer in seconds, with a content LoRA and a style LoRA{triggers}. Press "
        "<b>Generate</b> to see CRAFT combine them.<br>"
        f"In the prompt, <b style='color:{content}'>&lt;c&gt;</b> tags the phrase before it as "
        f"<b style='color:{content}'>content</b> (what to draw) and "
        f"<b style='color:{style}'>&lt;s&gt;</b> as <b style='color:{style}'>style</b> (how to draw "
        "it); <i>&lt;s:0.25&gt;</i> sets how strongly that LoRA acts (γ).<br>"
        "Next: add your own models and LoRAs in the <b>Library</b>, or train a LoRA of your own "
        "pictures in <b>Train</b>."
    )


class WelcomePanel(QFrame):
    def __init__(self, state: GenerateState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("welcomePanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#welcomePanel { border: 1px solid palette(mid); border-radius: 4px; "
                           "background: palette(alternate-base); }")
        title = QLabel(f"<b>{TITLE}</b>")
        demo = state.library.demo()
        words = [state.library.triggers(getattr(demo, f"{role}_lora")) if demo else []
                 for role in ("content", "style")]
        self.body = QLabel(welcome_text(*(w[0] if w else "" for w in words)))
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.close_button = QToolButton(text="✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close this note (Help ▸ Welcome shows it again)")
        self.close_button.clicked.connect(state.dismiss_welcome)
        header = QHBoxLayout()
        header.addWidget(title, 1)
        header.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 8)
        layout.addLayout(header)
        layout.addWidget(self.body)
        state.welcome_dismissed_changed.connect(lambda dismissed: self.setVisible(not dismissed))
        self.setVisible(not state.welcome_dismissed)
