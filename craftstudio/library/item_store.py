"""Catalog items (LoRAs, base models, backbones): write identified files, search, edit, tag.

What the user edits (title, role, triggers, description, name) is remembered in `user_edited`;
a later scan of a changed file updates everything else but never overwrites those fields.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import UserError
from craftstudio.domain.family import Family
from craftstudio.library.database import Database
from craftstudio.library.identify import KINDS, ROLES, Identity
from craftstudio.library.item_query import ItemQuery, normalise_tag
from craftstudio.library.records import Item

EDITABLE = ("title", "role", "triggers", "description", "name")
MAX_RATING = 5
MIN_PREFIX = 6
_UNSET: Any = object()


class NotInLibrary(UserError):
    """No catalog item matches what the user named."""


def search_text(item: Item) -> str:
    parts = [item.name, item.title or "", Path(item.path).name, *item.triggers, *item.tags,
             item.description or "", item.notes or "", item.family, item.role, item.kind]
    return "\n".join(parts).lower()


class ItemStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------- reading
    def get(self, item_id: str) -> Item | None:
        row = self.db.one("SELECT * FROM items WHERE id = ?", (item_id,))
        return Item.from_row(row) if row else None

    def by_path(self, path: str | Path) -> Item | None:
        key = str(Path(path).absolute())
        row = self.db.one("SELECT items.* FROM files JOIN items ON items.id = files.item_id "
                          "WHERE files.path = ?", (key,))
        row = row or self.db.one("SELECT * FROM items WHERE path = ? OR trash_path = ?", (key, key))
        return Item.from_row(row) if row else None

    def find(self, ref: str, *, kind: str | None = None) -> Item:
        """An item by id, unique id prefix (6+ hex digits), path or name. Raises `NotInLibrary`."""
        ref = ref.strip()
        kind_sql, kind_args = (" AND kind = ?", [kind]) if kind else ("", [])
        candidates: list[Item] = []
        if len(ref) >= MIN_PREFIX and all(c in "0123456789abcdef" for c in ref.lower()):
            rows = self.db.execute(f"SELECT * FROM items WHERE id LIKE ?{kind_sql} LIMIT 3",
                                   [ref.lower() + "%", *kind_args])
            candidates = [Item.from_row(r) for r in rows]
        if not candidates and (os.sep in ref or "/" in ref or Path(ref).exists()):
            item = self.by_path(ref)
            candidates = [item] if item and (not kind or item.kind == kind) else []
        if not candidates:
            rows = self.db.execute(f"SELECT * FROM items WHERE (name = ? COLLATE NOCASE OR title = ? "
                                   f"COLLATE NOCASE){kind_sql} ORDER BY trashed_at IS NOT NULL LIMIT 3",
                                   [ref, ref, *kind_args])
            candidates = [Item.from_row(r) for r in rows]
        if not candidates:
            raise NotInLibrary(f"Nothing in the library matches {ref!r}: use an id from "
                               "`craftstudio library list`, a file path or a name.")
        if len(candidates) > 1:
            ids = ", ".join(c.short_id for c in candidates)
            raise NotInLibrary(f"{ref!r} matches several library items ({ids}): give more of the id.")
        return candidates[0]

    def search(self, *, kind: str | None = "lora", family: str | None = None, role: str | None = None,
               text: str | None = None, tag: str | None = None, trigger: str | None = None,
               trashed: bool = False, limit: int | None = None) -> list[Item]:
        """Items matching every given filter; `text` matches all its words in names, titles,
        triggers, tags, descriptions and notes (case-insensitive)."""
        query = ItemQuery(kind=kind, family=family, role=role, text=text or "", tag=tag, trigger=trigger,
                          trashed=trashed)
        return self.page(query, limit=limit)

    def page(self, query: ItemQuery, *, offset: int = 0, limit: int | None = None,
             matches: int | None = None) -> list[Item]:
        """One page of the items `query` describes, in its order; `matches` (its count, if known)
        lets the query choose the faster plan."""
        if matches == 0:
            return []
        sql, args = query.select(limit=limit, offset=offset, matches=matches)
        return [Item.from_row(r) for r in self.db.execute(sql, args)]

    def count_matching(self, query: ItemQuery) -> int:
        sql, args = query.count()
        return int(self.db.scalar(sql, args))

    def analyse(self) -> None:
        """Refresh the query planner's statistics (after a scan changed many rows): without them
        SQLite sorts every item to show the first page instead of walking the name index."""
        self.db.execute("ANALYZE")

    def tag_counts(self) -> list[tuple[str, int]]:
        """Every tag in use on items not in the trash, most used first (completion, filters)."""
        rows = self.db.execute("SELECT tag, COUNT(*) AS n FROM item_tags JOIN items ON items.id = item_id "
                               "WHERE items.trashed_at IS NULL GROUP BY tag ORDER BY n DESC, tag")
        return [(r["tag"], r["n"]) for r in rows]

    def by_short_hash(self, short: str, kind: str = "lora") -> list[Item]:
        """Items whose addnet hash, kohya `sshs_model_hash` or content hash starts with `short`."""
        short = short.strip().lower()
        if len(short) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in short):
            return []
        rows = self.db.execute(
            "SELECT * FROM items WHERE kind = ?1 AND (addnet_hash LIKE ?2 OR id LIKE ?2 OR "
            "lower(json_extract(meta, '$.sshs_model_hash')) LIKE ?2) ORDER BY trashed_at IS NOT NULL",
            (kind, short + "%"))
        return [Item.from_row(r) for r in rows]

    def by_name(self, name: str, kind: str = "lora") -> list[Item]:
        """Items called `name` (A1111 uses the file stem or the kohya output name)."""
        rows = self.db.execute(
            "SELECT * FROM items WHERE kind = ?1 AND (name = ?2 COLLATE NOCASE OR title = ?2 COLLATE NOCASE "
            "OR json_extract(meta, '$.ss_output_name') = ?2) ORDER BY trashed_at IS NOT NULL, "
            "name = ?2 COLLATE NOCASE DESC", (kind, name))
        return [Item.from_row(r) for r in rows]

    def duplicates(self, kind: str | None = None) -> list[tuple[Item, list[str]]]:
        """Items whose content exists at more than one scanned path, with those paths."""
        rows = self.db.execute(
            "SELECT item_id, json_group_array(path) AS paths FROM files WHERE status = 'ok' "
            "AND item_id IS NOT NULL GROUP BY item_id HAVING COUNT(*) > 1")
        out = []
        for row in rows:
            item = self.get(row["item_id"])
            if item and (kind is None or item.kind == kind):
                out.append((item, sorted(json.loads(row["paths"]))))
        return out

    def usable_with(self, model_ref: str, kind: str = "lora") -> list[Item]:
        """LoRAs (or backbones) made for the family of base model `model_ref`; backbones must also
        name this exact model."""
        model = self.find(model_ref, kind="model")
        if model.family == Family.UNKNOWN.value:
            return []
        items = self.search(kind=kind, family=model.family)
        if kind == "backbone":
            items = [b for b in items if b.base_model_hash in (None, "", model.id)
                     or model.id.startswith(b.base_model_hash or "-")]
        return items

    def count(self, kind: str | None = None, *, trashed: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM items WHERE trashed_at IS " + ("NOT NULL" if trashed else "NULL")
        return int(self.db.scalar(sql + (" AND kind = ?" if kind else ""), (kind,) if kind else ()))

    # ---------- writing
    _COLUMNS = ("id", "kind", "path", "name", "title", "family", "role", "rank", "format", "triggers", "tags",
                "description", "preview", "size", "in_place", "addnet_hash", "meta", "search", "created_at",
                "updated_at", "trashed_at", "trash_path", "missing", "base_model_hash", "user_edited", "rating",
                "notes", "last_used_at")

    def save(self, item: Item) -> Item:
        """Insert or update in place (an UPSERT: a REPLACE would delete the row and let the
        foreign keys of files and history fall to NULL)."""
        values = (item.id, item.kind, item.path, item.name, item.title, item.family, item.role, item.rank,
                  item.format, json.dumps(item.triggers, ensure_ascii=False),
                  json.dumps(item.tags, ensure_ascii=False), item.description, item.preview, item.size,
                  int(item.in_place), item.addnet_hash, json.dumps(item.meta, ensure_ascii=False),
                  search_text(item), item.created_at, item.updated_at, item.trashed_at, item.trash_path,
                  int(item.missing), item.base_model_hash, json.dumps(item.user_edited), item.rating, item.notes,
                  item.last_used_at)
        cols = ", ".join(self._COLUMNS)
        marks = ", ".join("?" * len(self._COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in self._COLUMNS[1:])
        self.db.execute(f"INSERT INTO items ({cols}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}",
                        values)
        return item

    def upsert(self, item_id: str, identity: Identity, *, path: Path, name: str, size: int,
               addnet_hash: str | None, preview: str | None, in_place: bool) -> tuple[Item, bool]:
        """Create or refresh the item of content `item_id` found at `path`; True if created."""
        if identity.kind not in KINDS:
            raise ValueError(identity.kind)
        now = time.time()
        old = self.get(item_id)
        fresh = Item(id=item_id, kind=identity.kind, path=str(path), name=name, title=identity.title,
                     family=identity.family.value, role=identity.role, rank=identity.rank,
                     format=identity.format, triggers=list(identity.triggers),
                     description=identity.description, preview=preview, size=size, in_place=in_place,
                     addnet_hash=addnet_hash, base_model_hash=identity.base_model_hash,
                     created_at=now, updated_at=now)
        fresh.meta = identity.meta
        if old is None:
            return self.save(fresh), True
        for key in ("title", "role", "triggers", "description", "name"):
            if key in old.user_edited:
                setattr(fresh, key, getattr(old, key))
        fresh.tags, fresh.user_edited, fresh.created_at = old.tags, old.user_edited, old.created_at
        fresh.trashed_at, fresh.trash_path = old.trashed_at, old.trash_path
        fresh.rating, fresh.notes, fresh.last_used_at = old.rating, old.notes, old.last_used_at
        fresh.preview = preview or (old.preview if old.preview and Path(old.preview).exists() else None)
        if "preview" in old.user_edited and old.preview and Path(old.preview).exists():
            fresh.preview = old.preview  # the user chose it: a sidecar found later does not replace it
        keep_old_path = (old.path != str(path) and not old.missing and Path(old.path).exists()
                         and old.trashed_at is None)
        if keep_old_path:  # `path` is a second copy of the same content
            fresh.path, fresh.in_place = old.path, old.in_place
            if "name" not in old.user_edited:
                fresh.name = old.name
        return self.save(fresh), False

    def inherit_user_data(self, target_id: str, source: Item) -> None:
        """A file changed content (new id): keep its tags and the user's edits."""
        target = self.get(target_id)
        if target is None:
            return
        for key in source.user_edited:
            if key in EDITABLE:
                setattr(target, key, getattr(source, key))
        target.tags = sorted(set(target.tags) | set(source.tags))
        target.rating, target.notes = target.rating or source.rating, target.notes or source.notes
        target.user_edited = sorted(set(target.user_edited) | set(source.user_edited))
        self.save(target)

    def edit(self, item_id: str, *, title: Any = _UNSET, role: Any = _UNSET, triggers: Any = _UNSET,
             description: Any = _UNSET, name: Any = _UNSET, notes: Any = _UNSET, rating: Any = _UNSET) -> Item:
        item = self._require(item_id)
        if rating is not _UNSET:
            if not isinstance(rating, int) or not 0 <= rating <= MAX_RATING:
                raise UserError(f"A rating is a whole number from 0 to {MAX_RATING}, not {rating!r}.")
            item.rating = rating
        if notes is not _UNSET:  # notes and rating exist only in the catalog: no scan overwrites them
            item.notes = notes or None
        changes = {"title": title, "role": role, "triggers": triggers, "description": description,
                   "name": name}
        for key, value in changes.items():
            if value is _UNSET:
                continue
            if key == "role" and value not in ROLES:
                raise UserError(f"Role {value!r} is not known: use one of {', '.join(ROLES)}.")
            if key == "name" and (not value or not str(value).strip()):
                raise UserError("A name cannot be empty.")
            if key == "triggers":
                value = [t.strip() for t in value if t and t.strip()]
            setattr(item, key, value)
            if key not in item.user_edited:
                item.user_edited.append(key)
        item.updated_at = time.time()
        return self.save(item)

    def set_preview(self, item_id: str, preview: str | None) -> Item:
        """The preview image the user chose (kept across scans); None goes back to the found one."""
        item = self._require(item_id)
        item.preview = preview
        if preview is None:
            item.user_edited = [k for k in item.user_edited if k != "preview"]
        elif "preview" not in item.user_edited:
            item.user_edited.append("preview")
        item.updated_at = time.time()
        return self.save(item)

    def mark_used(self, item_id: str) -> None:
        """Remember when an item was last put to use (the page sorts by it)."""
        self.db.execute("UPDATE items SET last_used_at = ? WHERE id = ?", (time.time(), item_id))

    def change_tags(self, item_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Item:
        item = self._require(item_id)
        tags = [t for t in item.tags if t not in {normalise_tag(r) for r in remove}]
        for tag in map(normalise_tag, add):
            if tag and tag not in tags:
                tags.append(tag)
        item.tags = tags
        item.updated_at = time.time()
        return self.save(item)

    def update_fields(self, item_id: str, **fields: Any) -> Item:
        item = self._require(item_id)
        for key, value in fields.items():
            setattr(item, key, value)
        item.updated_at = time.time()
        return self.save(item)

    def _require(self, item_id: str) -> Item:
        item = self.get(item_id)
        if item is None:
            raise NotInLibrary(f"No library item has the id {item_id}.")
        return item
