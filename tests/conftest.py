"""Test set-up: offline, Qt offscreen, tiny real models, and no QThread left running."""

from __future__ import annotations

import os

# Before anything imports Qt or Hugging Face libraries.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


class NetworkBlocked(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkBlocked("tests must not use the network")


_real_connect = socket.socket.connect


def _connect_local_only(self, address):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _real_connect(self, address)
    raise NetworkBlocked(f"tests must not use the network (tried {address!r})")


socket.socket.connect = _connect_local_only  # type: ignore[method-assign]
socket.create_connection = _refuse  # type: ignore[assignment]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CRAFTSTUDIO_GPU_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="GPU test: set CRAFTSTUDIO_GPU_TESTS=1 on a machine with a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory) -> Path:
    """Folder of a tiny SD1.x-layout diffusers pipeline (built once per test session)."""
    from tests.kit.tiny_models import build_sd1

    return build_sd1(tmp_path_factory.mktemp("tiny") / "tiny-sd1")


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    """Folder of a tiny SDXL-layout diffusers pipeline (built once per test session)."""
    from tests.kit.tiny_models import build_sdxl

    return build_sdxl(tmp_path_factory.mktemp("tiny") / "tiny-sdxl")


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(request):
    """Fail any test that leaves a QThread running (the commonest QThread bug)."""
    import sys

    if "PySide6.QtCore" not in sys.modules and "qtbot" not in request.fixturenames:
        yield
        return
    from PySide6.QtCore import QThread

    started: list = []
    original = QThread.start

    def tracking_start(self, *args):
        started.append(self)
        return original(self, *args)

    QThread.start = tracking_start
    try:
        yield
    finally:
        QThread.start = original
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object is already gone: not running
            pass
    if running:
        for thread in running:
            thread.quit()
            thread.wait(5000)
        pytest.fail(f"{len(running)} QThread(s) still running after the test; stop them on shutdown")
