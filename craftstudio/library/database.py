"""The SQLite connection of one library: WAL, foreign keys, a busy timeout, one lock.

One `Database` owns one connection, shared by the threads of its process under an `RLock`.
Several processes may open the same file: WAL lets readers run beside one writer, every write
transaction starts with `BEGIN IMMEDIATE` (it takes the write lock up front, so two writers
queue on the busy timeout instead of failing half-way), and migrations run inside such a
transaction after re-reading `PRAGMA user_version`, so two processes never apply one twice.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import UserError
from craftstudio.library import migrations

BUSY_TIMEOUT_MS = 30_000
MEMORY = ":memory:"


class DatabaseError(UserError):
    """The library database cannot be opened or written."""


def explain(exc: sqlite3.Error, path: str | Path) -> DatabaseError:
    """One clear sentence for an SQLite failure on the library at `path`."""
    text = str(exc).lower()
    folder = Path(path).parent if str(path) != MEMORY else path
    if "readonly" in text or "read-only" in text:
        return DatabaseError(f"The library folder {folder} is read-only: make it writable or choose "
                             "another folder with --home or CRAFTSTUDIO_HOME.")
    if "unable to open" in text:
        return DatabaseError(f"Cannot open the library database {path}: check that {folder} exists and "
                             "is writable, or choose another folder with --home or CRAFTSTUDIO_HOME.")
    if "locked" in text or "busy" in text:
        return DatabaseError(f"The library {path} is busy in another CraftStudio process; try again "
                             "when it has finished.")
    if "not a database" in text or "malformed" in text:
        return DatabaseError(f"{path} is not a readable CraftStudio library (damaged?): move it away "
                             "and scan your folders again.")
    if "disk" in text and "full" in text:
        return DatabaseError(f"The disk holding {path} is full: free some space and try again.")
    return DatabaseError(f"The library database {path} failed ({exc}).")


def _writable(path: Path) -> bool:
    """Whether SQLite can write `path`: the file (if any) and its folder (WAL needs side files)."""
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(path.parent, os.W_OK) or not path.parent.exists()


class Database:
    """`Database(path)` opens (creating and migrating) a library file; `Database()` is in memory."""

    def __init__(self, path: str | Path = MEMORY, *, migrate: bool = True) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0
        # A library the user cannot write (a read-only folder or file) is opened read-only, so it
        # can still be listed and searched; a write then fails with the read-only sentence.
        self.read_only = self.path != MEMORY and not _writable(Path(self.path))
        try:
            if self.read_only:
                uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                             isolation_level=None, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                             isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self.path != MEMORY and not self.read_only:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            if migrate and self.read_only:
                if self.version < migrations.SCHEMA_VERSION:
                    raise DatabaseError(f"The library {self.path} is read-only and was made by an older "
                                        "CraftStudio: make its folder writable once so it can be updated.")
            elif migrate:
                migrations.migrate(self._conn)
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc

    def check_integrity(self) -> None:
        """Refuse to write into a damaged database (a scan would add rows, then fail half-way)."""
        try:
            with self._lock:  # the connection is shared by threads: every statement takes the lock
                rows = self._conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc
        if [tuple(r) for r in rows] != [("ok",)]:
            raise DatabaseError(f"{self.path} is damaged ({rows[0][0][:120]}): move it away and scan your "
                                "folders again.")

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    @property
    def version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (`BEGIN IMMEDIATE`); nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc
            self._depth = 1
            try:
                yield self._conn
            except BaseException as exc:
                self._depth = 0
                self._rollback()
                # Statements run on the connection directly: their failures get the same sentences.
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError |
                                                                     sqlite3.ProgrammingError):
                    raise explain(exc, self.path) from exc
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise explain(exc, self.path) from exc

    def _rollback(self) -> None:
        # SQLite ends the transaction by itself after some errors (a full disk, an interrupt):
        # a second ROLLBACK would then hide the real error behind "no transaction is active".
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run one statement; a write outside `transaction()` is its own transaction."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except UnicodeEncodeError:  # a file name with bytes that are not UTF-8
                raise DatabaseError("A file name holding bytes that are not UTF-8 cannot be stored or looked "
                                    "up in the library: rename the file.") from None
            except sqlite3.Error as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise
                raise explain(exc, self.path) from exc

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.one(sql, params)
        return row[0] if row is not None else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
