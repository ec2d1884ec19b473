"""`ThumbnailCache`: image files decoded off the GUI thread, kept in memory, least recent out.

`get(path)` answers at once: the cached pixmap, or None after queueing a decode on a small
thread pool; `ready(path)` fires (on the GUI thread) when it arrives, and the view repaints
that tile. Decoding uses `QImageReader` with a scaled size, so a large PNG is never decoded at
full size for a tile; small images (the 64×64 demo) are kept as they are and enlarged with
nearest-neighbour scaling when painted, so they stay crisp. A QImage may be made on any thread;
the QPixmap is made on the GUI thread.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap

MAX_ITEMS = 3000  # a few screenfuls of the largest tiles, a few MB of memory


class _Relay(QObject):
    decoded = Signal(str, QImage)


class _Decode(QRunnable):
    def __init__(self, path: str, side: int, relay: _Relay) -> None:
        super().__init__()
        self.path, self.side, self.relay = path, side, relay

    def run(self) -> None:
        reader = QImageReader(self.path)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > self.side:
            reader.setScaledSize(size.scaled(QSize(self.side, self.side), Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()  # a null image when the file is gone or damaged
        self.relay.decoded.emit(self.path, image)


class ThumbnailCache(QObject):
    ready = Signal(str)

    def __init__(self, side: int = 256, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._relay = _Relay()
        self._relay.decoded.connect(self._on_decoded, Qt.ConnectionType.QueuedConnection)

    def get(self, path: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path and path not in self._pending:
            self._pending.add(path)
            self._pool.start(_Decode(path, self.side, self._relay))
        return None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def forget(self, path: str) -> None:
        self._pixmaps.pop(path, None)

    def wait(self, msecs: int = -1) -> bool:
        """Wait for the decodes in flight (benchmarks and tests; the GUI never waits)."""
        return self._pool.waitForDone(msecs)

    @Slot(str, QImage)
    def _on_decoded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._pixmaps[path] = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        while len(self._pixmaps) > MAX_ITEMS:
            self._pixmaps.popitem(last=False)
        self.ready.emit(path)
