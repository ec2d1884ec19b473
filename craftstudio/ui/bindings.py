"""Two-way bindings between `state` properties and common widgets.

Each binder sets the widget from the state once, then keeps both in step. Loops stop by
themselves: a state property emits only on a real change, and the widget setters here are
skipped when the widget already shows the value (QPlainTextEdit would reset the cursor).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
)


def _changed(state: Any, name: str):
    return getattr(state, f"{name}_changed")


def bind_line_edit(state: Any, name: str, widget: QLineEdit) -> None:
    def to_widget(value: str) -> None:
        if widget.text() != value:
            widget.setText(value)

    to_widget(getattr(state, name))
    _changed(state, name).connect(to_widget)
    widget.textChanged.connect(lambda text: setattr(state, name, text))


def bind_plain_text(state: Any, name: str, widget: QPlainTextEdit) -> None:
    def to_widget(value: str) -> None:
        if widget.toPlainText() != value:
            widget.setPlainText(value)

    to_widget(getattr(state, name))
    _changed(state, name).connect(to_widget)
    widget.textChanged.connect(lambda: setattr(state, name, widget.toPlainText()))


def bind_spin(state: Any, name: str, widget: QSpinBox | QDoubleSpinBox) -> None:
    convert = float if isinstance(widget, QDoubleSpinBox) else int
    widget.setValue(getattr(state, name))
    _changed(state, name).connect(widget.setValue)
    widget.valueChanged.connect(lambda value: setattr(state, name, convert(value)))


def bind_check(state: Any, name: str, widget: QAbstractButton) -> None:
    widget.setChecked(getattr(state, name))
    _changed(state, name).connect(widget.setChecked)
    widget.toggled.connect(lambda checked: setattr(state, name, bool(checked)))


def bind_combo(state: Any, name: str, widget: QComboBox) -> None:
    """The combo's item data are the property's values."""

    def to_widget(value: Any) -> None:
        index = widget.findData(value)
        if index >= 0:
            widget.setCurrentIndex(index)

    to_widget(getattr(state, name))
    _changed(state, name).connect(to_widget)
    widget.currentIndexChanged.connect(
        lambda _index: widget.count() and setattr(state, name, widget.currentData()))
