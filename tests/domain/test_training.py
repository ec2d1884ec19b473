"""Training requests and results: validation messages and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from craftstudio.domain.errors import RequestError
from craftstudio.domain.markers import MarkerError
from craftstudio.domain.training import (
    BackboneTrainRequest,
    LoraTrainRequest,
    TrainResult,
    comparable,
    train_request_from_dict,
)


def _backbone(**kw) -> BackboneTrainRequest:
    base = dict(model="m", content_dir="c", style_dir="s", out="bb.safetensors")
    base.update(kw)
    return BackboneTrainRequest(**base)


def _lora(**kw) -> LoraTrainRequest:
    base = dict(role="content", model="m", images=("imgs",), trigger="sks cat", out="c.safetensors")
    base.update(kw)
    return LoraTrainRequest(**base)


def test_defaults_are_valid_and_follow_the_paper():
    _backbone().validate()
    _lora().validate()
    b = _backbone()
    assert (b.r_max, b.r_min, b.sigma, b.max_content, b.max_style, b.steps) == (128, 4, 0.35, 10, 10, 5000)
    assert b.init == "minor"


@pytest.mark.parametrize("kw, expected", [
    (dict(out="bb.ckpt"), "must be a .safetensors file"),
    (dict(model=""), "No base model"),
    (dict(steps=0), "Training steps must be between 1"),
    (dict(r_max=4, r_min=8), "r_min <= r_max"),
    (dict(sigma=0), "low-pass cutoff"),
    (dict(init="svd"), "basis initialisation must be one of minor, random, not 'svd'"),
    (dict(resolution=100), "multiple of 8"),
    (dict(ortho_weight=-1), "orthogonality weight"),
    (dict(keep_weight=-1), "preservation weight κ"),
    (dict(max_content=0), "content references must be between"),
    (dict(mixed_precision="fp8"), "Unknown mixed precision 'fp8'"),
    (dict(device="tpu"), "Unknown device 'tpu'"),
    (dict(loss="l1"), "Unknown loss 'l1'"),
    (dict(style_caption="a {what} painting"), "only {trigger} may appear"),
    (dict(learning_rate=0), "Learning rate"),
])
def test_bad_backbone_settings_say_what_is_wrong(kw, expected):
    with pytest.raises(RequestError, match=expected.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")):
        _backbone(**kw).validate()


@pytest.mark.parametrize("kw, expected", [
    (dict(role="subject"), "content or style, not 'subject'"),
    (dict(images=()), "No training images"),
    (dict(trigger="  "), "trigger phrase is empty"),
    (dict(caption="a photo of a cat"), "does not hold {trigger}"),
    (dict(rank=0), "LoRA rank must be between"),
    (dict(alpha=0), "LoRA alpha"),
    (dict(batch_size=0), "Batch size"),
    (dict(sample_steps=0), "Sample images"),
    (dict(checkpoint_every=-1), "checkpoint interval"),
    (dict(routing_overrides={"up_blocks.1": "texture"}), "must be content, style or none"),
    (dict(num_processes=2), "batch size 1 does not split evenly over 2 processes: use a multiple of 2"),
    (dict(num_processes=0), "number of processes must be between 1 and 64"),
    (dict(num_processes=2, batch_size=2, gpus=(0,)), "1 GPUs (0) were chosen for 2 processes"),
    (dict(num_processes=2, batch_size=2, gpus=(1, 1)), "distinct numbers"),
    (dict(num_processes=2, batch_size=2, gpus=(0, 1), device="cpu"), "GPUs were chosen but the device is cpu"),
    (dict(num_processes=2, batch_size=2, device="mps"), "Apple GPUs train in one process"),
])
def test_bad_lora_settings_say_what_is_wrong(kw, expected):
    with pytest.raises(RequestError) as info:
        _lora(**kw).validate()
    assert expected in str(info.value)


def test_malformed_markers_in_captions_are_refused_with_a_position():
    with pytest.raises(MarkerError, match="column"):
        _lora(caption="a photo of {trigger} <x>").validate()


def test_caption_fills_the_trigger_and_strips_markers():
    request = _lora(trigger="sks cat", caption="a photo of {trigger} <c>, detailed")
    assert request.caption_text == "a photo of sks cat, detailed"
    assert _lora(role="style", trigger="ohwx").caption_text == "an image in ohwx style"
    assert _lora(rank=8).lora_alpha == 8.0 and _lora(rank=8, alpha=4).lora_alpha == 4.0


@pytest.mark.parametrize("request_", [
    _backbone(r_max=64, r_min=8, sigma=0.3, title="mine"),
    _lora(images=("a.png", "dir"), backbone="bb.safetensors", routing_overrides={"mid_block": "style"}),
])
def test_requests_round_trip_through_json(request_):
    data = json.loads(json.dumps(request_.to_dict()))
    assert data["kind"] == request_.kind
    assert train_request_from_dict(data) == request_


def test_unknown_keys_are_ignored_and_bad_kinds_refused():
    data = {**_lora().to_dict(), "from_the_future": 1}
    assert train_request_from_dict(data) == _lora()
    with pytest.raises(RequestError, match="unknown kind"):
        train_request_from_dict({"kind": "dreambooth"})
    with pytest.raises(RequestError, match="incomplete"):
        train_request_from_dict({"kind": "lora", "role": "content"})


def test_processes_and_gpus_round_trip_and_do_not_decide_the_weights():
    request = _lora(num_processes=2, batch_size=4, gpus=(1, 3))
    request.validate()
    again = train_request_from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request and again.gpus == (1, 3)
    # The batch is the global batch: 2 processes train what 1 does, so a checkpoint carries over.
    assert comparable(request) == comparable(_lora(batch_size=4))


def test_comparable_ignores_run_only_settings():
    a = _lora(checkpoint_every=10, sample_every=5, overwrite=True, device="cpu")
    b = _lora(checkpoint_every=50, sample_every=0, overwrite=False, device="cuda")
    assert comparable(a) == comparable(b)
    assert comparable(_lora(rank=4)) != comparable(_lora(rank=8))


def test_result_round_trips():
    result = TrainResult(request=_lora(), out="c.safetensors", steps=3, seconds=1.5, device="cpu", resolution=32,
                         losses=[{"loss": 0.5}, {"loss": 0.25}], resumed_from=1,
                         skipped=[("x.txt", "not an image file")], details={"layers": 24})
    again = TrainResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.final_loss == 0.25
    assert dataclasses.replace(result, losses=[]).final_loss is None


def _captioned(**kw) -> LoraTrainRequest:
    return LoraTrainRequest(role="style", model="m", images=("x",), trigger="ohwx", out="o.safetensors",
                            caption="an image in {trigger} style", **kw)


def test_an_image_without_a_caption_file_gets_the_template():
    assert _captioned().image_caption(None) == "an image in ohwx style"


@pytest.mark.parametrize(("text", "expected"), [
    ("a star in {trigger} style", "a star in ohwx style"),
    ("a star in ohwx style <s>\n", "a star in ohwx style"),  # literal trigger (kohya), markers stripped
    ("  a   star\nin {trigger}  style ", "a star in ohwx style"),
])
def test_a_caption_file_replaces_the_template(text, expected):
    assert _captioned().image_caption(text, "star.txt") == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("", "The caption file star.txt is empty"),
    ("a star in a style", "The caption file star.txt does not name the trigger"),
    ("a {shape} in {trigger} style", "The caption file star.txt is not a valid caption"),
])
def test_bad_caption_files_are_refused_naming_the_file(text, expected):
    with pytest.raises(RequestError, match=expected):
        _captioned().image_caption(text, "star.txt")
