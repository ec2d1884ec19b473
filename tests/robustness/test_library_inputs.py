"""`craftstudio library import/scan/list` with bad files, special files and damaged databases."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from craftstudio.domain.atomic_file import normal_mode
from craftstudio.library.catalog import Catalog
from craftstudio.library.synthetic import LAYOUTS, write_safetensors
from tests.robustness.conftest import (
    BAD_FILE_KINDS,
    SPECIAL_KINDS,
    assert_one_line,
    bad_safetensors,
    catalog_state,
    run_cli,
    shown,
    special_path,
)


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_import_refuses_broken_safetensors(capsys, home, unchanged, tmp_path, kind):
    path = bad_safetensors(tmp_path, kind)
    rc, _, err = run_cli(capsys, ["library", "import", str(path)])
    assert_one_line(rc, err, shown(path))
    unchanged()


@pytest.mark.parametrize("kind", [k for k in SPECIAL_KINDS if k != "missing"] + ["missing"])
def test_import_refuses_special_paths(capsys, home, unchanged, tmp_path, kind):
    path = special_path(tmp_path, kind)
    rc, _, err = run_cli(capsys, ["library", "import", str(path)])
    line = assert_one_line(rc, err)
    assert ("not valid UTF-8" if kind == "non-utf8" else shown(path)) in line
    unchanged()


def test_import_of_non_utf8_name_leaves_no_copy_on_retries(capsys, home, unchanged, tmp_path):
    path = special_path(tmp_path, "non-utf8")
    for _ in range(3):
        rc, _, err = run_cli(capsys, ["library", "import", str(path)])
        assert_one_line(rc, err, "not valid UTF-8")
    unchanged()


def test_concurrent_imports_of_one_file_leave_one_copy(home, tmp_path):
    lora = write_safetensors(tmp_path / "twin.safetensors", LAYOUTS["kohya-sdxl"](8))
    results, errors = [], []

    def run() -> None:
        try:
            with Catalog.open(home) as cat:  # one connection each, as separate processes have
                results.append(cat.import_file(lora).item.id)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    copies = [p for p in (home / "loras").iterdir() if p.name.startswith("twin")]
    assert len(copies) == 1 and not list((home / "loras").glob(".*.tmp"))


def test_imported_and_written_files_get_the_normal_mode(home, tmp_path):
    lora = write_safetensors(tmp_path / "mode.safetensors", LAYOUTS["kohya-sd1"](8))
    with Catalog.open(home) as cat:
        copied = Path(cat.import_file(lora).item.path)
    assert stat.S_IMODE(copied.stat().st_mode) == normal_mode()


def test_stale_temp_files_are_removed_on_open(home):
    stale = home / "loras" / ".big.safetensors.abc123.tmp"
    fresh = home / "loras" / ".other.safetensors.def456.tmp"
    stale.write_bytes(bytes(1024))
    fresh.write_bytes(bytes(1024))
    staged = home / "models" / ".model.x1y2.tmp"  # a model folder an import was copying
    (staged / "unet").mkdir(parents=True)
    for path in (stale, staged):
        os.utime(path, (1, 1))
    Catalog.open(home).close()
    assert not stale.exists() and not staged.exists() and fresh.exists()  # a fresh one may belong to a running import


# ---------- scan


@pytest.mark.parametrize("kind", ["fifo", "loop", "non-utf8"])
def test_scan_reports_special_files_and_goes_on(capsys, home, tmp_path, kind):
    folder = tmp_path / "scan"
    folder.mkdir()
    good = write_safetensors(folder / "good.safetensors", LAYOUTS["kohya-sdxl"](4))
    special_path(folder, kind)
    rc, out, err = run_cli(capsys, ["library", "scan", str(folder)])
    assert rc == 0 and "Traceback" not in err
    reason = {"fifo": "FIFO", "loop": "loop of symbolic links", "non-utf8": "not valid UTF-8"}[kind]
    assert reason in out and "1 added" in out
    with Catalog.open(home) as cat:
        assert cat.items.by_path(good) is not None and cat.items.count() == 2  # kept + good


def test_scan_reports_a_folder_link_loop(capsys, home, tmp_path):
    folder = tmp_path / "scan"
    (folder / "sub").mkdir(parents=True)
    os.symlink(folder, folder / "sub" / "back")
    rc, out, _ = run_cli(capsys, ["library", "scan", str(folder)])
    assert rc == 0 and "loop" in out and str(folder / "sub" / "back") in out


@pytest.mark.parametrize("kind", ["unknown-dtype", "shape-disagrees", "offsets-text", "metadata-list"])
def test_scan_lists_unreadable_headers_as_unusable(capsys, home, tmp_path, kind):
    folder = tmp_path / "scan"
    folder.mkdir()
    bad = bad_safetensors(folder, kind)
    rc, out, _ = run_cli(capsys, ["library", "scan", "--json", str(folder)])
    assert rc == 0 and [p for p, _ in json.loads(out)["unreadable"]] == [str(bad)]
    with Catalog.open(home) as cat:
        assert cat.items.by_path(bad) is None
        assert [e.status for e in cat.files() if e.path == str(bad)] == ["unreadable"]


def test_scan_refuses_a_damaged_database_before_writing(capsys, home, tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    write_safetensors(folder / "good.safetensors", LAYOUTS["kohya-sd1"](4))
    db = home / "library.sqlite"
    with Catalog.open(home) as cat:
        cat.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page, len(data), page):  # damage every page but the first (the schema)
        data[offset:offset + 8] = b"\xff" * 8
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    rc, _, err = run_cli(capsys, ["library", "scan", str(folder)])
    assert_one_line(rc, err, str(db))
    assert db.read_bytes() == before


def test_read_only_library_can_be_listed(capsys, home, monkeypatch):
    import craftstudio.library.database as database

    monkeypatch.setattr(database, "_writable", lambda path: False)
    before = catalog_state(home)
    rc, out, _ = run_cli(capsys, ["library", "list"])
    assert rc == 0 and "kept" in out
    rc, _, err = run_cli(capsys, ["library", "edit", "kept", "--title", "x"])
    assert_one_line(rc, err, "read-only")
    assert catalog_state(home) == before


# ---------- terminal output


def test_info_on_a_non_utf8_name_is_one_line(capsys, home, unchanged, tmp_path):
    path = special_path(tmp_path, "non-utf8")
    rc, _, err = run_cli(capsys, ["library", "info", str(path)])
    assert_one_line(rc, err, "not UTF-8")
    unchanged()


def test_list_shows_one_row_per_item_whatever_the_file_name(capsys, home, tmp_path):
    lora = write_safetensors(tmp_path / "two\nlines\x1b[2J.safetensors", LAYOUTS["kohya-sdxl"](4))
    assert run_cli(capsys, ["library", "import", str(lora), "--in-place"])[0] == 0
    rc, out, _ = run_cli(capsys, ["library", "list"])
    assert rc == 0 and "\x1b" not in out
    assert out.strip().splitlines()[-1] == "2 item(s)" and len(out.strip().splitlines()) == 4
