"""`python -m craftstudio screenshots`: one non-blank PNG per area, placeholders only where expected.

The engine is the scriptable fake here (the real demo generation through the GUI is tested in
tests/ui/test_generate_real_engine.py); everything else is what the command runs.
"""

from __future__ import annotations

from PIL import Image, ImageStat

from craftstudio.cli import build_parser
from craftstudio.screenshots import SIZE, file_name, take_screenshots
from craftstudio.ui.main_window import AREAS
from tests.workers.fake_engine import FakeEngine, _image


def test_one_png_per_area_with_the_finished_image_on_generate(qtbot, tmp_path):
    out = tmp_path / "shots"
    engine = FakeEngine()
    shots = take_screenshots(out, steps=3, engine=engine)
    assert [shot.area for shot in shots][:len(AREAS)] == list(AREAS)
    assert sorted(p.name for p in out.iterdir()) == sorted(file_name(shot.area) for shot in shots)
    for shot in shots:
        with Image.open(shot.path) as image:
            assert image.size == SIZE
            spread = ImageStat.Stat(image.convert("L")).stddev[0]
            assert spread > 5, f"{shot.area} looks blank"
        assert not shot.placeholder, f"{shot.area} says 'Coming soon'"
    # The demo request ran (demo model, 64×64) and its image fills the Generate page's canvas.
    request = next(r for r in reversed(engine.calls) if r.init_image is None)
    assert request.model.endswith("shapesworld") and (request.width, request.height) == (64, 64)
    colour = _image(request, request.seed, request.steps).getpixel((0, 0))
    generate = next(shot for shot in shots if shot.area == "Generate")
    with Image.open(generate.path) as image:
        canvas = image.convert("RGB").crop((SIZE[0] * 2 // 3, SIZE[1] // 3, SIZE[0] - 40, SIZE[1] * 2 // 3))
        counts = dict((c, n) for n, c in canvas.getcolors(maxcolors=1_000_000))
        assert counts.get(colour, 0) > canvas.width * canvas.height // 2
    # Image to image ran from the rendered star with the demo style LoRA.
    restyle = engine.calls[-1]
    assert restyle.init_image.endswith("star-in-stripes.png") and restyle.strength == 0.55
    assert {"Image to image", "Mask"} <= {shot.area for shot in shots}


def test_the_cli_command_is_registered():
    args = build_parser().parse_args(["screenshots", "--out", "somewhere"])
    assert args.func.__name__ == "_run_screenshots" and str(args.out) == "somewhere"
