"""ZipLoRA: the merged file is the formula's LoRA, loads anywhere, and training moves the two
LoRAs' coefficient vectors apart; a cancel writes nothing."""

from __future__ import annotations

import pytest
import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import RequestError
from craftstudio.domain.merging import ZipLoraRequest
from craftstudio.engine.loader import load_model
from craftstudio.engine.lora_adapters import load_lora
from craftstudio.engine.routing import target_modules
from craftstudio.engine.training.ziplora import CONTENT, STYLE, Mergers, merge_ziplora, merged_state_dict
from tests.engine.training.conftest import RES
from tests.kit.tiny_loras import random_lora, save_peft

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_sd1):
    """Two LoRAs: both on the self-attention projections, each alone on some other modules."""
    folder = tmp_path_factory.mktemp("zip")
    unet = load_model(tiny_sd1, CPU, torch.float32).unet
    modules = target_modules(unet)
    shared = [m for m in modules if "attn1" in m]
    content = random_lora(unet, shared + [m for m in modules if "attn2.to_k" in m], seed=1)
    style = random_lora(unet, shared + [m for m in modules if "attn2.to_v" in m], seed=2, rank=3)
    return {"content": save_peft(content, folder / "content.safetensors"),
            "style": save_peft(style, folder / "style.safetensors"), "folder": folder}


def _delta(lora, name):
    d = lora.deltas[name]
    return (d.up.weight @ d.down.weight) * d.scale


def _request(tiny_sd1, pair, refs, out, **kw) -> ZipLoraRequest:
    base = dict(model=str(tiny_sd1), content_lora=str(pair["content"]), style_lora=str(pair["style"]),
                content_prompt="a photo of sks cat", style_prompt="a painting in ohwx style", out=str(out),
                content_images=(str(refs["content"]),), style_images=(str(refs["style"]),), steps=6,
                learning_rate=0.05, resolution=RES, device="cpu")
    base.update(kw)
    return ZipLoraRequest(**base)


def test_at_coefficients_one_the_file_is_the_direct_merge(tiny_sd1, pair, tmp_path):
    from safetensors.torch import save_file

    model = load_model(tiny_sd1, CPU, torch.float32)
    content, style = load_lora(pair["content"], model), load_lora(pair["style"], model)
    mergers = Mergers(content, style, CPU)
    path = tmp_path / "direct.safetensors"
    save_file(merged_state_dict(mergers), str(path))
    merged = load_lora(path, model)
    assert set(merged.deltas) == set(content.deltas) | set(style.deltas)
    for name in merged.deltas:
        expected = sum(_delta(lora, name) for lora in (content, style) if name in lora.deltas)
        assert torch.allclose(_delta(merged, name), expected, atol=1e-5)


def test_coefficients_scale_the_input_columns(tiny_sd1, pair):
    model = load_model(tiny_sd1, CPU, torch.float32)
    content, style = load_lora(pair["content"], model), load_lora(pair["style"], model)
    mergers = Mergers(content, style, CPU)
    name = next(n for n in mergers.names if n in content.deltas and n in style.deltas)
    with torch.no_grad():
        mergers.vector(CONTENT, name).uniform_(0, 2)
        mergers.vector(STYLE, name).uniform_(0, 2)
    state = merged_state_dict(mergers)
    delta = state[f"unet.{name}.lora_B.weight"] @ state[f"unet.{name}.lora_A.weight"]
    expected = (_delta(content, name) * mergers.vector(CONTENT, name).detach()[None, :]
                + _delta(style, name) * mergers.vector(STYLE, name).detach()[None, :])
    assert delta.shape == expected.shape and torch.allclose(delta, expected, atol=1e-5)


def test_merging_writes_a_lora_any_tool_loads_and_pulls_the_loras_apart(tiny_sd1, pair, refs, tmp_path):
    out = tmp_path / "zipped.safetensors"
    events = []
    result = merge_ziplora(_request(tiny_sd1, pair, refs, out), progress=events.append)
    assert out.is_file() and result.out == str(out) and len(result.losses) == 6
    # |cos(m_c, m_s)| starts at 1 on every shared layer; the penalty and the losses move it.
    first, last = result.losses[0]["similarity"], result.losses[-1]["similarity"]
    assert last < first and result.similarity < 1.0
    assert all(set(step) == {"loss", "content", "style", "similarity"} for step in result.losses)
    assert any(getattr(e, "stage", "") == "train" and e.step == 6 for e in events)
    # Stock diffusers loads it (scale 1, rank r_c + r_s on shared layers).
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(out), adapter_name="zip")
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
        shared = next(k for k in fh.keys() if "attn1.to_q" in k and "lora_A" in k)  # noqa: SIM118
        assert fh.get_tensor(shared).shape[0] == 4 + 3
    assert meta["craft.kind"] == "ziplora" and "sha256" in meta["craft.sources"]


def test_without_references_each_lora_draws_its_own_pictures(tiny_sd1, pair, refs, tmp_path):
    out = tmp_path / "own.safetensors"
    events = []
    merge_ziplora(_request(tiny_sd1, pair, refs, out, content_images=(), style_images=(), samples=2, steps=2),
                  progress=events.append)
    assert out.is_file()
    assert any("drawing 2 pictures with the style LoRA" in getattr(e, "message", "") for e in events)


def test_a_cancel_writes_nothing(tiny_sd1, pair, refs, tmp_path):
    out = tmp_path / "cancelled.safetensors"
    token = CancelToken()

    def progress(event):
        if getattr(event, "stage", "") == "train" and event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        merge_ziplora(_request(tiny_sd1, pair, refs, out), progress=progress, cancel=token)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("change", "fragment"), [
    ({"style_lora": "same"}, "are the same file"),
    ({"content_prompt": " "}, "The content prompt is empty"),
    ({"out": "merged.ckpt"}, "must be a .safetensors file"),
    ({"steps": 0}, "Merge steps must be between 1 and 100000"),
])
def test_bad_requests_are_one_sentence(change, fragment):
    base = dict(model="m", content_lora="same", style_lora="s", content_prompt="a sks", style_prompt="ohwx style",
                out="merged.safetensors")
    base.update(change)
    with pytest.raises(RequestError, match=fragment):
        ZipLoraRequest(**base).validate()


def test_the_command_line_merges_and_reports(tiny_sd1, pair, refs, tmp_path, capsys):
    from craftstudio.cli import main

    out = tmp_path / "cli.safetensors"
    rc = main(["merge", "ziplora", "--model", str(tiny_sd1), "--content-lora", str(pair["content"]),
               "--style-lora", str(pair["style"]), "--content-prompt", "a sks cat", "--style-prompt", "ohwx style",
               "--content-images", str(refs["content"]), "--style-images", str(refs["style"]), "--steps", "2",
               "--resolution", str(RES), "--device", "cpu", "--out", str(out)])
    assert rc == 0 and out.is_file()
    assert "layers merged" in capsys.readouterr().out
    rc = main(["merge", "ziplora", "--model", str(tiny_sd1), "--content-lora", str(pair["content"]),
               "--style-lora", str(pair["style"]), "--content-prompt", "a sks cat", "--style-prompt", "ohwx style",
               "--out", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err
