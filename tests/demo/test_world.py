"""ShapesWorld: determinism, classes, captions and the held-out split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from craftstudio.demo.shapes import SIZE
from craftstudio.demo.styles import outline
from craftstudio.demo.world import (
    SHAPES,
    SPLIT,
    STYLES,
    Scene,
    caption,
    parse_caption,
    random_scenes,
    render,
    render_array,
    render_random,
    render_with_mask,
    trigger_caption,
)


def test_at_least_twelve_shapes_and_styles_with_a_disjoint_split():
    assert len(SHAPES) >= 12 and len(STYLES) >= 12
    assert set(SPLIT.train_shapes) | set(SPLIT.heldout_shapes) == set(SHAPES)
    assert set(SPLIT.train_styles) | set(SPLIT.heldout_styles) == set(STYLES)
    assert not set(SPLIT.train_shapes) & set(SPLIT.heldout_shapes)
    assert not set(SPLIT.train_styles) & set(SPLIT.heldout_styles)
    assert SPLIT.heldout_shapes and SPLIT.heldout_styles
    assert len(SPLIT.train_pairs()) == len(SPLIT.train_shapes) * len(SPLIT.train_styles)


def test_same_seed_same_pixels_and_other_seeds_differ():
    for shape, style in [("star", "stripes"), ("heart", "neon"), ("ring", "speckle"), ("bolt", "mosaic")]:
        first = render_array(shape, style, 1234)
        assert first.shape == (SIZE, SIZE, 3) and first.dtype == np.uint8
        assert np.array_equal(first, render_array(shape, style, 1234))
        assert not np.array_equal(first, render_array(shape, style, 1235))
    image = render("circle", "flat", 7)
    assert image.size == (64, 64) and image.mode == "RGB"


def test_layout_depends_on_the_seed_alone():
    scene_a, scene_b = Scene("star", "dots", 42), Scene("hexagon", "neon", 42)
    assert scene_a.placement == scene_b.placement
    _, mask_dots = render_with_mask("star", "dots", 42)
    _, mask_neon = render_with_mask("star", "neon", 42)
    assert np.array_equal(mask_dots, mask_neon)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_shows_the_object(style):
    """Object (or its outline, for the drawn styles) and background differ in every style."""
    for seed in range(3):
        image, mask = render_with_mask("square", style, seed)
        pixels = image.astype(np.float32)
        edge = outline(mask) > 0.5
        inside = (mask > 0.99) | edge
        far = (mask == 0) & ~edge
        far &= np.roll(far, 3, 0) & np.roll(far, -3, 0) & np.roll(far, 3, 1) & np.roll(far, -3, 1)
        difference = np.abs(pixels[inside].mean(0) - pixels[far].mean(0)).max()
        assert difference > 25, (style, seed, difference)


def test_every_shape_covers_a_fair_part_of_the_picture():
    for shape in SHAPES:
        for seed in range(4):
            _, mask = render_with_mask(shape, "flat", seed)
            assert 0.03 < mask.mean() < 0.6, (shape, seed, mask.mean())
            ys, xs = np.nonzero(mask > 0.5)
            assert ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63, (shape, seed)


def test_captions_name_their_classes():
    assert caption("star", "stripes") == "a star in stripes style"
    for shape in SHAPES:
        for style in STYLES:
            assert parse_caption(caption(shape, style)) == (shape, style)
    assert parse_caption("a photo of a cat") is None
    assert trigger_caption(content="sks", style="dots") == "a sks in dots style"
    assert trigger_caption(content="star", style="zxq") == "a star in zxq style"
    assert Scene("ring", "grid", 1).caption == "a ring in grid style"


def test_random_scenes_are_deterministic_and_keep_to_their_classes():
    scenes = random_scenes(50, seed=3, shapes=SPLIT.train_shapes, styles=SPLIT.train_styles)
    assert scenes == random_scenes(50, seed=3, shapes=SPLIT.train_shapes, styles=SPLIT.train_styles)
    assert {s.content for s in scenes} <= set(SPLIT.train_shapes)
    assert {s.style for s in scenes} <= set(SPLIT.train_styles)
    pictures = render_random(8, seed=5, with_masks=True)
    assert pictures.images.shape == (8, 64, 64, 3) and pictures.masks.shape == (8, 16, 16)
    again = render_random(8, seed=5)
    assert np.array_equal(pictures.images, again.images) and again.masks is None
    for image, c, s, k in zip(pictures.images, pictures.contents, pictures.styles, pictures.seeds, strict=True):
        assert np.array_equal(image, render_array(SHAPES[c], STYLES[s], int(k)))
    assert pictures.captions()[0] == caption(SHAPES[pictures.contents[0]], STYLES[pictures.styles[0]])


def test_base_pictures_show_training_classes_named_by_their_caption_files(tmp_path):
    from craftstudio.demo.world import write_base_pictures

    folder = write_base_pictures(tmp_path / "keep", 6, seed=2)
    (folder / "stale.png").write_bytes(b"old")
    write_base_pictures(folder, 6, seed=2)  # a second write replaces the folder's pictures
    pictures = sorted(folder.glob("*.png"))
    assert len(pictures) == 6 and len(list(folder.glob("*.txt"))) == 6
    for path, scene in zip(pictures, random_scenes(6, 2, SPLIT.train_shapes, SPLIT.train_styles), strict=True):
        shape, style = parse_caption(path.with_suffix(".txt").read_text())
        assert (shape, style) == (scene.content, scene.style) and shape in SPLIT.train_shapes
        assert np.array_equal(np.asarray(Image.open(path)), render_array(shape, style, scene.seed))


def test_unknown_classes_and_bad_seeds_are_refused():
    with pytest.raises(ValueError, match="Unknown shape"):
        render("dragon", "dots", 0)
    with pytest.raises(ValueError, match="Unknown style"):
        render("star", "cubism", 0)
    with pytest.raises(ValueError, match="Seed"):
        render("star", "dots", -1)


def test_worker_processes_render_the_same_pictures():
    alone = render_random(600, seed=11)
    shared = render_random(600, seed=11, workers=2)
    assert np.array_equal(alone.images, shared.images) and np.array_equal(alone.styles, shared.styles)


def test_render_command_writes_a_contact_sheet(tmp_path, capsys):
    from PIL import Image

    from craftstudio.demo.lab.commands import main

    out = tmp_path / "sheet.png"
    assert main(["render", "--out", str(out), "--shapes", "star,ring", "--styles", "dots"]) == 0
    assert Image.open(out).size == (128, 64)
    assert "1 styles x 2 shapes" in capsys.readouterr().out


def test_marked_prompts_carry_the_markers_and_the_style_weight():
    from craftstudio.demo.world import marked_prompt
    from craftstudio.domain.markers import parse_prompt, strip_markers

    assert marked_prompt("sks", "zxq") == "a sks <c> in zxq style <s>"
    weighted = marked_prompt("sks", "zxq", 0.25)
    assert strip_markers(weighted) == caption("sks", "zxq")
    assert (parse_prompt(weighted).gamma_content, parse_prompt(weighted).gamma_style) == (1.0, 0.25)
