"""Cooperative cancellation for long engine calls."""

import threading


class Cancelled(Exception):
    """Raised inside a long call when its `CancelToken` was cancelled; nothing partial is written."""


class CancelToken:
    """Thread-safe flag checked by long-running engine calls between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")
