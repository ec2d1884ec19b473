"""The database: migrations, WAL, foreign keys, two writers at once, clear errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from craftstudio.domain.errors import UserError
from craftstudio.library import migrations
from craftstudio.library.catalog import Catalog
from craftstudio.library.database import Database
from tests.library.conftest import make_lora


def _at_version(path, version):
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, version)
    return conn


def test_new_database_is_current_with_wal_and_foreign_keys(tmp_path):
    with Database(tmp_path / "library.sqlite") as db:
        assert db.version == migrations.SCHEMA_VERSION
        assert db.scalar("PRAGMA journal_mode") == "wal"
        assert db.scalar("PRAGMA foreign_keys") == 1
        assert db.scalar("PRAGMA busy_timeout") > 0


def test_in_memory_database(memory_catalog):
    assert memory_catalog.db.version == migrations.SCHEMA_VERSION
    assert memory_catalog.items.count() == 0


def test_migrations_are_numbered_functions():
    assert migrations.SCHEMA_VERSION == len(migrations.MIGRATIONS) >= 3
    assert all(callable(m) and m.__doc__ for m in migrations.MIGRATIONS)


@pytest.mark.parametrize("start", range(1, migrations.SCHEMA_VERSION))
def test_upgrade_from_each_earlier_schema_keeps_data(tmp_path, start):
    path = tmp_path / "library.sqlite"
    conn = _at_version(path, start)
    conn.execute("INSERT INTO items (id, kind, path, name, tags, created_at, updated_at) "
                 "VALUES ('abc', 'lora', '/x/a.safetensors', 'a', '[\"kept\"]', 1, 1)")
    conn.execute("INSERT INTO files (path, size, mtime_ns, sha256, item_id, status, scanned_at) "
                 "VALUES ('/x/a.safetensors', 10, 5, 'abc', 'abc', 'ok', 1)")
    if start >= 2:
        conn.execute("INSERT INTO curve_presets (name, data, created_at, updated_at) VALUES ('p', '{}', 1, 1)")
    conn.close()
    with Catalog(None, Database(path)) as cat:  # type: ignore[arg-type]
        assert cat.db.version == migrations.SCHEMA_VERSION
        item = cat.items.get("abc")
        assert item.tags == ["kept"] and not item.missing and item.user_edited == []
        assert cat.db.scalar("SELECT item_id FROM files") == "abc"
        if start >= 2:
            assert cat.history.curve_presets() == {"p": {}}
        assert [i.id for i in cat.items.search(tag="kept")] == ["abc"]  # tags indexed on upgrade
        cat.items.edit("abc", title="new")  # the upgraded schema is writable
        assert [i.id for i in cat.items.search(text="NEW")] == ["abc"]  # and the text index follows
        assert cat.db.scalar("PRAGMA foreign_key_check") is None


def test_failed_migration_leaves_the_old_version(tmp_path, monkeypatch):
    path = tmp_path / "library.sqlite"
    _at_version(path, 1).close()

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("crash in the middle")

    monkeypatch.setattr(migrations, "MIGRATIONS", [migrations.MIGRATIONS[0], broken, *migrations.MIGRATIONS[2:]])
    with pytest.raises(RuntimeError):
        Database(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    conn.close()


def test_newer_schema_is_refused_clearly(tmp_path):
    path = tmp_path / "library.sqlite"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError, match="newer CraftStudio"):
        Database(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "library.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a readable CraftStudio library"):
        Database(path)


def test_two_connections_writing_at_once(tmp_path):
    home = tmp_path / "home"
    for i in range(2):
        make_lora(tmp_path / f"set{i}" / "x.safetensors", rank=i + 1)
    a, b = Catalog.open(home), Catalog.open(home)
    errors: list[BaseException] = []

    def writer(cat, n, prefix):
        try:
            for i in range(n):
                cat.history.save_curve_preset(f"{prefix}{i}", {"i": i})
                cat.history.start_training_run("style", {"i": i})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(a, 100, "a")), threading.Thread(target=writer, args=(b, 100, "b")),
               threading.Thread(target=a.scan, args=([tmp_path / "set0"],)),
               threading.Thread(target=b.scan, args=([tmp_path / "set1"],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(a.history.curve_presets()) == 200 and len(b.history.training_runs(limit=500)) == 200
    assert a.items.count("lora") == 2
    a.close()
    b.close()


def test_two_processes_writing_at_once(tmp_path):
    home = tmp_path / "home"
    Catalog.open(home).close()
    script = textwrap.dedent(f"""
        import sys
        from craftstudio.library.catalog import Catalog
        cat = Catalog.open({str(home)!r})
        for i in range(150):
            cat.history.save_curve_preset(sys.argv[1] + str(i), {{"i": i}})
        cat.close()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name], stderr=subprocess.PIPE) for name in "xy"]
    with Catalog.open(home) as cat:
        for i in range(50):
            cat.history.save_curve_preset(f"main{i}", {})
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
        assert len(cat.history.curve_presets()) == 350


def test_two_processes_opening_a_new_library_migrate_once(tmp_path):
    home = tmp_path / "home"
    script = f"from craftstudio.library.catalog import Catalog; Catalog.open({str(home)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with Catalog.open(home) as cat:
        assert cat.db.version == migrations.SCHEMA_VERSION


def _make_read_only(folder):
    """chmod; as root (which ignores modes) the immutable attribute; None if neither works."""
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return lambda: folder.chmod(0o755)
    probe.unlink()
    folder.chmod(0o755)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    return None


def test_read_only_library_folder_gives_a_clear_message(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    undo = _make_read_only(home)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        with pytest.raises(UserError, match=r"(read-only|writable)") as info:
            Catalog.open(home)
        assert str(home) in str(info.value)
    finally:
        undo()


def test_read_only_library_folder_on_import(tmp_path):
    src = make_lora(tmp_path / "ink.safetensors")
    cat = Catalog.open(tmp_path / "home")
    cat.paths.loras.mkdir()
    undo = _make_read_only(cat.paths.loras)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        with pytest.raises(UserError, match="Cannot copy .*ink.safetensors into the library folder") as info:
            cat.import_file(src)
        assert "--in-place" in str(info.value)
    finally:
        undo()
        cat.close()


def test_history_row_survives_item_edits(memory_catalog, tmp_path):
    from craftstudio.domain.generation import GenerateRequest, LoraRef

    item = memory_catalog.import_file(make_lora(tmp_path / "ink.safetensors")).item
    gid = memory_catalog.history.add_generation(
        GenerateRequest(model="m", prompt="p", style_lora=LoraRef(item.path, 1.0, item.id)), [])
    memory_catalog.items.edit(item.id, role="style")
    assert memory_catalog.db.scalar("SELECT style_lora FROM generations WHERE id = ?", (gid,)) == item.id
    assert json.loads(memory_catalog.db.scalar("SELECT request FROM generations"))["style_lora"]["sha256"] == item.id
    assert time.time() >= item.created_at and os.path.exists(item.path)
