"""Image to image on the Generate page: the picture sets the size, a painted mask is kept with
its job as a file, restoring a PNG brings the pictures back when they are still the same files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtGui import QColor, QImage

from craftstudio.domain.generation import GenerateRequest
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_file import SettingsFile
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


def _picture(path, width=128, height=96):
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(200, 60, 40))
    assert image.save(str(path))
    return str(path)


def _mask(width=128, height=96, white=True):
    mask = QImage(width, height, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    if white:
        for y in range(10, 20):
            for x in range(10, 30):
                mask.setPixel(x, y, 0xFFFFFFFF)
    return mask


def test_a_picture_starts_the_run_and_sets_the_size(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.native_size = (64, 64)
    picture = _picture(tmp_path / "photo.png")
    state.use_init_image(picture)
    assert state.pictures.picture_size == (128, 96)
    assert (state.width, state.height) == (72, 56)  # 4:3 at 64² pixels, multiples of 8
    assert "photo.png · 128 × 96 px" in state.pictures.note
    state.pictures.strength = 0.5
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    request = engine.calls[-1]
    assert (request.init_image, request.strength, request.mask) == (picture, 0.5, None)
    # The curve editor shades the skipped half of the schedule.
    assert state.craft.curves.skipped_steps == state.steps - int(state.steps * 0.5)
    state.pictures.clear()
    assert state.craft.curves.skipped_steps == 0 and state.request().init_image is None


def test_the_painted_mask_is_written_once_and_goes_with_the_job(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = GenerateState(runner, engine=engine, outputs=tmp_path / "outputs", library_home=tmp_path / "home")
    state.model, state.prompt, state.steps = "/models/fake", "a cat", 2
    state.use_init_image(_picture(tmp_path / "photo.png"))
    state.pictures.set_painted_mask(_mask())
    assert state.pictures.has_mask
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    mask = engine.calls[-1].mask
    assert mask is not None and mask.startswith(str(tmp_path / "home" / "masks"))
    written = QImage(mask)
    assert written.size() == _mask().size() and QColor(written.pixel(15, 15)).value() == 255
    # The same mask painted again is the same file; a blank mask is no mask.
    state.pictures.set_painted_mask(_mask())
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert engine.calls[-1].mask == mask
    assert len(list((tmp_path / "home" / "masks").iterdir())) == 1
    state.pictures.set_painted_mask(_mask(white=False))
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    assert engine.calls[-1].mask is None


def test_restoring_a_record_brings_back_pictures_that_are_unchanged(runner, tmp_path):
    state = make_state(runner, tmp_path)
    picture = _picture(tmp_path / "photo.png")
    mask = tmp_path / "mask.png"
    _mask().save(str(mask))
    sha = hashlib.sha256(Path(picture).read_bytes()).hexdigest()
    request = GenerateRequest(model="/models/fake", prompt="p", width=72, height=56, init_image=picture,
                              init_image_sha256=sha, strength=0.3, mask=str(mask), mask_sha256=None,
                              mask_blur=9, hires_factor=2.0, hires_strength=0.35)
    assert state.apply_request(request) == []
    p = state.pictures
    assert (p.init_image, p.strength, p.mask_file, p.mask_blur, p.hires_factor, p.hires_strength) == (
        picture, 0.3, str(mask), 9, 2.0, 0.35)
    assert (state.width, state.height) == (72, 56)  # the recorded size wins over the picture's
    changed = GenerateRequest(model="/models/fake", prompt="p", init_image=picture, init_image_sha256="0" * 64)
    assert state.apply_request(changed) == ["init image photo.png"]
    assert p.init_image == "" and state.request().init_image is None


def test_strength_and_hires_are_remembered(runner, tmp_path):
    settings = SettingsFile(tmp_path / "settings.json")
    state = make_state(runner, tmp_path, settings=settings)
    state.pictures.strength, state.pictures.hires_factor, state.pictures.mask_blur = 0.4, 1.5, 7
    state.save_settings()
    again = make_state(runner, tmp_path, settings=SettingsFile(tmp_path / "settings.json"))
    assert (again.pictures.strength, again.pictures.hires_factor, again.pictures.mask_blur) == (0.4, 1.5, 7)


def test_enlarge_makes_the_shown_result_again_at_twice_the_size(qtbot, runner, tmp_path):
    engine = FakeEngine()
    state = make_state(runner, tmp_path, engine)
    state.random_seed, state.seed, state.batch_count = False, 77, 2
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        state.generate()
    with qtbot.waitSignal(state.images_changed, timeout=TIMEOUT):
        assert state.enlarge(1) is not None
    request = engine.calls[-1]
    assert (request.seed, request.batch_count, request.hires_factor) == (78, 1, 2.0)
    assert request.output_size == (128, 128)


def test_an_unreadable_picture_is_said(runner, tmp_path):
    state = make_state(runner, tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_text("no picture")
    state.use_init_image(bad)
    assert state.pictures.picture_size is None and "bad.png cannot be read as a picture" in state.pictures.note
