"""A stand-in `craftstudio.demo.assets` for first-run tests.

The real module may not be installed yet (it is written alongside), and its answers depend on
which demo files exist; tests install this one instead, with the functions they need.
"""

from __future__ import annotations

import sys
import types

import craftstudio.demo

MODULE = "craftstudio.demo.assets"


def install_demo_assets(monkeypatch, **functions) -> types.ModuleType:
    """Make `from craftstudio.demo import assets` give a module holding exactly `functions`
    (e.g. demo_model_dir=lambda: None); undone by monkeypatch after the test."""
    module = types.ModuleType(MODULE)
    for name, function in functions.items():
        setattr(module, name, function)
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setattr(craftstudio.demo, "assets", module, raising=False)
    return module


def remove_demo_assets(monkeypatch) -> None:
    """Make that import fail, as before the demo module existed."""
    monkeypatch.setitem(sys.modules, MODULE, None)  # import raises ImportError
    monkeypatch.delattr(craftstudio.demo, "assets", raising=False)
