"""The Generate page's own pictures: image to image, the painted inpainting mask, and hires.

An init image starts the run from that picture (strength: how much is redrawn); a painted mask
limits the redraw to a region. The painted mask lives in the view until a job is submitted; then
`prepare()` writes it as a PNG named by its content hash into the app's `masks/` folder, so the
job, its PNG record and a later restore all point at a file that stays (and one mask painted
twice is one file). Hires enlarges each image by `hires_factor` and redraws it.

Choosing an init image makes the request size follow it (`domain/image_size.py`), as artists
expect from A1111's and Krita's "resize to the picture".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Signal
from PySide6.QtGui import QImage, QImageReader

from craftstudio.domain.atomic_file import atomic_path
from craftstudio.domain.generation import (
    DEFAULT_HIRES_STRENGTH,
    DEFAULT_MASK_BLUR,
    DEFAULT_STRENGTH,
    GenerateRequest,
)
from craftstudio.domain.safetensors_header import UnreadableFile
from craftstudio.library.header import sha256_file
from craftstudio.state.properties import ObservableObject, Property, same_object

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def is_picture_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PICTURE_SUFFIXES


class PictureState(ObservableObject):
    init_image = Property("")  # the picture the run starts from; "" = from noise
    init_image_changed = Signal(str)
    picture_size = Property(None)  # (width, height) of the init image's file; None without one
    picture_size_changed = Signal(object)
    strength = Property(DEFAULT_STRENGTH, persist=True)
    strength_changed = Signal(float)
    mask_blur = Property(DEFAULT_MASK_BLUR, persist=True)
    mask_blur_changed = Signal(int)
    painted_mask = Property(None, equal=same_object)  # QImage (Grayscale8) from the painter, or None
    painted_mask_changed = Signal(object)
    mask_file = Property("")  # the mask file a restored record or the last job used; "" = none
    mask_file_changed = Signal(str)
    hires_factor = Property(1.0, persist=True)  # 1 = off
    hires_factor_changed = Signal(float)
    hires_strength = Property(DEFAULT_HIRES_STRENGTH, persist=True)
    hires_strength_changed = Signal(float)
    hires_steps = Property(0, persist=True)  # 0 = the request's steps
    hires_steps_changed = Signal(int)
    note = Property("")  # a quiet line about the picture (its size, an unreadable file)
    note_changed = Signal(str)

    def __init__(self, masks_folder: Path | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._masks_folder = masks_folder
        self.init_image_changed.connect(self._read_size)

    @property
    def has_mask(self) -> bool:
        return bool(self.mask_file) or _has_white(self.painted_mask)

    def clear(self) -> None:
        """Back to generating from noise."""
        self.init_image = ""
        self.clear_mask()

    def clear_mask(self) -> None:
        self.painted_mask = None
        self.mask_file = ""

    def set_painted_mask(self, mask: QImage | None) -> None:
        """The painter's mask changed: it replaces any mask file until the next job writes it."""
        self.painted_mask = None if mask is None or mask.isNull() else QImage(mask)
        self.mask_file = ""

    def prepare(self) -> str:
        """Before a job: write the painted mask to its file (see module doc). Returns "" or why it
        could not be written (the job then must not run: its mask would be lost)."""
        mask = self.painted_mask
        if not self.init_image or mask is None or not _has_white(mask):
            return ""
        if self._masks_folder is None:
            return "The painted mask cannot be kept: no app folder to write it to."
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        mask.save(buffer, "PNG")
        buffer.close()
        payload = bytes(data.data())
        path = self._masks_folder / f"mask-{hashlib.sha256(payload).hexdigest()[:16]}.png"
        try:
            self._masks_folder.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                with atomic_path(path) as tmp:
                    Path(tmp).write_bytes(payload)
        except OSError as exc:
            return f"The painted mask could not be saved to {path} ({exc.strerror or exc}): free some disk space."
        self.mask_file = str(path)
        self.painted_mask = None  # the file now holds it (the painter keeps showing it)
        return ""

    def request_fields(self) -> dict:
        """The request fields of the current pictures."""
        fields = {"hires_factor": float(self.hires_factor), "hires_strength": float(self.hires_strength),
                  "hires_steps": int(self.hires_steps)}
        if self.init_image:
            fields.update(init_image=self.init_image, strength=float(self.strength),
                          mask=self.mask_file or None, mask_blur=int(self.mask_blur))
        return fields

    def apply_request(self, request: GenerateRequest) -> list[str]:
        """Restore a recorded request's pictures when their files are here and unchanged;
        returns the ones that are not (named for the status line)."""
        missing: list[str] = []
        self.hires_factor = float(request.hires_factor)
        self.hires_strength = float(request.hires_strength)
        self.hires_steps = int(request.hires_steps)
        self.clear()
        if request.init_image is None:
            return missing
        if not _same_file(request.init_image, request.init_image_sha256):
            return [f"init image {Path(request.init_image).name}"]
        self.init_image = request.init_image
        self.strength = float(request.strength)
        self.mask_blur = int(request.mask_blur)
        if request.mask is not None:
            if _same_file(request.mask, request.mask_sha256):
                self.mask_file = request.mask
            else:
                missing.append(f"mask {Path(request.mask).name}")
        return missing

    def _read_size(self, path: str) -> None:
        if not path:
            self.picture_size, self.note = None, ""
            return
        reader = QImageReader(path)
        size = reader.size()
        if not size.isValid():
            self.picture_size = None
            self.note = f"{Path(path).name} cannot be read as a picture ({reader.errorString()})."
            return
        self.picture_size = (size.width(), size.height())
        self.note = f"{Path(path).name} · {size.width()} × {size.height()} px"


def _has_white(mask: QImage | None) -> bool:
    if mask is None or mask.isNull():
        return False
    gray = mask.convertToFormat(QImage.Format.Format_Grayscale8)
    row = gray.bytesPerLine()
    data = bytes(gray.constBits())[: row * gray.height()]
    width = gray.width()
    return any(any(data[y * row: y * row + width]) for y in range(gray.height()))


def _same_file(path: str, sha256: str | None) -> bool:
    if not Path(path).is_file():
        return False
    try:
        return sha256 is None or sha256_file(path) == sha256
    except (OSError, UnreadableFile):  # unreadable now: as good as missing
        return False
