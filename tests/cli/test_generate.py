"""The command line: generate end to end, PNG parameters read back, user errors exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from craftstudio import __version__
from craftstudio.cli import main
from craftstudio.domain.errors import UserError
from craftstudio.library.png_params import read_request, read_text_chunks


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_generate_writes_png_whose_parameters_read_back(tmp_path, tiny_sd1, capsys):
    out = tmp_path / "x.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--prompt", "a cat", "--negative", "a dog",
               "--steps", "4", "--size", "64x48", "--cfg", "5.5", "--seed", "42",
               "--scheduler", "euler_a", "--device", "cpu", "--out", str(out)])
    assert rc == 0 and out.is_file()
    params = read_text_chunks(out)["parameters"]
    assert params.splitlines()[0] == "a cat"
    assert "Negative prompt: a dog" in params
    assert "Steps: 4, Sampler: Euler a, CFG scale: 5.5, Seed: 42, Size: 64x48, Model: tiny-sd1" in params
    # Both the A1111 text and our JSON chunk read back to the same settings.
    from craftstudio.domain.infotext import request_from_infotext

    for request in (read_request(out), request_from_infotext(params, model=str(tiny_sd1))):
        assert (request.prompt, request.negative_prompt, request.steps, request.cfg_scale, request.seed,
                request.width, request.height, request.scheduler) == (
            "a cat", "a dog", 4, 5.5, 42, 64, 48, "euler_a")
    assert read_request(out).model == str(tiny_sd1)


def test_batch_writes_numbered_files_with_their_own_seeds(tmp_path, tiny_sd1):
    out = tmp_path / "b.png"
    assert main(["generate", "--model", str(tiny_sd1), "--prompt", "a cat", "--steps", "2",
                 "--size", "64x64", "--batch", "2", "--seed", "7", "--device", "cpu", "--out", str(out)]) == 0
    assert [read_request(tmp_path / f"b-{i}.png").seed for i in (1, 2)] == [7, 8]


@pytest.mark.parametrize("args, expected", [
    (["--size", "65x64"], "multiple of 8"),
    (["--steps", "0"], "Steps must be between 1 and 1000"),
    (["--scheduler", "heun"], "Unknown scheduler 'heun'"),
])
def test_bad_settings_exit_2_with_one_line(tmp_path, tiny_sd1, capsys, args, expected):
    out = tmp_path / "bad.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--prompt", "a cat", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: (d / "m.ckpt").write_bytes(b"\x80\x04") and d / "m.ckpt", "pickle checkpoint"),
    (lambda d: (d / "t.safetensors").write_text("just text") and d / "t.safetensors", "not a valid"),
])
def test_bad_models_exit_2(tmp_path, capsys, make, expected):
    model = make(tmp_path)
    out = tmp_path / "o.png"
    rc = main(["generate", "--model", str(model), "--prompt", "a cat", "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and str(model) in err and "Traceback" not in err
    assert not out.exists()


def test_module_entry_point_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "craftstudio", "generate", "--model", str(tmp_path / "x"),
                           "--prompt", "p", "--out", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr


def test_generate_with_craft_loras_records_mode_curves_and_gamma(tmp_path, tiny_sd1):
    import json

    import torch

    from craftstudio.engine.loader import load_model
    from tests.kit.tiny_loras import random_lora, save_kohya, save_peft

    unet = load_model(tiny_sd1, torch.device("cpu"), torch.float32).unet
    content = save_peft(random_lora(unet, seed=1), tmp_path / "c.safetensors")
    style = save_kohya(random_lora(unet, seed=2), tmp_path / "s.safetensors")
    out = tmp_path / "x.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--content-lora", f"{content}:0.8",
               "--style-lora", str(style), "--prompt", "a dog <c> in watercolor style <s>",
               "--curves", "paper", "--steps", "4", "--size", "64x64", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    chunks = read_text_chunks(out)
    record = json.loads(chunks["craftstudio"])
    assert record["record"]["mode"] == "craft"
    assert record["record"]["gamma"] == {"content": 1.0, "style": 1.0}
    assert record["record"]["curves"] == "paper"
    assert record["record"]["loras"]["content"]["layers_dropped"] > 0
    request = read_request(out)
    assert request.content_lora.weight == 0.8 and request.content_lora.path == str(content)
    assert request.curves["name"] == "paper" and request.mode.value == "craft"
    assert "CRAFT mode: craft" in chunks["parameters"] and "Lora hashes:" in chunks["parameters"]


def test_generate_rejects_bad_markers_and_bad_curve_files(tmp_path, tiny_sd1, capsys):
    bad_curves = tmp_path / "bad.json"
    bad_curves.write_text("{not json")
    base = ["generate", "--model", str(tiny_sd1), "--steps", "2", "--size", "64x64", "--device", "cpu",
            "--out", str(tmp_path / "o.png")]
    assert main([*base, "--prompt", "a cat <x>"]) == 2
    assert "column" in capsys.readouterr().err
    assert main([*base, "--prompt", "a cat", "--curves", str(bad_curves)]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_train_lora_then_generate_through_the_cli(tmp_path, tiny_sd1, capsys):
    from safetensors import safe_open

    from tests.engine.training.conftest import write_image

    images = tmp_path / "refs"
    images.mkdir()
    for i in range(2):
        write_image(images / f"ref-{i}.png", i, (72, 64))
    lora = tmp_path / "style.safetensors"
    args = ["train", "lora", "--role", "style", "--model", str(tiny_sd1), "--images", str(images),
            "--trigger", "ohwx", "--out", str(lora), "--rank", "2", "--steps", "2", "--resolution", "64",
            "--device", "cpu"]
    assert main(args) == 0
    with safe_open(str(lora), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["craft.role"] == "style" and meta["modelspec.trigger_phrase"] == "ohwx"
    # Never overwrite silently.
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "x.png"
    assert main(["generate", "--model", str(tiny_sd1), "--style-lora", str(lora), "--prompt",
                 "a cat in ohwx style <s>", "--steps", "2", "--size", "64x64", "--device", "cpu",
                 "--out", str(out)]) == 0
    assert read_request(out).style_lora.path == str(lora)


def test_help_shows_the_defaults(capsys):
    for argv, expected in ((["generate", "--help"], ["(default: 20)", "(default: dpmpp_2m_karras)",
                                                     "the model's native size"]),
                           (["train", "lora", "--help"], ["(default: 500)", "--rank RANK default: 16", "demo model"])):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        for text in expected:
            assert text in out, (argv, text)
        assert "(default: None)" not in out and "(default: False)" not in out


def test_train_without_model_uses_the_demo_model_and_its_backbone(monkeypatch, tmp_path):
    import argparse

    from craftstudio.cli import train as train_cli
    from tests.state.fake_demo import install_demo_assets

    install_demo_assets(monkeypatch, demo_model_dir=lambda: tmp_path / "demo",
                        demo_backbone=lambda: tmp_path / "backbone.safetensors")
    args = argparse.Namespace(model=None, backbone=None)
    train_cli._demo_fallback(args, backbone=True)
    assert (args.model, args.backbone) == (str(tmp_path / "demo"), str(tmp_path / "backbone.safetensors"))
    mine = argparse.Namespace(model="/models/mine", backbone=None)
    train_cli._demo_fallback(mine, backbone=True)
    assert (mine.model, mine.backbone) == ("/models/mine", None)  # a chosen model keeps its own setup
    install_demo_assets(monkeypatch, demo_model_dir=lambda: None)
    with pytest.raises(UserError, match="pass --model"):
        train_cli._demo_fallback(argparse.Namespace(model=None, backbone=None))


def _picture(path, size=(80, 64), mode="RGB"):
    from PIL import Image, ImageDraw

    image = Image.new(mode, size, 0 if mode == "L" else (220, 200, 180))
    ImageDraw.Draw(image).ellipse((10, 10, 50, 50), fill=255 if mode == "L" else (200, 30, 30))
    image.save(path)
    return path


def test_init_image_mask_and_hires_are_recorded(tmp_path, tiny_sd1, capsys):
    picture = _picture(tmp_path / "sketch.png")
    mask = _picture(tmp_path / "mask.png", size=(40, 32), mode="L")  # half size: resized with a note
    out = tmp_path / "restyled.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--prompt", "a red ball", "--steps", "4", "--device", "cpu",
               "--init-image", str(picture), "--strength", "0.6", "--mask", str(mask), "--mask-blur", "2",
               "--hires", "1.5", "--hires-strength", "0.4", "--out", str(out)])
    assert rc == 0
    assert "note: The mask mask.png is 40x32 but its picture is 80x64; it was resized to fit." in capsys.readouterr().err
    request = read_request(out)
    # The size follows the picture: its 5:4 aspect at the tiny model's 16² pixel count (8-px
    # steps round it to 16x16), then ×1.5.
    assert (request.width, request.height) == (16, 16) and request.output_size == (24, 24)
    assert (request.init_image, request.strength, request.mask, request.mask_blur) == (
        str(picture), 0.6, str(mask), 2)
    assert request.init_image_sha256 and request.mask_sha256
    params = read_text_chunks(out)["parameters"]
    assert "Denoising strength: 0.4" in params and "Hires upscale: 1.5" in params and "Mask blur: 2" in params
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (24, 24)


@pytest.mark.parametrize("make, extra, expected", [
    (lambda p: p.write_text("hello"), [], "is not a picture Pillow can read"),
    (lambda p: _picture(p), ["--strength", "0"], "The denoising strength must be above 0"),
    (lambda p: _picture(p), ["--strength", "1.2"], "The denoising strength must be between 0 and 1"),
    (lambda p: _picture(p), ["--mask", "{colour}"], "has 3 channels (RGB)"),
    (lambda p: _picture(p), ["--hires", "9"], "The hires factor must be between 1 and 4"),
])
def test_bad_pictures_exit_2_and_write_nothing(tmp_path, tiny_sd1, capsys, make, extra, expected):
    picture = tmp_path / "in.png"
    make(picture)
    colour = _picture(tmp_path / "colour-mask.png")
    extra = [a.replace("{colour}", str(colour)) for a in extra]
    out = tmp_path / "out.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--prompt", "a ball", "--steps", "2", "--device", "cpu",
               "--init-image", str(picture), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_the_b_lora_routing_preset_is_recorded(tmp_path, tiny_sd1):
    out = tmp_path / "b.png"
    assert main(["generate", "--model", str(tiny_sd1), "--prompt", "a cat", "--steps", "2", "--size", "32x32",
                 "--device", "cpu", "--routing", "b-lora", "--no-gates", "--out", str(out)]) == 0
    request = read_request(out)
    assert request.routing_preset == "b-lora" and request.switches.routing and not request.switches.gates


@pytest.mark.parametrize("mode", ["k-lora", "switch", "composite"])
def test_peer_modes_write_a_png_that_names_the_mode(tmp_path, tiny_sd1, mode):
    import json

    import torch

    from craftstudio.engine.loader import load_model
    from tests.kit.tiny_loras import random_lora, save_peft

    unet = load_model(tiny_sd1, torch.device("cpu"), torch.float32).unet
    content = save_peft(random_lora(unet, seed=1), tmp_path / "c.safetensors")
    style = save_peft(random_lora(unet, seed=2), tmp_path / "s.safetensors")
    out = tmp_path / f"{mode}.png"
    rc = main(["generate", "--model", str(tiny_sd1), "--content-lora", str(content), "--style-lora", str(style),
               "--prompt", "a dog in watercolor style", "--mode", mode, "--steps", "3", "--size", "64x64",
               "--device", "cpu", "--out", str(out)])
    assert rc == 0
    chunks = read_text_chunks(out)
    record = json.loads(chunks["craftstudio"])["record"]
    assert record["mode"] == mode and record["peer"]["paper"].startswith("arXiv")
    assert f"CRAFT mode: {mode}" in chunks["parameters"]
    request = read_request(out)
    assert request.peer_mode == mode and request.mode.value == mode and request.curves is None


def test_peer_mode_with_curves_is_refused(tmp_path, tiny_sd1, capsys):
    rc = main(["generate", "--model", str(tiny_sd1), "--prompt", "a dog", "--mode", "switch", "--curves", "paper",
               "--device", "cpu", "--out", str(tmp_path / "x.png")])
    assert rc == 2
    assert "--mode switch uses no curves" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
