"""Scanning: incremental, resumable, robust against every kind of bad or vanishing file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.library import catalog as catalog_module
from craftstudio.library import synthetic
from craftstudio.library.catalog import Catalog
from tests.library.conftest import make_lora


def _bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "huge header.safetensors").write_bytes((8 * 2**30).to_bytes(8, "little") + b"{}")
    good = make_lora(folder / "truncated.safetensors")
    good.write_bytes(good.read_bytes()[:-1000])
    (folder / "text.safetensors").write_text("not a model at all, just text")
    (folder / "old.ckpt").write_bytes(b"\x80\x02pickle")
    synthetic.write_safetensors(folder / "vae.safetensors", {"decoder.up.0.block.0.conv1.weight": (4, 4)})
    (folder / "notes.txt").write_text("ignored")


def test_scan_records_every_bad_file_with_a_reason_and_goes_on(catalog, loras):
    _bad_files(loras / "bad")
    report = catalog.scan([loras])
    assert report.added == 4
    reasons = {os.path.basename(p): r for p, r in report.unreadable}
    assert set(reasons) == {"empty.safetensors", "huge header.safetensors", "truncated.safetensors",
                            "text.safetensors", "old.ckpt"}
    assert "empty" in reasons["empty.safetensors"]
    assert "8.0 GB" in reasons["huge header.safetensors"]
    assert "truncated" in reasons["truncated.safetensors"]
    assert "pickle" in reasons["old.ckpt"]
    assert [os.path.basename(p) for p, _ in report.other] == ["vae.safetensors"]
    stored = {e.name: e.reason for e in catalog.files() if e.status != "ok"}
    assert stored["empty.safetensors"] == reasons["empty.safetensors"]
    assert catalog.items.count("lora") == 4


def test_rescan_skips_unchanged_files_without_reading_them(catalog, loras, monkeypatch):
    _bad_files(loras / "bad")
    first = catalog.scan([loras])
    calls = []
    real = catalog_module.inspect_file
    monkeypatch.setattr(catalog_module, "inspect_file", lambda p: calls.append(p) or real(p))
    again = catalog.scan([loras])
    assert calls == []
    assert again.unchanged == first.total and again.added == again.updated == 0
    assert len(again.unreadable) == len(first.unreadable)  # still reported
    make_lora(loras / "cat.safetensors", "peft-sd1", rank=8)  # one file changes
    (loras / "ink sketch.civitai.info").write_text('{"trainedWords": ["inked"]}')  # a sidecar appears
    third = catalog.scan([loras])
    assert sorted(os.path.basename(str(p)) for p in calls) == ["cat.safetensors", "ink sketch.safetensors"]
    assert third.added == 1 and third.updated == 1
    assert "inked" in catalog.items.find("ink sketch").triggers


def test_progress_events(catalog, loras):
    events = []
    catalog.scan([loras], progress=events.append)
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert {e.total for e in events} == {4} and all(e.stage == "scan" for e in events)


def test_paths_with_spaces_and_non_ascii(catalog, tmp_path):
    folder = tmp_path / "Ünïcode földer" / "日本語 loras"
    make_lora(folder / "my lora (v2) ñ.safetensors")
    catalog.scan([tmp_path])
    [item] = catalog.items.search()
    assert item.name == "my lora (v2) ñ" and item.path == str(folder / "my lora (v2) ñ.safetensors")
    assert catalog.items.find(item.path).id == item.id


def test_file_vanishing_between_listing_and_hashing(catalog, loras, monkeypatch):
    real = catalog.register

    def register(path, **kw):
        if path.name == "cat.safetensors":
            os.remove(path)
        return real(path, **kw)

    monkeypatch.setattr(catalog, "register", register)
    report = catalog.scan([loras])
    assert [os.path.basename(p) for p in report.vanished] == ["cat.safetensors"]
    assert report.added == 3 and not report.unreadable


def test_unreadable_file(catalog, loras, monkeypatch):
    real = catalog_module.inspect_file

    def inspect(path):
        if path.name == "cat.safetensors":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(catalog_module, "inspect_file", inspect)
    report = catalog.scan([loras])
    assert [(os.path.basename(p), r) for p, r in report.unreadable] == [
        ("cat.safetensors", "permission denied: make the file readable")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_by_permissions(catalog, loras):
    (loras / "cat.safetensors").chmod(0)
    try:
        report = catalog.scan([loras])
    finally:
        (loras / "cat.safetensors").chmod(0o644)
    assert [os.path.basename(p) for p, _ in report.unreadable] == ["cat.safetensors"]


def test_cancelled_scan_keeps_work_and_resumes(catalog, loras):
    token = CancelToken()

    def progress(event):
        if event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        catalog.scan([loras], progress=progress, cancel=token)
    assert catalog.items.count("lora") == 2
    assert catalog.db.scalar("PRAGMA integrity_check") == "ok"
    report = catalog.resume_scan()
    assert report is not None and report.unchanged == 2 and report.added == 2
    assert catalog.items.count("lora") == 4
    assert catalog.resume_scan() is None  # nothing left to resume


def test_scan_killed_mid_way_leaves_a_consistent_database(tmp_path, loras):
    for i in range(20):
        make_lora(loras / "more" / f"l{i:02d}.safetensors", rank=i + 1)
    home = tmp_path / "home"
    # A process that dies hard (no cleanup, no commit of anything in flight) after 10 files: the
    # batch in flight (at most scanner.BATCH_SECONDS of work) is lost, everything else is kept.
    script = textwrap.dedent(f"""
        import os
        from craftstudio.library.catalog import Catalog
        cat = Catalog.open({str(home)!r})
        def progress(event):
            if event.step == 10:
                os._exit(9)
        cat.scan([{str(loras)!r}], progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr.decode()
    with Catalog.open(home) as cat:
        assert cat.db.scalar("PRAGMA integrity_check") == "ok"
        assert cat.db.scalar("PRAGMA foreign_key_check") is None
        done = cat.items.count("lora")
        assert 0 <= done <= 10
        assert cat.db.scalar("SELECT COUNT(*) FROM files WHERE status = 'ok' AND item_id IS NULL") == 0
        report = cat.resume_scan()
        assert report.unchanged == done and report.added == 24 - done
        assert cat.items.count("lora") == 24


def test_moved_file_keeps_its_record_and_tags(catalog, loras):
    catalog.scan([loras])
    ink = catalog.items.find("ink sketch")
    catalog.items.change_tags(ink.id, add=["keep"])
    (loras / "archive").mkdir()
    os.replace(loras / "ink sketch.safetensors", loras / "archive" / "ink sketch.safetensors")
    report = catalog.scan([loras])
    assert report.forgotten == 1
    moved = catalog.items.get(ink.id)
    assert moved.path == str(loras / "archive" / "ink sketch.safetensors")
    assert moved.tags == ["keep"] and not moved.missing


def test_deleted_file_is_marked_missing_not_forgotten(catalog, loras):
    catalog.scan([loras])
    cat_item = catalog.items.find("cat")
    catalog.items.change_tags(cat_item.id, add=["precious"])
    os.remove(loras / "cat.safetensors")
    catalog.scan([loras])
    item = catalog.items.get(cat_item.id)
    assert item.missing and item.tags == ["precious"]
    make_lora(loras / "cat.safetensors", "peft-sd1", metadata={"craft.role": "content"})  # it comes back
    catalog.scan([loras])
    assert not catalog.items.get(cat_item.id).missing


def test_duplicates_by_hash(catalog, loras):
    (loras / "copy").mkdir()
    (loras / "copy" / "ink again.safetensors").write_bytes((loras / "ink sketch.safetensors").read_bytes())
    catalog.scan([loras])
    ink = catalog.items.find("ink sketch")
    catalog.items.edit(ink.id, title="edited")  # editing keeps the file links
    [(item, paths)] = catalog.items.duplicates()
    assert item.id == ink.id and item.title == "edited"
    assert sorted(paths) == sorted([str(loras / "ink sketch.safetensors"),
                                    str(loras / "copy" / "ink again.safetensors")])
    assert catalog.items.count("lora") == 4


def test_diffusers_folders_are_models_and_not_descended(catalog, tiny_sd1, tmp_path):
    catalog.scan([tiny_sd1.parent])
    [model] = catalog.items.search(kind="model")
    assert (model.path, model.family, model.format) == (str(tiny_sd1), "sd1", "diffusers")
    assert catalog.items.search(kind="lora") == []
    again = catalog.scan([tiny_sd1.parent])
    assert again.unchanged == 1


def test_scan_of_a_missing_folder_says_so(catalog, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        catalog.scan([tmp_path / "nowhere"])


def test_library_trash_is_not_scanned(catalog, tmp_path):
    item = catalog.import_file(make_lora(tmp_path / "ink.safetensors")).item
    catalog.remove(item.id)
    report = catalog.scan([catalog.paths.root])
    assert report.total == 0 and catalog.items.search() == []


def test_two_libraries_do_not_share_state(tmp_path, loras):
    with Catalog.open(tmp_path / "a") as a, Catalog.open(tmp_path / "b") as b:
        a.scan([loras])
        assert b.items.count() == 0 and a.items.count() == 4


def test_training_checkpoints_and_samples_beside_a_lora_are_not_listed(catalog, tmp_path):
    folder = tmp_path / "loras"
    make_lora(folder / "mine.safetensors")
    make_lora(folder / "mine.safetensors.checkpoints" / "last.safetensors", rank=2)  # other bytes
    make_lora(folder / "mine.safetensors.samples" / "stray.safetensors", rank=8)
    report = catalog.scan([folder])
    assert report.added == 1
    assert [item.name for item in catalog.items.search(kind=None)] == ["mine"]
