"""Training images: collection with skipped files, size checks, resize/crop, the low-pass filter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from craftstudio.engine.training.data import (
    ImageSetError,
    check_sizes,
    collect_images,
    gaussian_response,
    load_pixels,
    low_pass,
    read_captions,
)
from tests.engine.training.conftest import write_image


def test_folders_are_read_sorted_and_non_images_are_skipped_and_listed(refs):
    images = collect_images([refs["content"]])
    assert [p.name for p in images.paths] == ["content-0.png", "content-1.png", "content-2.png"]
    assert images.skipped == [(str(refs["content"] / "notes.txt"), "not an image file")]
    assert len(collect_images([refs["content"]], limit=2).paths) == 2


def test_damaged_images_are_skipped_with_the_reason(tmp_path):
    write_image(tmp_path / "good.png", 1)
    full = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(full[: len(full) // 2])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / ".DS_Store").write_bytes(b"hidden files are ignored")
    images = collect_images([tmp_path])
    assert [p.name for p in images.paths] == ["good.png"]
    assert [(name.split("/")[-1], reason.split(" (")[0]) for name, reason in images.skipped] == [
        ("broken.png", "damaged image"), ("truncated.png", "damaged image")]


def test_no_usable_images_is_refused_naming_what_was_skipped(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageSetError, match=r"No usable images .* all 2 files were skipped \(a.txt: not an image"):
        collect_images([tmp_path])


def test_empty_or_missing_sources_are_refused(tmp_path):
    with pytest.raises(ImageSetError, match="No images in"):
        collect_images([tmp_path])
    with pytest.raises(ImageSetError, match="does not exist"):
        collect_images([tmp_path / "nowhere"])


def test_small_images_are_refused_unless_upscaling_is_asked(refs):
    small = collect_images([refs["small"]]).paths
    with pytest.raises(ImageSetError, match=r"smaller than the training resolution 32: tiny.png \(20x24\).*--upscale"):
        check_sizes(small, 32, upscale=False)
    check_sizes(small, 32, upscale=True)
    assert load_pixels(small[0], 32).shape == (3, 32, 32)


def test_resize_keeps_the_shorter_side_and_crops_the_center(tmp_path):
    # 60x30 image: left third red, middle third green, right third blue → the square crop is green.
    array = np.zeros((30, 60, 3), dtype=np.uint8)
    array[:, :20, 0] = 255
    array[:, 20:40, 1] = 255
    array[:, 40:, 2] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    pixels = load_pixels(tmp_path / "wide.png", 16)
    assert pixels.shape == (3, 16, 16)
    assert pixels.min() >= -1 and pixels.max() <= 1
    center = pixels[:, 4:12, 4:12].mean(dim=(1, 2))
    assert center[1] > 0.9 and center[0] < -0.9 and center[2] < -0.9


def test_low_pass_keeps_flat_images_and_follows_its_definition():
    flat = torch.full((3, 16, 16), 0.25)
    assert torch.allclose(low_pass(flat, 0.35), flat, atol=1e-6)
    # A DCT-II cosine with k half-cycles over W pixels is one Fourier mode of the mirrored image,
    # at normalised frequency k/W (1 = Nyquist): its amplitude must scale by exp(-(k/W)²/(2σ²)).
    width, sigma = 32, 0.35
    x = torch.arange(width, dtype=torch.float64)
    for k in (2, 8, 16, 24):
        wave = torch.cos(math.pi * k * (x + 0.5) / width).repeat(width, 1)
        gain = float((low_pass(wave, sigma) * wave).sum() / (wave * wave).sum())
        assert gain == pytest.approx(math.exp(-((k / width) ** 2) / (2 * sigma**2)), abs=1e-9)


def test_gaussian_response_is_normalised_to_nyquist():
    h = gaussian_response(8, 8, 0.35)
    assert h[0, 0] == 1.0
    assert float(h[0, 4]) == pytest.approx(math.exp(-1 / (2 * 0.35**2)))  # column 4 of 8 = Nyquist


def test_caption_files_belong_to_their_images_and_are_not_skipped(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / f"{name}.png", 1)
    (tmp_path / "a.txt").write_text("a star in {trigger} style", encoding="utf-8")
    (tmp_path / "orphan.txt").write_text("no image of this name")
    images = collect_images([tmp_path])
    assert [p.name for p in images.paths] == ["a.png", "b.png"]
    assert images.skipped == [(str(tmp_path / "orphan.txt"), "not an image file")]
    assert read_captions(images.paths) == ["a star in {trigger} style", None]


def test_an_unreadable_caption_file_is_refused_naming_it(tmp_path):
    write_image(tmp_path / "a.png", 1)
    (tmp_path / "a.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ImageSetError, match=r"The caption file .*a\.txt cannot be read.*UTF-8"):
        read_captions([tmp_path / "a.png"])
