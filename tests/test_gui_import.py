"""Opening the GUI must not import torch: the window appears first, the engine loads later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, pkgutil, sys, time
t0 = time.perf_counter()
import craftstudio.app
import craftstudio.ui, craftstudio.state, craftstudio.workers
for package in (craftstudio.ui, craftstudio.state, craftstudio.workers):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
from PySide6.QtWidgets import QApplication
app = QApplication([])
studio = craftstudio.app.build_studio()
studio.window.show()
app.processEvents()
shown = time.perf_counter() - t0
studio.shutdown()
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "peft", "craftstudio.engine")
               if m in sys.modules)
print("HEAVY", heavy)
print(f"SHOWN_S {shown:.2f}")
"""


def test_building_the_main_window_does_not_import_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CRAFTSTUDIO_HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout
    # The time is printed for a human (-s), never asserted: timings are not test material.
    print(done.stdout.strip().splitlines()[-1])
