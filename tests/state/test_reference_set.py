"""Reference sets: what is shown, what is refused and why, captions, removing images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from craftstudio.state.reference_set import IMAGE_SUFFIXES, ReferenceSet
from craftstudio.state.train_state import TrainState
from craftstudio.workers.job_runner import JobRunner


@pytest.fixture
def folder(tmp_path) -> Path:
    refs = tmp_path / "refs"
    refs.mkdir()
    for i, size in enumerate([(64, 64), (80, 72), (32, 40)]):
        Image.new("RGB", size, (40 * i, 90, 200)).save(refs / f"img-{i}.png")
    (refs / "img-1.txt").write_text("a sks in dots style\n", encoding="utf-8")
    (refs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (refs / "notes.md").write_text("hello")
    return refs


def test_unreadable_and_too_small_images_are_shown_with_their_reasons(qtbot, folder, tmp_path):
    refs = ReferenceSet()
    refs.set_folder(folder)
    assert [i.path.name for i in refs.images] == ["img-0.png", "img-1.png", "img-2.png"]
    reasons = {Path(p).name: r for p, r in refs.unreadable}
    assert reasons == {"broken.png": "damaged image (Truncated File Read)", "notes.md": "not an image file"}
    assert [i.path.name for i in refs.smaller_than(64)] == ["img-2.png"]

    runner = JobRunner()
    try:
        state = TrainState(runner, library_home=tmp_path / "home")
        state.model, state.trigger = "/models/x", "sks"
        state.resolution = 64
        state.images.set_folder(folder)
        assert state.start() is None
        assert "img-2.png (32x40)" in state.error and "smaller than the training resolution 64" in state.error
        state.upscale = True
        state.images.remove(folder / "img-2.png")
        assert state.request().images == (str(folder / "img-0.png"), str(folder / "img-1.png"))
    finally:
        runner.shutdown()


def test_the_reasons_are_the_trainers(folder):
    from craftstudio.engine.training.data import IMAGE_SUFFIXES as ENGINE_SUFFIXES
    from craftstudio.engine.training.data import collect_images

    engine = collect_images([folder])
    refs = ReferenceSet()
    refs.set_folder(folder)
    assert IMAGE_SUFFIXES == ENGINE_SUFFIXES
    assert refs.paths() == engine.paths
    assert sorted(refs.unreadable) == sorted(engine.skipped)


def test_captions_are_read_and_written_beside_the_image(qtbot, folder):
    refs = ReferenceSet()
    refs.set_folder(folder)
    assert [i.caption for i in refs.images] == [None, "a sks in dots style\n", None]
    refs.set_caption(folder / "img-0.png", "  a sks   on white ")
    assert (folder / "img-0.txt").read_text(encoding="utf-8") == "a sks on white\n"
    assert refs.images[0].caption == "a sks on white"
    assert "img-0.txt" not in {Path(p).name for p, _ in refs.unreadable}
    refs.set_caption(folder / "img-1.png", "")
    assert not (folder / "img-1.txt").exists() and refs.images[1].caption is None


def test_removing_keeps_the_file_and_a_backbone_gets_a_folder_of_the_chosen_images(qtbot, folder, tmp_path):
    refs = ReferenceSet()
    refs.set_folder(folder)
    assert refs.sources() == (str(folder),) and refs.selection_folder(tmp_path / "sets") == str(folder)
    refs.remove(folder / "img-0.png")
    assert (folder / "img-0.png").is_file()
    assert refs.sources() == (str(folder / "img-1.png"), str(folder / "img-2.png"))
    chosen = Path(refs.selection_folder(tmp_path / "sets"))
    assert sorted(p.name for p in chosen.iterdir()) == ["000-img-1.png", "000-img-1.txt", "001-img-2.png"]
    assert refs.selection_folder(tmp_path / "sets") == str(chosen)  # same selection, same folder
