"""Demo artefact paths: present or None, found without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from craftstudio.demo import assets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def resources(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CRAFTSTUDIO_RESOURCES", str(tmp_path))
    return tmp_path


def test_nothing_installed_gives_none(resources):
    assert assets.demo_model_dir() is None
    assert assets.demo_backbone() is None
    assert assets.demo_lora("content") is None and assets.demo_lora("style") is None
    assert assets.demo_oracle() is None
    assert assets.default_model(None) is None
    assert assets.default_model("") is None


def test_installed_artefacts_are_found(resources):
    model = resources / "models" / "shapesworld"
    model.mkdir(parents=True)
    assert assets.demo_model_dir() is None  # a folder without model_index.json is not a model
    (model / "model_index.json").write_text("{}")
    demo = resources / "demo"
    demo.mkdir()
    for name in ("backbone.safetensors", "content-lora.safetensors", "style-lora.safetensors"):
        (demo / name).write_bytes(b"x")
    assert assets.demo_model_dir() == model
    assert assets.demo_backbone() == demo / "backbone.safetensors"
    assert assets.demo_lora("content") == demo / "content-lora.safetensors"
    assert assets.demo_lora("style") == demo / "style-lora.safetensors"
    with pytest.raises(ValueError, match="role"):
        assets.demo_lora("texture")


@pytest.mark.parametrize(("text", "prompt", "cfg", "curves"), [
    ('{"prompt": "a sks <c>", "cfg_scale": 5, "curves": "paper"}', "a sks <c>", 5.0, "paper"),
    ('{"prompt": "a sks <c>"}', "a sks <c>", None, None),
    ('{"prompt": "a sks <c>", "cfg_scale": -1, "curves": "wobbly"}', "a sks <c>", None, None),
    ('{"cfg_scale": "high", "curves": 3}', None, None, None),
    ('{"prompt": 7, "cfg_scale": true}', None, None, None),
    ("[1, 2]", None, None, None),
    ("{", None, None, None),
])
def test_demo_prompt_guidance_and_curves_are_read_leniently(resources, text, prompt, cfg, curves):
    (resources / "demo").mkdir()
    (resources / "curves").mkdir()
    (resources / "curves" / "paper.json").write_text("{}")  # a preset of that name is installed
    (resources / "demo" / "demo-assets.json").write_text(text)
    assert assets.demo_prompt() == prompt
    assert assets.demo_cfg_scale() == cfg
    assert assets.demo_curves() == curves


def test_first_run_default_prefers_the_configured_model(resources):
    (resources / "models" / "shapesworld").mkdir(parents=True)
    (resources / "models" / "shapesworld" / "model_index.json").write_text("{}")
    assert assets.default_model(None) == resources / "models" / "shapesworld"
    assert assets.default_model("/my/model") == Path("/my/model")


def test_the_shipped_oracle_is_found():
    assert assets.demo_oracle() is not None


def test_asking_for_demo_paths_does_not_import_torch():
    code = ("import sys, craftstudio.demo.assets as a; a.demo_model_dir(); a.demo_lora('style'); "
            "print(sorted(m for m in ('torch', 'diffusers', 'PIL', 'numpy') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
