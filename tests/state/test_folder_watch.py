"""FolderWatch: changes anywhere under a watched folder come out as one report per burst."""

from __future__ import annotations

from craftstudio.state.folder_watch import FolderWatch


def test_a_burst_of_changes_is_one_report_naming_the_root(qtbot, tmp_path):
    root = tmp_path / "loras"
    (root / "sub").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    watch = FolderWatch(debounce_ms=100)
    watch.watch([str(root), str(other)])
    reports = []
    watch.changed.connect(reports.append)
    with qtbot.waitSignal(watch.changed, timeout=5000):
        for i in range(5):
            (root / "sub" / f"f{i}.safetensors").write_bytes(b"x")
    assert reports == [[str(root)]]
    qtbot.wait(300)
    assert len(reports) == 1  # the burst gave one report


def test_new_sub_folders_are_watched_and_stop_ends_it(qtbot, tmp_path):
    root = tmp_path / "loras"
    root.mkdir()
    watch = FolderWatch(debounce_ms=50)
    watch.watch([str(root)])
    with qtbot.waitSignal(watch.changed, timeout=5000):
        (root / "new").mkdir()
    with qtbot.waitSignal(watch.changed, timeout=5000) as report:
        (root / "new" / "a.safetensors").write_bytes(b"x")  # inside the folder that appeared
    assert report.args == [[str(root)]]
    watch.stop()
    with qtbot.assertNotEmitted(watch.changed, wait=300):
        (root / "b.safetensors").write_bytes(b"x")
