"""The command line a request gives builds the same request in the CLI (both kinds)."""

from __future__ import annotations

import shlex

import pytest

from craftstudio.cli import main
from craftstudio.cli import train as train_cli
from craftstudio.domain.training import BackboneTrainRequest, LoraTrainRequest
from craftstudio.state.train_command import command_args, command_line


def parsed(monkeypatch, argv: list[str]):
    """The request the CLI builds from `argv` (and whether it resumes), without training."""
    seen = []
    monkeypatch.setattr(train_cli, "_run_training", lambda request, resume: seen.append((request, resume)) or 0)
    assert main(["train", *argv]) == 0
    return seen[0]


LORAS = [
    LoraTrainRequest(role="content", model="/m", images=("/refs",), trigger="sks cat", out="/o/a.safetensors"),
    LoraTrainRequest(role="style", model="/m dir", images=("/r/a b.png", "/r/c.png"), trigger="ohwx",
                     out="/o/b.safetensors", backbone="/b.safetensors", caption="{trigger} art", rank=4,
                     alpha=2.5, learning_rate=3.3e-5, steps=7, batch_size=2, resolution=256, loss="min_snr",
                     seed=9, device="cpu", mixed_precision="no", gradient_checkpointing=False, fast=True, adam_8bit=True,
                     upscale=True, sample_every=3, sample_prompt="a <s>", sample_steps=4, checkpoint_every=0,
                     routing_overrides={"mid_block": "style", "up_blocks.1": "none"}, uncond_weight=2.5, overwrite=True,
                     title="T"),
    LoraTrainRequest(role="style", model="/m", images=("/refs",), trigger="ohwx", out="/o/c.safetensors",
                     routing_preset="b-lora"),
]
BACKBONES = [
    BackboneTrainRequest(model="/m", content_dir="/c", style_dir="/s", out="/o/w.safetensors"),
    BackboneTrainRequest(model="/m", content_dir="/c", style_dir="/s", out="/o/w.safetensors", r_max=8, r_min=2,
                         init="random", sigma=0.5, ortho_weight=0.1, keep_dir="/k", keep_weight=10.0, steps=3,
                         learning_rate=0.01, max_content=4, max_style=5, content_caption="x",
                         style_caption="y", resolution=64, gradient_checkpointing=False, fast=True, upscale=True),
]


@pytest.mark.parametrize("request_", LORAS + BACKBONES)
def test_the_command_builds_the_same_request(monkeypatch, request_):
    built, resume = parsed(monkeypatch, command_args(request_))
    assert built == request_ and resume is False


def test_resume_and_quoting(monkeypatch):
    line = command_line(LORAS[1], resume=True)
    assert line.startswith("python -m craftstudio train lora ") and "'/m dir'" in line
    built, resume = parsed(monkeypatch, shlex.split(line)[4:])
    assert built == LORAS[1] and resume is True
