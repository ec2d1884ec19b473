"""Parameters of images: our JSON chunk, A1111/Forge infotext, LoRAs resolved against the catalog."""

from __future__ import annotations

import hashlib
import struct

import pytest
from PIL import Image, PngImagePlugin

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import GenerateRequest, LoraRef
from craftstudio.library.image_params import parse_lora_hashes, read_image_params, split_lora_tags
from craftstudio.library.png_params import save_png
from tests.library.conftest import make_lora


def _png(path, parameters=None):
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def _addnet(path) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data[8 + struct.unpack("<Q", data[:8])[0]:]).hexdigest()


@pytest.fixture
def styled(catalog, tmp_path):
    """A catalog with a content LoRA `gingercat` and a style LoRA `inkwash` (plus an unroled one)."""
    cat_path = make_lora(tmp_path / "l" / "gingercat.safetensors", "kohya-sd1", metadata={"craft.role": "content"})
    ink_path = make_lora(tmp_path / "l" / "inkwash.safetensors", "kohya-sd1", rank=8,
                         metadata={"craft.role": "style", "ss_output_name": "inkWashV2"})
    make_lora(tmp_path / "l" / "detail.safetensors", "kohya-sd1", rank=2)
    checkpoint = tmp_path / "m" / "dreamy.safetensors"
    from craftstudio.library import synthetic
    synthetic.write_safetensors(checkpoint, {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)})
    catalog.scan([tmp_path / "l", tmp_path / "m"])
    return catalog, _addnet(cat_path), _addnet(ink_path), catalog.items.find("dreamy")


A1111 = (
    "masterpiece, a ginger cat sitting on a windowsill, <lora:gingercat:0.8>,\n"
    "soft light, (ink wash painting:1.2) <lora:inkwash:0.6> <lora:detail:0.3> <lora:ghost:1>\n"
    "Negative prompt: lowres, bad anatomy,\n"
    "blurry\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, "
    "Size: 512x768, Model hash: {model_hash}, Model: dreamy, Denoising strength: 0.45, Clip skip: 2, "
    "Hires upscale: 2, Hires steps: 10, Hires upscaler: 4x-UltraSharp, "
    'Lora hashes: "gingercat: {cat}, inkwash: {ink}, detail: 000000000000, ghost: 123456789abc", '
    'TI hashes: "easynegative: c74b4e810b03", Version: v1.10.1'
)


def test_a1111_infotext_resolves_loras_by_hash(styled, tmp_path):
    catalog, cat_hash, ink_hash, model = styled
    text = A1111.format(model_hash=model.id[:10], cat=cat_hash[:12], ink=ink_hash[:12])
    params = read_image_params(_png(tmp_path / "a.png", text), catalog.items)
    r = params.request
    assert params.source == "parameters"
    assert r.prompt == ("masterpiece, a ginger cat sitting on a windowsill,\n"
                        "soft light, (ink wash painting:1.2)")
    assert r.negative_prompt == "lowres, bad anatomy,\nblurry"
    assert (r.steps, r.cfg_scale, r.seed, r.width, r.height) == (28, 6.5, 1234567890, 512, 768)
    assert r.scheduler == "dpmpp_2m_karras"
    assert r.model == model.path and params.model_item == model.id
    assert r.content_lora == LoraRef(catalog.items.find("gingercat").path, 0.8, catalog.items.find("gingercat").id)
    assert r.style_lora.weight == 0.6 and r.style_lora.sha256 == catalog.items.find("inkwash").id
    by_name = {m.name: m for m in params.loras}
    assert by_name["detail"].item_id is not None and by_name["detail"].placed is None  # by name; no role
    assert by_name["ghost"].item_id is None
    assert [m.name for m in params.unresolved] == ["ghost"]
    assert any("ghost" in n and "not in the library" in n for n in params.notes)
    assert any("detail" in n and "no role" in n for n in params.notes)
    assert {"Denoising strength", "Clip skip", "Hires upscale", "Hires steps", "Hires upscaler",
            "TI hashes"} <= set(params.ignored_settings)
    assert params.settings["Lora hashes"].startswith("gingercat: ")


def test_lora_resolved_by_kohya_output_name_without_hashes(styled, tmp_path):
    catalog, *_ = styled
    text = "a cat <lora:inkWashV2:0.5>\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"
    params = read_image_params(_png(tmp_path / "a.png", text), catalog.items)
    assert params.request.style_lora.sha256 == catalog.items.find("inkwash").id
    assert params.request.scheduler == "euler_a" and params.request.prompt == "a cat"


def test_second_lora_of_a_role_is_reported(styled, tmp_path):
    catalog, *_ = styled
    other = make_lora(tmp_path / "l2" / "cat2.safetensors", "peft-sd1", metadata={"craft.role": "content"})
    catalog.scan([other.parent])
    text = "<lora:gingercat:1> <lora:cat2:1> cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512"
    params = read_image_params(_png(tmp_path / "a.png", text), catalog.items)
    assert params.request.content_lora.sha256 == catalog.items.find("gingercat").id
    assert any("second content LoRA" in n for n in params.notes)


def test_without_catalog_loras_are_listed_not_resolved(tmp_path):
    text = ("a cat <lora:x:0.7>\nSteps: 20, Sampler: Heun, CFG scale: 7, Seed: 3, Size: 640x512, "
            'Lora hashes: "x: abcdefabcdef"')
    params = read_image_params(_png(tmp_path / "a.png", text))
    assert params.request.content_lora is None
    assert [(m.name, m.weight, m.short_hash) for m in params.loras] == [("x", 0.7, "abcdefabcdef")]
    assert any("Heun" in n for n in params.notes)


def test_windows_line_endings(tmp_path):
    text = "line one\r\nline two\r\nNegative prompt: bad\r\nSteps: 5, Sampler: Euler, CFG scale: 3, Seed: 9, Size: 64x64"
    r = read_image_params(_png(tmp_path / "a.png", text)).request
    assert (r.prompt, r.negative_prompt, r.steps) == ("line one\nline two", "bad", 5)


def test_our_json_round_trip_resolves_moved_loras(styled, tmp_path):
    catalog, *_ = styled
    ink = catalog.items.find("inkwash")
    request = GenerateRequest(model="/models/dreamy", prompt="a cat <c> in ink <s>", negative_prompt="blur",
                              width=640, height=448, steps=12, cfg_scale=5.5, seed=42,
                              style_lora=LoraRef("/old/place/inkwash.safetensors", 0.7, ink.id),
                              content_lora=LoraRef("/gone.safetensors", 1.0, "f" * 64))
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "ours.png", request, seed=43, model_name="dreamy")
    params = read_image_params(path, catalog.items)
    assert params.source == "craftstudio"
    assert params.request.prompt == request.prompt and params.request.seed == 43
    assert params.request.style_lora == LoraRef(ink.path, 0.7, ink.id)  # moved: where it is now
    assert params.request.content_lora == request.content_lora
    assert any("/gone.safetensors" in n for n in params.notes)
    assert params.to_dict()["request"]["width"] == 640


def test_image_without_parameters_says_so(tmp_path):
    params = read_image_params(_png(tmp_path / "plain.png"))
    assert params.source is None and params.request is None
    assert params.notes == [f"{tmp_path / 'plain.png'} holds no generation parameters."]


def test_jpeg_with_a1111_exif_user_comment(tmp_path):
    text = "a fox\nNegative prompt: ugly\nSteps: 30, Sampler: DDIM, CFG scale: 9, Seed: 77, Size: 768x512"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif)
    r = read_image_params(path).request
    assert (r.prompt, r.negative_prompt, r.steps, r.scheduler, r.width) == ("a fox", "ugly", 30, "ddim", 768)


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(UserError, match="not a readable image"):
        read_image_params(tmp_path / "x.png")


@pytest.mark.parametrize(("prompt", "clean", "loras"), [
    ("a cat, <lora:a:0.5>, b", "a cat, b", [("a", 0.5)]),
    ("<lora:x>", "", [("x", 1.0)]),
    ("<lora:name with spaces:1.1:0.9> c", "c", [("name with spaces", 1.1)]),
    ("<lyco:l:0.4> d", "d", [("l", 0.4)]),
    ("no tags: (x:1.2)", "no tags: (x:1.2)", []),
])
def test_split_lora_tags(prompt, clean, loras):
    text, mentions = split_lora_tags(prompt)
    assert text == clean and [(m.name, m.weight) for m in mentions] == loras


def test_parse_lora_hashes():
    assert parse_lora_hashes("a: 1f2e3d4c5b6a, my lora v2: 0A1B2C3D4E5F") == {
        "a": "1f2e3d4c5b6a", "my lora v2": "0a1b2c3d4e5f"}
