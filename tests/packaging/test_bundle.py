"""The desktop bundle runs with no Python on PATH and a bare environment.

Builds the one-folder bundle with PyInstaller (minutes) unless `CRAFTSTUDIO_BUNDLE` names an
already built `CraftStudio/` folder, then runs it as a double-click would: `env -i` with only a
system PATH, a temporary HOME and XDG folders, and Qt offscreen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
# The build alone takes minutes on two cores: far past the suite's per-test limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(sys.platform == "win32", reason="env -i is POSIX")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("CRAFTSTUDIO_BUNDLE")
    if prebuilt:
        return Path(prebuilt)
    if not _has_pyinstaller():
        pytest.skip("PyInstaller is not installed (pip install -e '.[test]' brings it)")
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import build as bundle_build
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("bundle")
    return bundle_build.build(out, out / "work")


def _has_pyinstaller() -> bool:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        return False
    return True


def _run_bare(bundle: Path, args: list[str], home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = bundle / ("CraftStudio.exe" if sys.platform == "win32" else "CraftStudio")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "XDG_RUNTIME_DIR": str(home / "runtime"),
           "QT_QPA_PLATFORM": "offscreen"}
    (home / "runtime").mkdir(parents=True, exist_ok=True, mode=0o700)
    return subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in env.items()), str(exe), *args],
                          cwd=home, capture_output=True, text=True, timeout=timeout)


def test_bundle_has_the_resources_and_no_test_packages(bundle):
    internal = bundle / "_internal"
    assert (internal / "craftstudio" / "_resources" / "models" / "shapesworld" / "model_index.json").is_file()
    assert (internal / "craftstudio" / "_resources" / "icons" / "craftstudio-256.png").is_file()
    for unwanted in ("pytest", "_pytest", "PyInstaller", "torchvision"):
        assert not (internal / unwanted).exists(), f"{unwanted} should not be bundled"


def test_bundle_runs_the_cli_the_demo_and_the_window_in_a_bare_environment(bundle, tmp_path):
    version = _run_bare(bundle, ["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("CraftStudio "), version.stderr[-2000:]

    out = tmp_path / "x.png"
    generated = _run_bare(bundle, ["generate", "--steps", "4", "--out", str(out)], tmp_path)
    assert generated.returncode == 0, generated.stderr[-3000:]
    with Image.open(out) as image:
        assert image.size == (64, 64)
        assert "a sks <c>" in image.info["parameters"]
    listed = _run_bare(bundle, ["library", "list"], tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]

    gui = _run_bare(bundle, ["gui", "--exit-after", "2"], tmp_path)
    assert gui.returncode == 0, gui.stderr[-3000:]
    # User data went to the platform's folders under the bare HOME, not beside the bundle.
    assert any((tmp_path / "data").rglob("settings.json")) or any((tmp_path / "data").rglob("*.sqlite"))
