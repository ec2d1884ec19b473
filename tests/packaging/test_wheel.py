"""The wheel carries the resources: installed outside the checkout, the demo still runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from craftstudio.domain import resources

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_of_craftstudio_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "craftstudio").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "craftstudio._resources" in listed


def test_resources_come_from_the_override_then_the_checkout_then_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("CRAFTSTUDIO_RESOURCES", raising=False)
    assert resources.resources_dir() == ROOT / "resources"
    installed = tmp_path / "site" / "craftstudio"
    monkeypatch.setattr(resources, "_PACKAGE", installed)
    assert resources.resources_dir() == installed / "_resources"
    monkeypatch.setenv("CRAFTSTUDIO_RESOURCES", str(tmp_path / "mine"))
    assert resources.curves_dir() == tmp_path / "mine" / "curves"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_and_opens_the_window(tmp_path):
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # Offline: the build uses the setuptools already installed, the install needs no dependency.
    built = _run(pip + ["wheel", str(ROOT), "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist)],
                 work, dict(os.environ))
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("craftstudio-*.whl")
    installed = _run(pip + ["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                     work, dict(os.environ))
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (site / "craftstudio" / "_resources" / "models" / "shapesworld" / "model_index.json").is_file()

    env = {**os.environ, "PYTHONPATH": str(site), "CRAFTSTUDIO_HOME": str(tmp_path / "home"),
           "QT_QPA_PLATFORM": "offscreen"}
    env.pop("CRAFTSTUDIO_RESOURCES", None)
    where = _run([sys.executable, "-c", "import craftstudio.domain.resources as r; print(r.resources_dir())"],
                 work, env)
    assert where.stdout.strip() == str(site / "craftstudio" / "_resources"), where.stderr
    out = work / "x.png"
    generated = _run([sys.executable, "-m", "craftstudio", "generate", "--steps", "4", "--out", str(out)],
                     work, env)
    assert generated.returncode == 0, generated.stderr[-2000:]
    params = _run([sys.executable, "-m", "craftstudio", "library", "params", str(out)], work, env)
    assert params.returncode == 0, params.stderr
    assert "steps:        4" in params.stdout and "_resources" in params.stdout, params.stdout
    gui = _run([sys.executable, "-m", "craftstudio", "gui", "--exit-after", "1"], work, env)
    assert gui.returncode == 0, gui.stderr[-2000:]
