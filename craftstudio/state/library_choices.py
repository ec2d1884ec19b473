"""`LibraryChoices`: what the Generate page's pickers offer — models, LoRAs and backbones from
the library catalog, plus the built-in demo model and its LoRAs and backbone.

The catalog is opened at the app's home for each query and closed again (SQLite, a few ms), so
the pickers always show what the Library page has just added, and a home without a library
(`library.sqlite` absent) is never created here: it simply offers the demo entries.

LoRAs and backbones are filtered to the current model's family (a SD1.x LoRA does nothing
useful on SDXL); when that family is unknown every one is offered. The demo entries come
first, so a cleared model field always has a way back to the demo.

Trigger phrases of a LoRA come from its catalog item (what the user edited in the Library) or,
for files outside the library, from the file's own ModelSpec metadata.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from craftstudio.domain.errors import UserError
from craftstudio.domain.family import Family
from craftstudio.library.catalog import Catalog
from craftstudio.library.header import UnreadableFile, read_header
from craftstudio.library.identify import NotRecognised, identify, identify_folder
from craftstudio.library.paths import AppPaths
from craftstudio.library.records import Item
from craftstudio.state.demo_defaults import DemoDefaults, demo_defaults, trigger_word

log = logging.getLogger(__name__)

DEMO_MODEL_LABEL = "ShapesWorld demo (64×64)"
DEMO_FAMILY = Family.SD1.value  # the demo model is an SD1.x-layout pipeline
LIMIT = 2000  # entries per picker; the search field narrows them


@dataclass(frozen=True)
class Choice:
    """One entry of a picker: what it shows and the path it puts in the field."""

    label: str
    path: str
    detail: str = ""  # family, role, triggers: shown greyed and searched
    thumbnail: str = ""  # an image file, "" for none
    builtin: bool = False

    @property
    def search_text(self) -> str:
        return f"{self.label}\n{self.detail}\n{Path(self.path).name}".lower()


class LibraryChoices:
    def __init__(self, home: Path | None) -> None:
        self.home = Path(home) if home is not None else None
        self._demo: DemoDefaults | None | bool = False  # False: not looked up yet
        self._families: dict[str, str] = {}
        self._triggers: dict[str, list[str]] = {}

    # --- the pickers ---------------------------------------------------------------------

    def models(self) -> list[Choice]:
        demo = self.demo()
        choices = []
        if demo:
            choices.append(Choice(DEMO_MODEL_LABEL, demo.model, "built in · a tiny model of shapes and styles",
                                  builtin=True))
        return choices + [_choice(item) for item in self._search("model")]

    def loras(self, role: str, model: str) -> list[Choice]:
        """LoRAs for `model`'s family, those of `role` first (content/style)."""
        family = self.family_of(model)
        demo = self.demo()
        choices = []
        if demo and family in (DEMO_FAMILY, Family.UNKNOWN.value):
            for demo_role in sorted(("content", "style"), key=lambda r: r != role):
                path = getattr(demo, f"{demo_role}_lora")
                if path:
                    word = trigger_word(Path(path))
                    choices.append(Choice(f"Demo {demo_role} LoRA", path,
                                          f"built in · {demo_role}" + (f" · {word}" if word else ""),
                                          builtin=True))
        items = self._search("lora", family)
        items.sort(key=lambda item: item.role != role)  # stable: names stay sorted within a role
        return choices + [_choice(item) for item in items]

    def backbones(self, model: str) -> list[Choice]:
        family = self.family_of(model)
        demo = self.demo()
        choices = []
        if demo and demo.backbone and family in (DEMO_FAMILY, Family.UNKNOWN.value):
            choices.append(Choice("Demo backbone", demo.backbone, "built in · for the demo model",
                                  builtin=True))
        return choices + [_choice(item) for item in self._search("backbone", family)]

    # --- facts about files ---------------------------------------------------------------

    def demo(self) -> DemoDefaults | None:
        if self._demo is False:
            self._demo = demo_defaults()
        return self._demo  # type: ignore[return-value]

    def family_of(self, model: str) -> str:
        """The family of a model folder or checkpoint ("unknown" when it cannot be told)."""
        model = model.strip()
        if not model:
            return Family.UNKNOWN.value
        if model not in self._families:
            self._families[model] = _family(Path(model))
        return self._families[model]

    def triggers(self, lora: str) -> list[str]:
        """A LoRA's trigger phrases: its catalog item's, else its file's metadata."""
        lora = lora.strip()
        if not lora:
            return []
        if lora not in self._triggers:
            item = self._item(lora)
            if item is not None and item.triggers:
                self._triggers[lora] = [t for t in item.triggers if "<" not in t and ">" not in t]
            else:
                word = trigger_word(Path(lora))
                self._triggers[lora] = [word] if word else []
        return self._triggers[lora]

    def forget(self, path: str) -> None:
        """Drop what is cached about a file (it was replaced or retrained)."""
        self._families.pop(path.strip(), None)
        self._triggers.pop(path.strip(), None)

    # --- catalog -------------------------------------------------------------------------

    def _open(self) -> Catalog | None:
        if self.home is None or not AppPaths(self.home).database.is_file():
            return None
        try:
            return Catalog.open(self.home)
        except (UserError, sqlite3.Error, OSError) as exc:
            log.warning("library at %s unavailable to the pickers: %s", self.home, exc)
            return None

    def _search(self, kind: str, family: str | None = None) -> list[Item]:
        catalog = self._open()
        if catalog is None:
            return []
        wanted = family if family and family != Family.UNKNOWN.value else None
        try:
            with catalog:
                return [item for item in catalog.items.search(kind=kind, family=wanted, limit=LIMIT)
                        if not item.missing]
        except sqlite3.Error as exc:
            log.warning("library search failed: %s", exc)
            return []

    def _item(self, path: str) -> Item | None:
        catalog = self._open()
        if catalog is None:
            return None
        try:
            with catalog:
                return catalog.items.by_path(path)
        except sqlite3.Error:
            return None


def _choice(item: Item) -> Choice:
    parts = [Family(item.family).label if item.family in Family._value2member_map_ else item.family]
    if item.kind == "lora" and item.role != "other":
        parts.append(item.role)
    if item.triggers:
        parts.append(", ".join(item.triggers[:3]))
    thumbnail = item.preview if item.preview and Path(item.preview).is_file() else ""
    return Choice(item.label, item.path, " · ".join(parts), thumbnail)


def _family(path: Path) -> str:
    try:
        if path.is_dir():
            return identify_folder(path).family.value
        if path.suffix.lower() == ".safetensors" and path.is_file():
            return identify(read_header(path), path).family.value
    except (NotRecognised, UnreadableFile, OSError):
        pass
    return Family.UNKNOWN.value
