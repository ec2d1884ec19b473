"""The line between the app and the main training process it launched: JSON lines on a loopback
socket, both ends.

The main process (rank 0) connects to the app, says hello with the run's secret token, then sends
one message per progress event, preview image and final outcome. Every progress and preview
message is answered by the app with `ack` once its own progress callback has seen the event
(preceded by `stop` when the user cancelled meanwhile), and the main process waits for that
answer before its next step. So a cancel made while the app handles step k's event stops the
run before step k+1, exactly as in one process, and the app is never more than one event behind.
If the app goes away, the main process reads end-of-file and stops as if cancelled (keeping a
checkpoint), so no training outlives the app that started it.

Preview images travel as PNG files in the run's private folder, not through the socket.
Nothing is pickled: only JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

HELLO, ACK, STOP = "hello", "ack", "stop"


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode("utf-8")


class LineReader:
    """Splits a byte stream into JSON messages."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


class ParentLink:
    """The main training process's end: send events, learn of a stop."""

    def __init__(self, sock: socket.socket, on_stop: Callable[[], None]) -> None:
        self._sock = sock
        self._on_stop = on_stop
        self._acked = threading.Event()
        self._send_lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._read, name="craftstudio-parent-link", daemon=True).start()

    @classmethod
    def connect(cls, address: tuple[str, int], token: str, on_stop: Callable[[], None]) -> ParentLink:
        sock = socket.create_connection(tuple(address))
        sock.sendall(encode({"event": HELLO, "token": token}))
        return cls(sock, on_stop)

    def send(self, message: dict[str, Any], *, wait: bool = False) -> None:
        """Send `message`; with `wait`, return once the app has handled it (or is gone)."""
        self._acked.clear()
        try:
            with self._send_lock:
                self._sock.sendall(encode(message))
        except OSError:
            self._gone()
            return
        if wait:
            self._acked.wait()

    def _read(self) -> None:
        reader = LineReader()
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                for message in reader.feed(data):
                    if message.get("event") == STOP:
                        self._on_stop()
                    elif message.get("event") == ACK:
                        self._acked.set()
        except (OSError, ValueError):
            pass
        self._gone()

    def _gone(self) -> None:
        # The app closed the line (it quit or crashed): stop as a cancel would, never wait again.
        self.closed = True
        self._on_stop()
        self._acked.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
