"""What the Generate pickers offer: library items of the model's family, the demo's entries first."""

from __future__ import annotations

import json

import pytest

from craftstudio.library import synthetic
from craftstudio.library.catalog import Catalog
from craftstudio.state.library_choices import DEMO_MODEL_LABEL, LibraryChoices
from tests.state.fake_demo import install_demo_assets


@pytest.fixture(autouse=True)
def no_demo(monkeypatch):
    install_demo_assets(monkeypatch, demo_model_dir=lambda: None)


def _sd1_folder(path):
    (path / "unet").mkdir(parents=True)
    (path / "unet" / "config.json").write_text(json.dumps({"sample_size": 64, "cross_attention_dim": 768}))
    (path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return path


@pytest.fixture
def library(tmp_path):
    """A home whose catalog holds an SD1.x and an SDXL LoRA, a style LoRA and a model."""
    home = tmp_path / "home"
    files = tmp_path / "files"
    synthetic.write_safetensors(files / "ink.safetensors", synthetic.LAYOUTS["kohya-sd1"](4),
                                {"modelspec.trigger_phrase": "ink sketch", "craft.role": "style"})
    synthetic.write_safetensors(files / "cat.safetensors", synthetic.LAYOUTS["peft-sd1"](4),
                                {"modelspec.trigger_phrase": "ginger cat", "craft.role": "content"})
    synthetic.write_safetensors(files / "neon.safetensors", synthetic.LAYOUTS["kohya-sdxl"](4))
    model = _sd1_folder(files / "my-sd15")
    with Catalog.open(home) as catalog:
        for path in (*files.glob("*.safetensors"), model):
            assert catalog.register(path).status == "ok"
    return home, files


def test_loras_are_those_of_the_models_family_with_the_roles_own_first(library):
    home, files = library
    choices = LibraryChoices(home)
    content = [c.path for c in choices.loras("content", str(files / "my-sd15"))]
    assert content == [str(files / "cat.safetensors"), str(files / "ink.safetensors")]
    style = [c.path for c in choices.loras("style", str(files / "my-sd15"))]
    assert style == [str(files / "ink.safetensors"), str(files / "cat.safetensors")]
    # A model whose family is unknown: every LoRA is offered.
    assert len(choices.loras("style", "/nowhere")) == 3


def test_models_come_from_the_library_and_the_demo_is_always_first(library, monkeypatch, tmp_path):
    home, files = library
    demo = _sd1_folder(tmp_path / "shapesworld")
    install_demo_assets(monkeypatch, demo_model_dir=lambda: demo)
    models = LibraryChoices(home).models()
    assert models[0].label == DEMO_MODEL_LABEL and models[0].path == str(demo) and models[0].builtin
    assert [c.path for c in models[1:]] == [str(files / "my-sd15")]


def test_a_home_without_a_library_offers_the_demo_only_and_creates_nothing(tmp_path, monkeypatch):
    install_demo_assets(monkeypatch, demo_model_dir=lambda: None)
    home = tmp_path / "fresh"
    choices = LibraryChoices(home)
    assert choices.models() == [] and choices.loras("content", "") == [] and choices.backbones("") == []
    assert not home.exists()


def test_triggers_come_from_the_catalog_or_the_files_metadata(library, tmp_path):
    home, files = library
    loose = synthetic.write_safetensors(tmp_path / "loose.safetensors", synthetic.LAYOUTS["peft-sd1"](4),
                                        {"modelspec.trigger_phrase": "ohwx"})
    choices = LibraryChoices(home)
    assert choices.triggers(str(files / "ink.safetensors")) == ["ink sketch"]
    assert choices.triggers(str(loose)) == ["ohwx"]
    assert choices.triggers("") == [] and choices.triggers(str(tmp_path / "gone.safetensors")) == []


def test_search_text_matches_label_details_and_file_name(library):
    home, files = library
    choice = next(c for c in LibraryChoices(home).loras("style", "") if c.path.endswith("ink.safetensors"))
    assert "ink sketch" in choice.search_text and "ink.safetensors" in choice.search_text
    assert "style" in choice.detail and "SD 1.x" in choice.detail
