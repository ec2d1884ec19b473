"""Plain records the library hands out: catalog items and scanned files (never raw rows)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.family import Family
from craftstudio.domain.generation import LoraRef


def _list(raw: str) -> list[Any]:
    return [] if raw == "[]" else json.loads(raw)


@dataclass
class Item:
    """A LoRA, base model or backbone. `id` is the sha256 of its content."""

    id: str
    kind: str
    path: str
    name: str
    title: str | None = None
    family: str = Family.UNKNOWN.value
    role: str = "other"
    rank: int | None = None
    format: str = ""
    triggers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    preview: str | None = None
    size: int = 0
    in_place: bool = True
    addnet_hash: str | None = None
    base_model_hash: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    trashed_at: float | None = None
    trash_path: str | None = None
    missing: bool = False
    user_edited: list[str] = field(default_factory=list)
    rating: int = 0  # 0 (none) to 5, set by the user
    notes: str | None = None  # the user's own notes
    last_used_at: float | None = None  # last "Use as ..." from the Library page
    # Other metadata, decoded from JSON only when used (listing thousands of items stays fast).
    _meta_raw: str = field(default="{}", repr=False, compare=False)
    _meta: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = json.loads(self._meta_raw)
        return self._meta

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self._meta = value

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def trashed(self) -> bool:
        return self.trashed_at is not None

    def lora_ref(self, weight: float = 1.0) -> LoraRef:
        return LoraRef(path=self.path, weight=weight, sha256=self.id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["_meta_raw"], data["_meta"]
        data["meta"] = self.meta
        return data

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        keys = row.keys()
        return cls(
            id=row["id"], kind=row["kind"], path=row["path"], name=row["name"], title=row["title"],
            family=row["family"], role=row["role"], rank=row["rank"], format=row["format"],
            triggers=_list(row["triggers"]), tags=_list(row["tags"]),
            description=row["description"], preview=row["preview"], size=row["size"],
            in_place=bool(row["in_place"]), addnet_hash=row["addnet_hash"],
            base_model_hash=row["base_model_hash"] if "base_model_hash" in keys else None,
            _meta_raw=row["meta"], created_at=row["created_at"], updated_at=row["updated_at"],
            trashed_at=row["trashed_at"], trash_path=row["trash_path"],
            missing=bool(row["missing"]) if "missing" in keys else False,
            user_edited=_list(row["user_edited"]) if "user_edited" in keys else [],
            rating=row["rating"] if "rating" in keys else 0,
            notes=row["notes"] if "notes" in keys else None,
            last_used_at=row["last_used_at"] if "last_used_at" in keys else None,
        )


@dataclass(frozen=True)
class FileEntry:
    """One scanned path: `ok` (it is `item_id`), `unreadable` or `other` (not a LoRA/model)."""

    path: str
    size: int
    mtime_ns: int
    status: str
    reason: str | None = None
    sha256: str | None = None
    item_id: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> FileEntry:
        return cls(row["path"], row["size"], row["mtime_ns"], row["status"], row["reason"],
                   row["sha256"], row["item_id"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
