"""Observable properties for view-models: declare once, get a `<name>_changed` signal.

    class GenerateState(ObservableObject):
        steps = Property(20, persist=True)
        steps_changed = Signal(int)

Setting `state.steps = 30` stores the value and emits `steps_changed(30)` only if the value
really changed, so two-way bindings to widgets cannot loop. `persist=True` marks the properties
that `persisted()` / `restore()` save to and load from the settings file.

The signal is declared by hand because PySide registers signals when the class is created;
`__init_subclass__` checks that every property has one, so a missing signal fails at import.
(Idea from krita-ai-diffusion's model/properties.py, kept to what we use.)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject

log = logging.getLogger(__name__)
T = TypeVar("T")


def _equal(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def same_object(a: Any, b: Any) -> bool:
    """Comparison for values whose `==` is costly or meaningless (images, result lists)."""
    return a is b


class Property(Generic[T]):
    def __init__(self, default: T, *, persist: bool = False,
                 equal: Callable[[Any, Any], bool] = _equal) -> None:
        self.default = default
        self.persist = persist
        self.equal = equal
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        try:
            return instance.__dict__[self.name]
        except KeyError:
            # Lists and dicts are copied so instances never share a mutable default.
            value = copy.copy(self.default)
            instance.__dict__[self.name] = value
            return value

    def __set__(self, instance: Any, value: T) -> None:
        if self.equal(self.__get__(instance), value):
            return
        instance.__dict__[self.name] = value
        getattr(instance, f"{self.name}_changed").emit(value)


class ObservableObject(QObject):
    """Base of view-models with `Property` attributes."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _properties(cls):
            if not hasattr(cls, f"{name}_changed"):
                raise TypeError(f"{cls.__name__}.{name} needs a signal {name}_changed")


def _properties(cls: type) -> dict[str, Property]:
    found: dict[str, Property] = {}
    for klass in reversed(cls.__mro__):  # declaration order, base classes first
        found.update({k: v for k, v in vars(klass).items() if isinstance(v, Property)})
    return found


def persisted(obj: ObservableObject) -> dict[str, Any]:
    """The values of `obj`'s persistent properties, by name (JSON-friendly if the values are)."""
    return {name: getattr(obj, name) for name, prop in _properties(type(obj)).items() if prop.persist}


def restore(obj: ObservableObject, data: dict[str, Any]) -> None:
    """Set persistent properties from `data`. Unknown keys and values of the wrong type (a hand-
    edited or older settings file) are skipped with a log line, never an error at start-up."""
    for name, prop in _properties(type(obj)).items():
        if not prop.persist or name not in data:
            continue
        value, expected = data[name], type(prop.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            log.warning("setting %s=%r ignored: expected %s", name, value, expected.__name__)
            continue
        setattr(obj, name, value)
