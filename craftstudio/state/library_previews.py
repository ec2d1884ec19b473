"""`LibraryPreviews`: the preview picture of a library item, chosen or made by the user.

Three ways, all for the item selected on the Library page:

- "Set preview from image…": any PNG/JPEG/WebP; a copy is kept in the library's `previews/`
  folder (never a sidecar next to the user's file), named anew each time so every view shows
  the new picture at once;
- "Use the last generated image": the newest image of the Generate page;
- "Make a preview": one generation on the job runner with the Generate page's model and
  settings, the item as its LoRA (its trigger phrase tagged with its role's marker) or as the
  model, saved under `previews/`; the item's preview is set when the job finishes.

A preview the user set is kept when scans run again (`ItemStore.set_preview`).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QObject, Signal, Slot

from craftstudio.domain.errors import UserError
from craftstudio.domain.family import Family
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.trigger_phrases import insert_trigger
from craftstudio.library.catalog import Catalog
from craftstudio.library.header import UnreadableFile, read_header
from craftstudio.library.identify import NotRecognised, identify, identify_folder
from craftstudio.library.records import Item
from craftstudio.state.properties import ObservableObject, Property
from craftstudio.workers.generate_job import GenerateJob, GenerateOutput

if TYPE_CHECKING:
    from craftstudio.state.library_state import LibraryState

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PREVIEW_STEPS_MAX = 30  # a preview need not be a finished picture


def model_family(catalog: Catalog, model: str) -> str:
    """The family of base model `model` (a path), from the catalog or its own files; "" if unknown.
    Called on every edit of the Generate page's model field: reads a header or a config, never hashes."""
    model = model.strip()
    if not model:
        return ""
    try:
        item = catalog.items.by_path(model)
        if item is not None:
            family = item.family
        elif Path(model).is_dir():
            family = identify_folder(Path(model)).family.value
        elif Path(model).suffix.lower() == ".safetensors" and Path(model).is_file():
            family = identify(read_header(model), model).family.value  # the header only: no hashing
        else:
            return ""
    except (UserError, UnreadableFile, NotRecognised, OSError, ValueError):
        return ""
    return "" if family == Family.UNKNOWN.value else family


class LibraryPreviews(ObservableObject):
    making = Property(False)  # a "Make a preview" job is queued or running
    making_changed = Signal(bool)

    def __init__(self, library: LibraryState, parent: QObject | None = None) -> None:
        super().__init__(parent or library)
        self._library = library
        self._job: int | None = None
        self._job_item: str | None = None
        runner = library.runner
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)

    @property
    def _catalog(self) -> Catalog:
        return self._library.catalog

    def set_from_image(self, image: str | Path, item_id: str | None = None) -> bool:
        """Make `image` the preview of the selected item (or of `item_id`)."""
        item = self._target(item_id)
        if item is None:
            return False
        source = Path(image)
        try:
            with Image.open(source) as im:
                im.verify()
        except FileNotFoundError:
            self._library.error = f"{source} does not exist: choose another image."
            return False
        except (OSError, UnidentifiedImageError, ValueError):
            self._library.error = f"{source} is not an image CraftStudio can read: choose a PNG, JPEG or WebP file."
            return False
        suffix = source.suffix.lower() if source.suffix.lower() in IMAGE_SUFFIXES else ".png"
        folder = self._catalog.paths.previews
        dest = folder / f"{item.id[:16]}-user-{time.time_ns()}{suffix}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name("." + dest.name + ".tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(dest)
        except OSError as exc:
            self._library.error = (f"Cannot copy {source} into {folder} ({exc.strerror or exc}): make the "
                                   "library folder writable.")
            return False
        self._apply(item, dest)
        return True

    def use_last_generated(self) -> bool:
        paths = self._library.generate.image_paths
        if not paths:
            self._library.error = "Nothing generated yet in this session: generate an image first."
            return False
        return self.set_from_image(paths[-1])

    def make(self) -> int | None:
        """Queue one generation that shows the selected item; its image becomes the preview."""
        item = self._target(None)
        if item is None or self.making:
            return None
        request = self._request(item)
        if request is None:
            return None
        try:
            request.validate()
        except UserError as exc:
            self._library.error = str(exc)
            return None
        job = GenerateJob(request, engine=self._library.engine,
                          outputs=self._catalog.paths.previews / "made")
        self._job = self._library.runner.submit(job)
        self._job_item = item.id
        self.making = True
        self._library.status = f"Making a preview of {item.label}…"
        return self._job

    def _request(self, item: Item) -> GenerateRequest | None:
        generate = self._library.generate
        base = generate.request()
        subject = item.triggers[0] if item.triggers else item.label
        if item.kind == "model":
            return dataclasses.replace(base, model=item.path, prompt=subject, content_lora=None, style_lora=None,
                                       backbone=None, batch_count=1, steps=min(base.steps, PREVIEW_STEPS_MAX))
        if item.kind != "lora":
            self._library.error = f"{item.label} is a {item.kind}: previews are made for LoRAs and base models."
            return None
        if not base.model:
            self._library.error = "Choose a base model on the Generate page first: the preview is made with it."
            return None
        role = item.role if item.role in ("content", "style") else "content"
        ref = item.lora_ref()
        fields: dict[str, Any] = {"content_lora": ref, "style_lora": None} if role == "content" \
            else {"content_lora": None, "style_lora": ref}
        return dataclasses.replace(base, prompt=insert_trigger("", subject, role), batch_count=1,
                                   steps=min(base.steps, PREVIEW_STEPS_MAX), **fields)

    def _target(self, item_id: str | None) -> Item | None:
        library = self._library
        if item_id is not None:
            item = self._catalog.items.get(item_id)
            if item is None:
                library.error = "That library item is gone."
            return item
        if library.selected is None:
            library.error = "Select an item in the library first."
        return library.selected

    def _apply(self, item: Item, preview: Path) -> None:
        old = item.preview
        updated = self._catalog.items.set_preview(item.id, str(preview))
        if old and Path(old).parent == self._catalog.paths.previews and "-user-" in Path(old).name:
            Path(old).unlink(missing_ok=True)  # the previous picture the user chose
        library = self._library
        library.model.refresh_item(updated)
        if library.selected is not None and library.selected.id == item.id:
            library.selected = updated
        library.error = ""
        library.status = f"New preview for {updated.label}."

    @Slot(int, object)
    def _on_finished(self, job_id: int, output: object) -> None:
        if job_id != self._job:
            return
        item_id, self._job, self._job_item = self._job_item, None, None
        self.making = False
        assert isinstance(output, GenerateOutput)
        item = self._catalog.items.get(item_id or "")
        if item is not None and output.paths:
            self._apply(item, output.paths[0])

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._job:
            self._job = self._job_item = None
            self.making = False
            self._library.error = f"The preview could not be made: {message}"

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = self._job_item = None
            self.making = False
            self._library.status = "Preview cancelled."
