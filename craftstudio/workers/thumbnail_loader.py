"""`ThumbnailLoader`: preview images decoded and scaled off the GUI thread, cached on disk.

The Library page asks for the thumbnails of the cards it paints; it never waits for one. A
request goes to a small thread pool of its own (the job runner serves long jobs, and a scan must
not hold up the pictures); the newest request runs first, so the cards on screen come before
those the user scrolled past. Each source image is scaled once to at most `SIZE` pixels and
kept as a JPEG in the cache folder, keyed by the source's path, size and modification time, so
the next start reads a few KB per card instead of decoding a full preview. The result travels
as plain RGB bytes (`Thumbnail`); the view turns them into a pixmap.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from craftstudio.library.paths import APP_NAME, AppPaths

log = logging.getLogger(__name__)

SIZE = 192  # pixels, the longer side; cards show it at up to this size
THREADS = 2
JPEG_QUALITY = 88


@dataclass(frozen=True)
class Thumbnail:
    key: str
    width: int
    height: int
    rgb: bytes  # width * height * 3 bytes, rows top to bottom


def cache_dir(paths: AppPaths) -> Path:
    """Where thumbnails are cached: the platform's user cache folder for the default library,
    `<library>/cache/thumbnails` for one chosen with CRAFTSTUDIO_HOME or --home."""
    if not os.environ.get("CRAFTSTUDIO_HOME") and paths.root == AppPaths.default().root:
        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "thumbnails"
    return paths.root / "cache" / "thumbnails"


def cache_name(source: Path, size: int = SIZE) -> str | None:
    """The cache file name of `source` scaled to `size`; None if the source is gone."""
    try:
        st = source.stat()
    except OSError:
        return None
    ident = f"{source.absolute()}|{st.st_size}|{st.st_mtime_ns}|{size}"
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".jpg"


def make_thumbnail(source: Path, cache_dir: Path | None, size: int = SIZE) -> tuple[int, int, bytes] | None:
    """(width, height, RGB bytes) of `source` scaled to fit `size`, through the disk cache.
    None if the image cannot be read (the card then shows its kind instead of a picture)."""
    name = cache_name(source, size)
    if name is None:
        return None
    cached = cache_dir / name if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            with Image.open(cached) as im:
                im = im.convert("RGB")
                return im.width, im.height, im.tobytes()
        except (OSError, UnidentifiedImageError):
            pass  # a damaged cache file: make it again
    try:
        with Image.open(source) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale directly
            im = im.convert("RGBA") if im.mode in ("P", "LA", "RGBA") else im.convert("RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            if im.mode == "RGBA":  # transparent previews are shown on the card's dark background
                flat = Image.new("RGB", im.size, (38, 38, 42))
                flat.paste(im, mask=im.getchannel("A"))
                im = flat
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        log.info("no thumbnail for %s: %s", source, exc)
        return None
    if cached is not None:
        _write_jpeg(im, cached)
    return im.width, im.height, im.tobytes()


def _write_jpeg(image: Image.Image, dest: Path) -> None:
    tmp: str | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".thumb.", suffix=".tmp", dir=dest.parent)
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, "JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, dest)
    except OSError as exc:  # a full or read-only cache only costs speed
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        log.info("thumbnail cache not written (%s)", exc)


class _Relay(QObject):
    """Lives on the GUI thread; the pool's threads emit through it (queued to the loader)."""

    done = Signal(str, str, object)  # key, source, (w, h, rgb) or None


class _Decode(QRunnable):
    def __init__(self, relay: _Relay, key: str, source: str, cache_dir: Path | None, size: int) -> None:
        super().__init__()
        self._relay, self._key, self._source = relay, key, source
        self._cache_dir, self._size = cache_dir, size

    def run(self) -> None:
        try:
            result = make_thumbnail(Path(self._source), self._cache_dir, self._size)
        except Exception:  # never let a worker thread die on a strange file
            log.exception("thumbnail of %s failed", self._source)
            result = None
        self._relay.done.emit(self._key, self._source, result)


class ThumbnailLoader(QObject):
    """`request(key, source)` → later `ready(key, Thumbnail)` or `failed(key)`, on the GUI thread."""

    ready = Signal(str, object)
    failed = Signal(str)

    def __init__(self, cache_dir: Path | None, *, size: int = SIZE, threads: int = THREADS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache_dir = cache_dir
        self.size = size
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._pending: dict[str, str] = {}  # key -> source, queued or running
        self._order = itertools.count(1)

    def request(self, key: str, source: str) -> None:
        """Ask for the thumbnail of `source`; a request already pending for `key` is not repeated."""
        if self._pending.get(key) == source:
            return
        self._pending[key] = source
        # Newest first: the cards just scrolled into view.
        self._pool.start(_Decode(self._relay, key, source, self.cache_dir, self.size),
                         min(next(self._order), 2**30))

    def forget_queued(self) -> None:
        """Drop requests not started yet (the view now shows other cards)."""
        self._pool.clear()
        self._pending.clear()

    def is_pending(self, key: str) -> bool:
        return key in self._pending

    def wait_idle(self, msecs: int = -1) -> bool:
        """Wait for the pool's threads (shutdown, tests); results still arrive through events."""
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()

    @Slot(str, str, object)
    def _on_done(self, key: str, source: str, result: object) -> None:
        if self._pending.get(key) == source:
            del self._pending[key]
        if result is None:
            self.failed.emit(key)
            return
        width, height, rgb = result  # type: ignore[misc]
        self.ready.emit(key, Thumbnail(key, width, height, rgb))
