"""`ItemQuery`: one description of "which catalog items, in which order", turned into SQL.

The CLI's `library list` and the Library page ask the same questions; both go through here, so
a search means the same everywhere. Text words of three characters or more are looked up in the
trigram full-text index (`items_fts`, migration 4): a word matches where it occurs inside a name,
title, file name, trigger phrase, tag, description or note, in any case, as a plain substring
search would, but without reading every row. Shorter words fall back to a substring scan of the
rows the other conditions left. Tags are looked up in the `item_tags` table, filters in indexed
columns, and the page asks for one screenful at a time (`limit`/`offset`), after the count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from craftstudio.domain.family import Family

# Sort keys the page and the CLI offer, with the column each sorts by.
SORTS = {
    "name": "coalesce(items.title, items.name) COLLATE NOCASE",  # what the card shows
    "family": "items.family",
    "role": "items.role",
    "size": "items.size",
    "added": "items.created_at",
    "used": "items.last_used_at",
    "rating": "items.rating",
}
MIN_FTS_WORD = 3  # the trigram index cannot look up anything shorter
DRIVE_BY_LIST_UP_TO = 1500  # matches; see `ItemQuery.select`


def like_pattern(term: str) -> str:
    """A LIKE pattern matching `term` anywhere (with `ESCAPE '\\'`)."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def fts_phrase(term: str) -> str:
    """`term` as one FTS5 phrase (quotes doubled), so no word is read as query syntax."""
    return '"' + term.replace('"', '""') + '"'


@dataclass(frozen=True)
class ItemQuery:
    """Items matching every given condition. `fits_family`: LoRAs and backbones made for that
    family or of unknown family (base models are never hidden by it)."""

    kind: str | None = "lora"
    family: str | None = None
    role: str | None = None
    text: str = ""
    tag: str | None = None
    trigger: str | None = None
    fits_family: str | None = None
    trashed: bool = False
    sort: str = "name"
    descending: bool = False

    def with_(self, **changes: Any) -> ItemQuery:
        return replace(self, **changes)

    def where(self, *, walk: bool = True) -> tuple[str, list[Any]]:
        """The WHERE clause (without the keyword) and its arguments. With `walk`, the filters and
        the lists of matches (text, tag) are only checked, never used to drive the query, so
        SQLite walks the sort order's index (see `select`)."""
        mark = "+" if walk else ""
        where = [f"{mark}items.trashed_at IS NOT NULL" if self.trashed else f"{mark}items.trashed_at IS NULL"]
        args: list[Any] = []
        if self.kind:
            where.append(f"{mark}items.kind = ?")
            args.append(self.kind)
        if self.family:
            where.append(f"{mark}items.family = ?")
            args.append(Family(self.family).value)
        if self.role:
            where.append(f"{mark}items.role = ?")
            args.append(self.role)
        if self.fits_family and self.fits_family != Family.UNKNOWN.value:
            where.append("(items.kind = 'model' OR items.family IN (?, 'unknown'))")
            args.append(Family(self.fits_family).value)
        lists, list_args = self._lists()
        where.extend(f"{mark}items.rowid IN ({sql})" for sql in lists)
        args.extend(list_args)
        for word in self.text.lower().split():
            if len(word) < MIN_FTS_WORD:
                where.append("items.search LIKE ? ESCAPE '\\'")
                args.append(like_pattern(word))
        trigger = (self.trigger or "").strip().lower()
        if trigger and len(trigger) < MIN_FTS_WORD:
            where.append("EXISTS (SELECT 1 FROM json_each(items.triggers) WHERE lower(value) LIKE ? ESCAPE '\\')")
            args.append(like_pattern(trigger))
        return " AND ".join(where), args

    def _lists(self) -> tuple[list[str], list[Any]]:
        """Subqueries giving the rowids that the text, trigger and tag conditions allow."""
        fts = [fts_phrase(w) for w in self.text.lower().split() if len(w) >= MIN_FTS_WORD]
        trigger = (self.trigger or "").strip().lower()
        if len(trigger) >= MIN_FTS_WORD:
            # The trigger column holds the JSON list: the phrase is found inside one trigger.
            fts.append("triggers : " + fts_phrase(trigger))
        lists: list[str] = []
        args: list[Any] = []
        if fts:
            lists.append("SELECT rowid FROM items_fts WHERE items_fts MATCH ?")
            args.append(" AND ".join(fts))
        if self.tag:
            lists.append("SELECT items.rowid FROM item_tags JOIN items ON items.id = item_tags.item_id "
                         "WHERE item_tags.tag = ?")
            args.append(normalise_tag(self.tag))
        return lists, args

    @property
    def has_lists(self) -> bool:
        return bool(self._lists()[0])

    def order_by(self) -> str:
        column = SORTS.get(self.sort, SORTS["name"])
        direction = "DESC" if self.descending else "ASC"
        # Ties (and items never used) keep a stable order by name, then row (what the indexes hold).
        tail = "" if self.sort == "name" else ", " + SORTS["name"]
        return f"{column} {direction}{tail}, items.rowid {direction}"

    def select(self, columns: str = "items.*", *, limit: int | None = None, offset: int = 0,
               matches: int | None = None) -> tuple[str, list[Any]]:
        """The query for one page. `matches` (the count, when the caller has it) picks the plan:
        a few matches (or all of them, without `limit`) are fetched by their lists and sorted;
        many are found by walking the sort index in order, checking each row, which stops after
        one page."""
        walk = limit is not None and (matches is None or matches > DRIVE_BY_LIST_UP_TO)
        where, args = self.where(walk=walk)
        sql = f"SELECT {columns} FROM items WHERE {where} ORDER BY {self.order_by()}"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return sql, args

    def count(self) -> tuple[str, list[Any]]:
        # Counting reads the filter index (it holds every filter column and the rowid), not the rows.
        where, args = self.where(walk=False)
        index = "" if any(len(w) < MIN_FTS_WORD for w in self.text.split()) or self._short_trigger \
            else " INDEXED BY items_filter"
        return f"SELECT COUNT(*) FROM items{index} WHERE {where}", args

    @property
    def _short_trigger(self) -> bool:
        trigger = (self.trigger or "").strip()
        return 0 < len(trigger) < MIN_FTS_WORD


def normalise_tag(tag: str) -> str:
    return " ".join(tag.strip().lower().split())
