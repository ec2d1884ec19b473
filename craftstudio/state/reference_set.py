"""`ReferenceSet`: the reference images of one training set, as the Train page shows them.

The user picks a folder or drops files; the set lists every readable image with its size and
caption, and every file that cannot be used with the reason, in the words and by the rules the
trainer uses (engine/training/data.py: the same suffixes, a full decode, caption files beside
the images are not "unreadable images"). Images are in the trainer's order: a folder's files
sorted by name, case-insensitively, then files added one by one.

Captions: an image's own caption is the text file of its name (`star.png` + `star.txt`, the
kohya convention the trainer reads). Editing a caption writes that file (temp file, then
rename); clearing it deletes the file, so the caption template applies again.

Removing an image takes it out of the set, never off the disk. *Decision:* the request then
carries the chosen files one by one (`LoraTrainRequest.images` takes files as well as folders);
while the set is exactly one folder, it carries the folder, so the equivalent command line stays
short. Both give the trainer the same files in the same order, hence the same weights. A backbone
request takes folders only; a backbone set with images removed is written out as a folder of
links to the chosen files (`selection_folder`), and the request names that folder.

Pillow is imported here (not the engine: state must not load torch); reading a folder of
references takes a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal

from craftstudio.state.properties import ObservableObject, Property, same_object

# The trainer's list (engine/training/data.py IMAGE_SUFFIXES); a test keeps the two in step.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
CAPTION_SUFFIX = ".txt"


@dataclass(frozen=True)
class ReferenceImage:
    path: Path
    width: int
    height: int
    caption: str | None = None  # the caption file's text, None when there is none

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def caption_path(self) -> Path:
        return caption_file(self.path)


def caption_file(image: Path) -> Path:
    return image.with_suffix(CAPTION_SUFFIX)


def unreadable_reason(path: Path) -> str | None:
    """Why the trainer cannot use `path` (its wording), or None if it can."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image file"
    try:
        with Image.open(path) as image:
            image.load()  # a full decode: verify() misses truncated pixel data
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"damaged image ({str(exc).strip()[:80] or type(exc).__name__})"
    return None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def _read_caption(path: Path) -> str | None:
    sidecar = caption_file(path)
    if not sidecar.is_file():
        return None
    try:
        return sidecar.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _folder_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.name.lower())


class ReferenceSet(ObservableObject):
    images = Property([], equal=same_object)  # list[ReferenceImage] in training order
    images_changed = Signal(object)
    unreadable = Property([], equal=same_object)  # list[(path, reason)]
    unreadable_changed = Signal(object)
    folder = Property("")  # the folder picked last ("" when the set is files only)
    folder_changed = Signal(str)
    error = Property("")  # a folder that could not be read, a caption that could not be written
    error_changed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._folders: list[Path] = []
        self._files: list[Path] = []  # added one by one
        self._removed: set[Path] = set()

    # ---------- choosing
    def set_folder(self, folder: str | Path) -> None:
        """Replace the set by the images of `folder`."""
        self._folders, self._files, self._removed = [Path(folder).expanduser().absolute()], [], set()
        self.folder = str(self._folders[0])
        self.reload()

    def add_files(self, paths: list[str | Path]) -> None:
        """Add dropped files (and folders) to the set."""
        known = set(self._files)
        for raw in paths:
            path = Path(raw).expanduser().absolute()
            if path.is_dir():
                if path not in self._folders:
                    self._folders.append(path)
            elif path not in known:
                self._files.append(path)
                known.add(path)
            self._removed.discard(path)
        self.reload()

    def remove(self, path: str | Path) -> None:
        """Take an image out of the set (the file stays on disk)."""
        self._removed.add(Path(path))
        self.images = [image for image in self.images if image.path != Path(path)]

    def clear(self) -> None:
        self._folders, self._files, self._removed = [], [], set()
        self.folder = ""
        self.reload()

    def reload(self) -> None:
        """Read the chosen folders and files again (sizes, captions, readability)."""
        candidates: list[Path] = []
        error = ""
        for folder in self._folders:
            try:
                candidates += _folder_files(folder)
            except OSError as exc:
                error = f"The folder {folder} cannot be read ({exc.strerror or exc}): choose another one."
        candidates += [p for p in self._files if p not in candidates]
        good: list[ReferenceImage] = []
        bad: list[tuple[str, str]] = []
        for path in candidates:
            if not path.is_file():
                bad.append((str(path), "the file no longer exists"))
                continue
            reason = unreadable_reason(path)
            if reason is None:
                if path not in self._removed:
                    good.append(ReferenceImage(path, *_image_size(path), caption=_read_caption(path)))
            else:
                bad.append((str(path), reason))
        used_captions = {caption_file(image.path) for image in good}
        used_captions |= {caption_file(p) for p in self._removed}
        self.unreadable = [(p, r) for p, r in bad if Path(p) not in used_captions]
        self.images = good
        self.error = error

    # ---------- captions
    def set_caption(self, path: str | Path, text: str) -> None:
        """Write (or, for empty text, delete) the caption file of one image."""
        path = Path(path)
        sidecar = caption_file(path)
        text = " ".join(text.split())
        try:
            if text:
                _write_text(sidecar, text + "\n")
            elif sidecar.is_file():
                sidecar.unlink()
        except OSError as exc:
            self.error = (f"The caption file {sidecar} cannot be written ({exc.strerror or exc}): check the "
                          "folder's permissions.")
            return
        self.error = ""
        self.images = [ReferenceImage(i.path, i.width, i.height, text or None) if i.path == path else i
                       for i in self.images]

    # ---------- what the trainer gets
    def paths(self) -> list[Path]:
        return [image.path for image in self.images]

    def smaller_than(self, resolution: int) -> list[ReferenceImage]:
        return [image for image in self.images if resolution and image.short_side < resolution]

    @property
    def is_whole_folder(self) -> bool:
        """The set is exactly one folder's images (nothing removed, nothing added)."""
        return len(self._folders) == 1 and not self._files and not self._removed

    def sources(self) -> tuple[str, ...]:
        """What a `LoraTrainRequest.images` should hold for this set."""
        if self.is_whole_folder:
            return (str(self._folders[0]),)
        return tuple(str(p) for p in self.paths())

    def selection_folder(self, root: Path) -> str:
        """A folder holding exactly this set (for a request that takes a folder): the picked
        folder itself when nothing was removed or added, else a folder of links to the chosen
        images and their caption files under `root`, named by the selection (so the same
        selection gives the same folder, and the same command line)."""
        if self.is_whole_folder:
            return str(self._folders[0])
        files = self.paths()
        digest = hashlib.sha256("\n".join(str(p) for p in files).encode()).hexdigest()[:12]
        target = root / f"selection-{digest}"
        if target.is_dir():
            return str(target)
        staging = Path(tempfile.mkdtemp(prefix=".selection-", dir=_ensure(root)))
        for index, path in enumerate(files):
            # A numbered prefix keeps the chosen order whatever the original names.
            name = f"{index:03d}-{path.name}"
            _link(path, staging / name)
            if caption_file(path).is_file():
                _link(caption_file(path), caption_file(staging / name))
        staging.replace(target)
        return str(target)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _link(src: Path, dest: Path) -> None:
    """A hard link where the file system allows it, else a copy (references are small)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
