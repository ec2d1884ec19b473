"""Image to image, inpainting and hires on the tiny models: what is kept is kept, what is asked for
is redrawn, and every bad picture costs one sentence before any model loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import GenerateRequest, steps_skipped
from craftstudio.engine import generation
from craftstudio.engine.generation import generate
from craftstudio.engine.img2img import encode_picture
from craftstudio.engine.init_image import InputImageError, read_init_image, read_mask
from craftstudio.engine.single_file import unet_in_channels


def _picture(path, size=(64, 64)) -> str:
    """A star-ish shape on stripes: enough structure to see what changed."""
    image = Image.new("RGB", size, (230, 220, 200))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 8):
        draw.rectangle((x, 0, x + 3, size[1]), fill=(40, 90, 160))
    draw.polygon([(32, 6), (40, 26), (60, 28), (44, 40), (50, 60), (32, 48), (14, 60), (20, 40), (4, 28),
                  (24, 26)], fill=(200, 40, 40))
    image.save(path)
    return str(path)


def _mask(path, box, size=(64, 64), mode="L") -> str:
    mask = Image.new(mode, size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255 if mode == "L" else (255, 255, 255))
    mask.save(path)
    return str(path)


def _request(model, picture, **kw) -> GenerateRequest:
    base = dict(model=str(model), prompt="a red star", width=64, height=64, steps=10, cfg_scale=5.0, seed=4,
                scheduler="euler", device="cpu", init_image=picture, strength=0.6)
    base.update(kw)
    return GenerateRequest(**base)


def _array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    return _picture(tmp_path_factory.mktemp("pictures") / "star.png")


@pytest.fixture(scope="module")
def tiny_inpaint(tmp_path_factory):
    from tests.kit.tiny_models import build_sd1

    return build_sd1(tmp_path_factory.mktemp("tiny") / "tiny-sd1-inpainting", in_channels=9)


def _round_trip(model_dir, picture_path):
    model = generation.model_cache.get_model(str(model_dir), torch.device("cpu"), torch.float32, None)
    picture = read_init_image(picture_path, (64, 64)).image
    return generation.decode(model, encode_picture(model, picture))


def test_strength_sets_the_first_step():
    assert steps_skipped(20, 1.0) == 0
    assert steps_skipped(20, 0.5) == 10
    assert steps_skipped(6, 0.75) == 2
    assert steps_skipped(20, 0.04) == 20  # no step runs


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_strength_near_zero_returns_the_vae_round_trip(family, tiny_sd1, tiny_sdxl, picture):
    model = tiny_sd1 if family == "sd1" else tiny_sdxl
    result = generate(_request(model, picture, strength=0.04, steps=20))
    assert np.array_equal(_array(result.images[0]), _array(_round_trip(model, picture)))
    assert result.details["image_to_image"]["steps_run"] == 0


def test_batch_image_i_equals_its_seed_alone(tiny_sd1, picture):
    batch = generate(_request(tiny_sd1, picture, batch_count=2, scheduler="euler_a"))
    alone = generate(_request(tiny_sd1, picture, seed=5, scheduler="euler_a"))
    assert np.abs(_array(batch.images[1]) - _array(alone.images[0])).max() <= 1
    assert not np.array_equal(_array(batch.images[0]), _array(batch.images[1]))


def _decoded_latents(monkeypatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    real = generation.decode

    def spy(model, latents):
        seen.append(latents.detach().clone())
        return real(model, latents)

    monkeypatch.setattr(generation, "decode", spy)
    return seen


@pytest.mark.parametrize("scheduler", ["euler", "dpmpp_2m_karras", "ddim"])
def test_outside_the_mask_the_picture_is_kept(tiny_sd1, picture, tmp_path, monkeypatch, scheduler):
    mask = _mask(tmp_path / "mask.png", (0, 0, 31, 63))  # redo the left half
    seen = _decoded_latents(monkeypatch)
    result = generate(_request(tiny_sd1, picture, mask=mask, mask_blur=0, strength=1.0, scheduler=scheduler))
    out, original = _array(result.images[0]), _array(Image.open(picture).convert("RGB"))
    assert np.array_equal(out[:, 32:], original[:, 32:])  # kept pixels are the original's
    assert np.abs(out[:, :32] - original[:, :32]).mean() > 5  # the masked half was redrawn
    # In latent space too: the known half of the last latents is the picture's own latents.
    model = generation.model_cache.get_model(str(tiny_sd1), torch.device("cpu"), torch.float32, None)
    known = encode_picture(model, read_init_image(picture, (64, 64)).image)
    half = known.shape[-1] // 2
    assert torch.equal(seen[0][..., half:], known[..., half:])
    assert not torch.equal(seen[0][..., :half], known[..., :half])
    assert result.request.mask_sha256 and result.details["image_to_image"]["mask_blur"] == 0


def test_an_all_black_mask_keeps_the_whole_picture(tiny_sd1, picture, tmp_path, monkeypatch):
    mask = tmp_path / "black.png"
    Image.new("L", (64, 64), 0).save(mask)
    seen = _decoded_latents(monkeypatch)
    result = generate(_request(tiny_sd1, picture, mask=str(mask), strength=1.0))
    assert np.array_equal(_array(result.images[0]), _array(Image.open(picture).convert("RGB")))
    model = generation.model_cache.get_model(str(tiny_sd1), torch.device("cpu"), torch.float32, None)
    assert torch.equal(seen[0], encode_picture(model, read_init_image(picture, (64, 64)).image))


def test_feathered_edge_blends_inside_a_band(tiny_sd1, picture, tmp_path):
    mask = _mask(tmp_path / "mask.png", (0, 0, 31, 63))
    result = generate(_request(tiny_sd1, picture, mask=mask, mask_blur=4, strength=1.0))
    out, original = _array(result.images[0]), _array(Image.open(picture).convert("RGB"))
    assert np.array_equal(out[:, 48:], original[:, 48:])  # far from the edge: untouched
    assert not np.array_equal(out[:, 32:36], original[:, 32:36])  # the feather reaches past the edge


def test_inpainting_unet_gets_mask_and_masked_picture(tiny_inpaint, picture, tmp_path):
    from craftstudio.engine import model_cache

    mask = _mask(tmp_path / "mask.png", (16, 16, 47, 47))
    model = model_cache.get_model(str(tiny_inpaint), torch.device("cpu"), torch.float32, None)
    channels: list[int] = []
    hook = model.unet.conv_in.register_forward_pre_hook(lambda _m, args: channels.append(args[0].shape[1]))
    try:
        result = generate(_request(tiny_inpaint, picture, mask=mask, mask_blur=0, strength=1.0))
    finally:
        hook.remove()
    assert channels and set(channels) == {9}
    out, original = _array(result.images[0]), _array(Image.open(picture).convert("RGB"))
    assert np.array_equal(out[:, 48:], original[:, 48:]) and np.array_equal(out[:16], original[:16])
    assert result.images[0].size == (64, 64)


def test_inpainting_checkpoints_are_recognised_by_their_first_convolution():
    assert unet_in_channels({"model.diffusion_model.input_blocks.0.0.weight": {"shape": [320, 9, 3, 3]}}) == 9
    assert unet_in_channels({"model.diffusion_model.input_blocks.0.0.weight": {"shape": [320, 4, 3, 3]}}) == 4
    assert unet_in_channels({}) is None


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_hires_makes_the_target_size_and_records_it(family, tiny_sd1, tiny_sdxl, tmp_path):
    from craftstudio.library.png_params import read_recorded, read_text_chunks, save_png

    model = tiny_sd1 if family == "sd1" else tiny_sdxl
    request = GenerateRequest(model=str(model), prompt="a red star", width=64, height=48, steps=6, seed=2,
                              scheduler="euler", device="cpu", hires_factor=2.0, hires_strength=0.5, hires_steps=4)
    result = generate(request)
    assert result.images[0].size == (128, 96) == request.output_size
    assert result.details["hires"] == {"factor": 2.0, "strength": 0.5, "steps": 4, "upscaler": "Lanczos",
                                       "first_pass_size": [64, 48], "size": [128, 96]}
    path = save_png(result.images[0], tmp_path / "hires.png", result.request, seed=2, model_name="tiny",
                    record=result.details)
    with Image.open(path) as image:
        assert image.size == (128, 96)
    restored, dropped = read_recorded(path)
    assert not dropped and restored.hires_factor == 2.0 and restored.hires_strength == 0.5
    assert "Hires upscale: 2" in read_text_chunks(path)["parameters"]


def test_image_to_image_png_records_the_pictures(tiny_sd1, picture, tmp_path):
    import hashlib

    from craftstudio.library.png_params import read_recorded, read_text_chunks, save_png

    mask = _mask(tmp_path / "mask.png", (0, 0, 31, 63))
    result = generate(_request(tiny_sd1, picture, mask=mask, strength=0.7))
    path = save_png(result.images[0], tmp_path / "out.png", result.request, seed=4, model_name="tiny",
                    record=result.details)
    restored, _ = read_recorded(path)
    with open(picture, "rb") as fh:
        assert restored.init_image_sha256 == hashlib.sha256(fh.read()).hexdigest()
    assert restored.init_image == picture and restored.mask == mask and restored.strength == 0.7
    assert "Denoising strength: 0.7" in read_text_chunks(path)["parameters"]


# --- bad pictures: one sentence naming the file, before any model loads ---------------------------

def test_unreadable_init_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(InputImageError, match=r"notes\.png is not a picture"):
        read_init_image(bad, (64, 64))
    with pytest.raises(InputImageError, match="does not exist"):
        read_init_image(tmp_path / "missing.png", (64, 64))


def test_truncated_init_image(tmp_path, picture):
    data = Path(picture).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputImageError, match=r"cut\.png is damaged or truncated"):
        read_init_image(cut, (64, 64))


def test_huge_init_image_is_refused_before_decoding(tmp_path):
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 8000)).save(huge)  # a few KB on disk, 72 megapixels
    with pytest.raises(InputImageError, match=r"huge\.png is 9000x8000 pixels"):
        read_init_image(huge, (64, 64))


def test_colour_mask_is_refused(tmp_path):
    mask = _mask(tmp_path / "rgb.png", (0, 0, 10, 10), mode="RGB")
    with pytest.raises(InputImageError, match=r"rgb\.png has 3 channels"):
        read_mask(mask, (64, 64), (64, 64), 0)


def test_mask_of_another_size_is_resized_with_a_note(tmp_path):
    mask = _mask(tmp_path / "small.png", (0, 0, 15, 31), size=(32, 32))
    read = read_mask(mask, (64, 64), (64, 64), 0)
    assert read.image.size == (64, 64) and read.notes and "resized" in read.notes[0]
    array = np.asarray(read.image)
    assert array[:, :32].min() == 255 and array[:, 32:].max() == 0


def test_size_rule_covers_and_centre_crops(tmp_path):
    wide = tmp_path / "wide.png"
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    ImageDraw.Draw(image).rectangle((50, 0, 149, 99), fill=(255, 0, 0))
    image.save(wide)
    out = np.asarray(read_init_image(wide, (64, 64)).image)
    assert out.shape == (64, 64, 3) and (out[..., 0] > 200).all()  # only the red centre survives


@pytest.mark.parametrize("strength", [0.0, -0.1, 1.5])
def test_strength_outside_the_range_is_refused(strength):
    with pytest.raises(RequestError, match="strength"):
        GenerateRequest(model="m", prompt="p", init_image="a.png", strength=strength).validate()


def test_the_hires_pass_reports_its_steps_by_name(tiny_sd1):
    events = []
    request = GenerateRequest(model=str(tiny_sd1), prompt="a star", width=32, height=32, steps=4, seed=1,
                              scheduler="euler", device="cpu", hires_factor=1.5, hires_strength=0.5)
    generate(request, progress=events.append)
    steps = [(e.message, e.step, e.total) for e in events if getattr(e, "stage", "") == "denoise"]
    assert steps == [("", k, 4) for k in range(1, 5)] + [("hires pass", k, 2) for k in range(1, 3)]
