"""Run a training (or the training benchmark) on several processes from inside the app.

`train_in_processes(request, ...)` starts `request.num_processes` processes through accelerate's
own launcher (`python -m accelerate.commands.launch --multi_gpu ...`, which is torchrun), one GPU
each (`gpus` picks which: accelerate's `--gpu_ids`), or CPU processes talking gloo when the device
is the CPU. Each process runs process_entry.py: the same trainer as one process, as a replica
(replicas.py). Nobody needs to type `accelerate launch`; a user who prefers to can still run
`accelerate launch -m craftstudio train ...` and gets the same processes.

The calling process (the CLI, or the app's worker thread) stays in charge, as for a run in
process: it receives the main process's progress, previews and outcome over a loopback socket
(process_link.py) and passes them to its own `progress`; its `cancel` reaches the processes as
`stop`, and they stop together at the next step boundary and keep a checkpoint. The processes
run in their own session, so a Ctrl-C in the terminal reaches only the caller, which turns it
into that clean stop; a second Ctrl-C (or any failure in the caller) ends the whole process
group at once.

What each process prints goes to `processes.log` in the run's private temporary folder, which
is removed after a run that ended (finished, cancelled, or stopped by a user error) and kept,
and named in the message, when the processes failed some other way.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import (
    LoraError,
    ModelError,
    NonFiniteOutput,
    OutOfMemory,
    RequestError,
    UserError,
)
from craftstudio.domain.progress import PreviewEvent, ProgressCallback, ProgressEvent
from craftstudio.domain.training import TrainRequest, TrainResult
from craftstudio.engine.training.process_link import ACK, HELLO, STOP, LineReader, encode

ENTRY = "craftstudio.engine.training.process_entry"
LOG_NAME = "processes.log"
POLL_S = 0.2  # how often the caller looks at its cancel token and the launcher while waiting
GRACE_S = 120.0  # after the main process's outcome, how long the others may take to exit
_ERRORS = {cls.__name__: cls for cls in (UserError, ModelError, LoraError, RequestError, OutOfMemory,
                                          NonFiniteOutput)}


def train_in_processes(request: TrainRequest, *, progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    """Train `request` on `request.num_processes` processes; the result is the main process's."""
    request.validate()
    cpu = uses_cpu(request.device, request.num_processes, request.gpus)
    if progress is not None:
        where = "CPU processes" if cpu else "GPUs"
        progress(ProgressEvent("load", 0, 1, message=f"starting {request.num_processes} training {where}"))
    outcome = run_launched({"kind": "train", "request": request.to_dict(), "resume": resume},
                           processes=request.num_processes, gpus=request.gpus, cpu=cpu,
                           progress=progress, cancel=cancel)
    result = TrainResult.from_dict(outcome)
    result.details["processes"] = request.num_processes
    result.device = f"{request.num_processes} × {result.device.split(':')[0]}"
    return result


def uses_cpu(device: str, processes: int, gpus: tuple[int, ...]) -> bool:
    """Whether the processes run on the CPU; refuses GPUs that are not there."""
    import torch

    if device == "cpu":
        return True
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        if device == "cuda" or gpus:
            raise RequestError("No CUDA GPU is available here: choose device cpu to train in CPU processes.")
        return True  # auto: CPU processes (gloo)
    missing = [g for g in gpus if g >= count]
    if missing:
        raise RequestError(f"There is no GPU {missing[0]}: this computer has {count} (numbered 0 to {count - 1}).")
    if not gpus and processes > count:
        raise RequestError(f"{processes} processes need {processes} GPUs, but this computer has {count}: use at "
                           f"most {count}, or device cpu for CPU processes.")
    return False


def _check_platform() -> None:
    if getattr(sys, "frozen", False):
        raise RequestError("The desktop bundle trains in one process: install CraftStudio with pip to train on "
                           "several GPUs.")
    if sys.platform == "win32":
        raise RequestError("Training on several processes needs Linux (NCCL): train on one GPU here.")


def launch_command(job_file: Path, *, processes: int, gpus: tuple[int, ...], cpu: bool) -> list[str]:
    """accelerate's launcher with every setting given (a user's `accelerate config` is not read
    for what we set here)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", "0"]
    if processes > 1:
        # torchrun; on the CPU each process's Accelerator(cpu=True) takes the gloo backend.
        command.append("--multi_gpu")
    if gpus and not cpu:
        command += ["--gpu_ids", ",".join(str(g) for g in gpus)]
    return [*command, "-m", ENTRY, str(job_file)]


def _environment(processes: int) -> dict[str, str]:
    env = dict(os.environ)
    # The processes import the craftstudio this process runs (a checkout may shadow an install).
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    # The cores are shared: each process gets its part (unless the caller already decided).
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def run_launched(job: dict[str, Any], *, processes: int, gpus: tuple[int, ...] = (), cpu: bool,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run `job` (process_entry.py) on `processes` processes; returns the main process's result
    document, or raises its error (a `UserError` as the same sentence) or `Cancelled`."""
    _check_platform()
    folder = Path(tempfile.mkdtemp(prefix="craftstudio-run-"))
    keep_folder = False
    try:
        with socket.create_server(("127.0.0.1", 0)) as server, open(folder / LOG_NAME, "wb") as log:
            token = secrets.token_hex(16)
            job_file = folder / "job.json"
            job_file.write_text(json.dumps({**job, "address": list(server.getsockname()[:2]), "token": token,
                                            "folder": str(folder)}))
            launcher = subprocess.Popen(launch_command(job_file, processes=processes, gpus=gpus, cpu=cpu),
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=_environment(processes), start_new_session=True)
            session = _Session(server, token, launcher, folder, progress, cancel)
            try:
                outcome = session.run()
            finally:
                _end(launcher)  # at once when the caller failed; a no-op after a normal exit
                session.close()
        try:
            return _result(outcome, folder, launcher.returncode)
        except (UserError, Cancelled) as exc:
            keep_folder = isinstance(exc, TrainingProcessesFailed)
            raise
    finally:
        if not keep_folder:
            shutil.rmtree(folder, ignore_errors=True)


def _result(outcome: dict[str, Any] | None, folder: Path, returncode: int | None) -> dict[str, Any]:
    if outcome is not None and outcome.get("event") == "result":
        return outcome["result"]
    if outcome is not None and outcome.get("event") == "cancelled":
        raise Cancelled("cancelled by the user")
    errors = ([outcome] if outcome is not None else []) + [
        json.loads(path.read_text()) for path in sorted(folder.glob("error-*.json"))]
    # A user error on any process (out of memory on one GPU, say) explains the others' failures.
    for error in errors:
        if error.get("user"):
            raise _ERRORS.get(error.get("type", ""), UserError)(error["message"])
    detail = errors[0]["message"] if errors else f"exit status {returncode}"
    raise TrainingProcessesFailed(f"The training processes stopped unexpectedly ({detail[:300]}); what they "
                                  f"printed is in {folder / LOG_NAME}.")


class TrainingProcessesFailed(UserError):
    """The launched processes failed without a user error to show (a bug, a crash, a kill)."""


class _Session:
    """The caller's side of one launched run: accept the main process, relay its events."""

    def __init__(self, server: socket.socket, token: str, launcher: subprocess.Popen, folder: Path,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self.server, self.token, self.launcher, self.folder = server, token, launcher, folder
        self.progress, self.cancel = progress, cancel
        self.conn: socket.socket | None = None
        self.reader = LineReader()
        self.stop_sent = False
        self.outcome: dict[str, Any] | None = None
        self.selector = selectors.DefaultSelector()
        self.selector.register(server, selectors.EVENT_READ)

    def run(self) -> dict[str, Any] | None:
        finished_at: float | None = None
        while True:
            if self._cancelled() and not self.stop_sent:
                if self.conn is None:  # nothing trained yet, nothing to keep: stop at once
                    _end(self.launcher)
                    raise Cancelled("cancelled by the user")
                self._stop()
            for key, _ in self.selector.select(timeout=POLL_S):
                if key.fileobj is self.server:
                    self._accept()
                else:
                    self._receive()
            if self.launcher.poll() is not None:
                if self.conn is None:  # it may have connected, reported and exited since the select
                    self.server.setblocking(False)
                    with contextlib.suppress(OSError):
                        self._accept()
                while self.conn is not None and self._receive():  # what was sent before the exit
                    pass
                return self.outcome
            if self.outcome is not None:
                finished_at = finished_at or time.monotonic()
                if time.monotonic() - finished_at > GRACE_S:
                    _end(self.launcher)  # a process hung after the main one finished

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(30)
        reader = LineReader()  # the hello may arrive together with the first events
        messages: list[dict[str, Any]] = []
        try:
            while not messages:
                part = conn.recv(65536)
                if not part:
                    break
                messages = reader.feed(part)
        except (OSError, ValueError):
            messages = []
        hello = messages[0] if messages else {}
        if hello.get("event") != HELLO or hello.get("token") != self.token or self.conn is not None:
            conn.close()  # not our process
            return
        conn.settimeout(None)
        self.conn, self.reader = conn, reader
        self.selector.register(conn, selectors.EVENT_READ)
        for message in messages[1:]:
            self._handle(message)

    def _receive(self) -> bool:
        """Handle what the main process sent; False when the line is closed."""
        assert self.conn is not None
        try:
            data = self.conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(self.conn)
            self.conn.close()
            self.conn = None
            return False
        for message in self.reader.feed(data):
            self._handle(message)
        return True

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind in ("progress", "preview"):
            if self.progress is not None:
                self.progress(self._event(message))
            if self._cancelled() and not self.stop_sent:
                self._stop()
            self._send({"event": ACK})
        elif kind in ("result", "cancelled", "error"):
            self.outcome = message

    def _event(self, message: dict[str, Any]) -> ProgressEvent | PreviewEvent:
        if message["event"] == "progress":
            return ProgressEvent(message["stage"], message["step"], message["total"],
                                 message.get("image_index", 0), message.get("image_count", 1),
                                 message.get("message", ""), message.get("values"))
        from PIL import Image

        path = self.folder / Path(message["file"]).name
        with Image.open(path) as image:
            image.load()
            picture = image.copy()
        path.unlink(missing_ok=True)
        return PreviewEvent(message["step"], message["total"], picture, message.get("image_index", 0))

    def _stop(self) -> None:
        self._send({"event": STOP})
        self.stop_sent = True

    def _send(self, message: dict[str, Any]) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.sendall(encode(message))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.selector.close()


def _end(launcher: subprocess.Popen) -> None:
    """Stop the launcher and every process it started (they share its session)."""
    if launcher.poll() is not None:
        return
    try:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait(timeout=30)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
