"""Schema migrations, versioned with `PRAGMA user_version`: one small function per version.

Migration N takes a database at version N-1 to version N. Never edit a released migration;
add a new one. Each runs in the same `BEGIN IMMEDIATE` transaction as the version bump, so a
crash leaves the database at the old version, intact, and the next open retries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from craftstudio.domain.errors import UserError


def _v1_catalog(conn: sqlite3.Connection) -> None:
    """Items (LoRAs, base models, backbones) keyed by content hash, and the scan index of files."""
    conn.execute("""
        CREATE TABLE items (
            id TEXT PRIMARY KEY,                 -- sha256 of the content
            kind TEXT NOT NULL CHECK (kind IN ('lora', 'model', 'backbone')),
            path TEXT NOT NULL,                  -- where it is used from
            name TEXT NOT NULL,
            title TEXT,
            family TEXT NOT NULL DEFAULT 'unknown',
            role TEXT NOT NULL DEFAULT 'other' CHECK (role IN ('content', 'style', 'other')),
            rank INTEGER,
            format TEXT NOT NULL DEFAULT '',
            triggers TEXT NOT NULL DEFAULT '[]', -- JSON list
            tags TEXT NOT NULL DEFAULT '[]',     -- JSON list
            description TEXT,
            preview TEXT,
            size INTEGER NOT NULL DEFAULT 0,
            in_place INTEGER NOT NULL DEFAULT 1, -- 1: registered where it is; 0: copied into the library
            addnet_hash TEXT,                    -- sha256 of the tensor bytes (A1111 "Lora hashes")
            meta TEXT NOT NULL DEFAULT '{}',     -- other metadata, JSON
            search TEXT NOT NULL DEFAULT '',     -- lower-case text searched by `list --search`
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            trashed_at REAL,
            trash_path TEXT
        )""")
    conn.execute("CREATE INDEX items_kind_family ON items (kind, family)")
    conn.execute("CREATE INDEX items_name ON items (name COLLATE NOCASE)")
    conn.execute("""
        CREATE TABLE files (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT,
            item_id TEXT REFERENCES items (id) ON DELETE SET NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'unreadable', 'other')),
            reason TEXT,
            sidecars TEXT NOT NULL DEFAULT '',
            scanned_at REAL NOT NULL
        )""")
    conn.execute("CREATE INDEX files_sha ON files (sha256)")
    conn.execute("CREATE INDEX files_item ON files (item_id)")


def _v2_history(conn: sqlite3.Connection) -> None:
    """Generation history, training runs and curve presets."""
    conn.execute("""
        CREATE TABLE generations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            seed INTEGER NOT NULL,
            mode TEXT NOT NULL,
            request TEXT NOT NULL,               -- GenerateRequest JSON
            outputs TEXT NOT NULL DEFAULT '[]',  -- JSON list of image paths
            timings TEXT NOT NULL DEFAULT '{}',  -- JSON {stage: seconds}
            record TEXT NOT NULL DEFAULT '{}',   -- JSON: what the engine reported
            content_lora TEXT REFERENCES items (id) ON DELETE SET NULL,
            style_lora TEXT REFERENCES items (id) ON DELETE SET NULL
        )""")
    conn.execute("CREATE INDEX generations_created ON generations (created_at)")
    conn.execute("""
        CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,                  -- content, style, backbone
            status TEXT NOT NULL DEFAULT 'running',
            request TEXT NOT NULL,               -- training request JSON
            output_path TEXT,
            output_item TEXT REFERENCES items (id) ON DELETE SET NULL,
            result TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            started_at REAL NOT NULL,
            finished_at REAL
        )""")
    conn.execute("""
        CREATE TABLE curve_presets (
            name TEXT PRIMARY KEY,
            data TEXT NOT NULL,                  -- curves JSON
            builtin INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""")


def _v3_resumable_scans(conn: sqlite3.Connection) -> None:
    """Resumable scans, files gone missing, backbone base hashes, fields the user edited."""
    conn.execute("""
        CREATE TABLE scans (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            roots TEXT NOT NULL,                 -- JSON list of folders
            started_at REAL NOT NULL,
            finished_at REAL
        )""")
    conn.execute("ALTER TABLE items ADD COLUMN missing INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE items ADD COLUMN base_model_hash TEXT")
    conn.execute("ALTER TABLE items ADD COLUMN user_edited TEXT NOT NULL DEFAULT '[]'")
    conn.execute("CREATE INDEX items_addnet ON items (addnet_hash)")


def _v4_library_page(conn: sqlite3.Connection) -> None:
    """What the Library page needs: rating, notes, last use; a tag table and a trigram full-text
    index kept in step by triggers, so a search of 20,000 items reads only what matches.

    `items_fts` is an external-content FTS5 table over `items.search` and `items.triggers`, keyed
    by `items.rowid`. Trigram tokens keep the old meaning of a search word (a substring, any
    case). A VACUUM may renumber `items.rowid`: follow one with
    `INSERT INTO items_fts (items_fts) VALUES ('rebuild')`.
    """
    conn.execute("ALTER TABLE items ADD COLUMN rating INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE items ADD COLUMN notes TEXT")
    conn.execute("ALTER TABLE items ADD COLUMN last_used_at REAL")
    # Covers every filter column: counting matches reads this index, never the wide rows.
    conn.execute("CREATE INDEX items_filter ON items (trashed_at, kind, family, role)")
    conn.execute("CREATE INDEX items_label ON items (coalesce(title, name) COLLATE NOCASE)")
    for column in ("created_at", "size", "last_used_at", "rating"):  # the page's sort orders
        conn.execute(f"CREATE INDEX items_by_{column} ON items ({column})")
    conn.execute("""
        CREATE TABLE item_tags (
            tag TEXT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            PRIMARY KEY (tag, item_id)
        ) WITHOUT ROWID""")
    conn.execute("CREATE INDEX item_tags_item ON item_tags (item_id)")
    conn.execute("INSERT OR IGNORE INTO item_tags (tag, item_id) "
                 "SELECT value, items.id FROM items, json_each(items.tags)")
    conn.execute("""
        CREATE VIRTUAL TABLE items_fts USING fts5 (
            search, triggers, content = 'items', content_rowid = 'rowid', tokenize = 'trigram'
        )""")
    conn.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
    conn.execute("""
        CREATE TRIGGER items_after_insert AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, search, triggers) VALUES (new.rowid, new.search, new.triggers);
            INSERT OR IGNORE INTO item_tags (tag, item_id) SELECT value, new.id FROM json_each(new.tags);
        END""")
    conn.execute("""
        CREATE TRIGGER items_after_delete AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, search, triggers)
                VALUES ('delete', old.rowid, old.search, old.triggers);
        END""")
    conn.execute("""
        CREATE TRIGGER items_text_update AFTER UPDATE OF search, triggers ON items
        WHEN old.search IS NOT new.search OR old.triggers IS NOT new.triggers BEGIN
            INSERT INTO items_fts (items_fts, rowid, search, triggers)
                VALUES ('delete', old.rowid, old.search, old.triggers);
            INSERT INTO items_fts (rowid, search, triggers) VALUES (new.rowid, new.search, new.triggers);
        END""")
    conn.execute("""
        CREATE TRIGGER items_tags_update AFTER UPDATE OF tags ON items
        WHEN old.tags IS NOT new.tags BEGIN
            DELETE FROM item_tags WHERE item_id = old.id;
            INSERT OR IGNORE INTO item_tags (tag, item_id) SELECT value, new.id FROM json_each(new.tags);
        END""")
    conn.execute("ANALYZE")  # statistics let the planner walk the name index for the first page


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_catalog, _v2_history, _v3_resumable_scans,
                                                          _v4_library_page]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring `conn` (autocommit mode) to version `target`; return the version it had."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current == target:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
        if current > SCHEMA_VERSION:
            raise UserError(f"This library was written by a newer CraftStudio (schema {current}, this "
                            f"version knows {SCHEMA_VERSION}): update CraftStudio to open it.")
        for version in range(current, target):
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current
