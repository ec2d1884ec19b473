"""train_backbone end to end on the tiny models: the file, its metadata, the sampler, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import LoraError
from craftstudio.domain.generation import FusionSwitches, GenerateRequest
from craftstudio.domain.training import train_request_from_dict
from craftstudio.engine.backbone import load_backbone
from craftstudio.engine.fingerprint import model_fingerprint
from craftstudio.engine.generation import generate
from craftstudio.engine.loader import load_model
from craftstudio.engine.routing import target_modules
from craftstudio.engine.training.backbone_training import train_backbone
from craftstudio.engine.training.checkpoint import checkpoint_folder
from craftstudio.engine.training.data import ImageSetError
from craftstudio.engine.training.loop import OutputExists
from craftstudio.engine.training.lora_training import train_lora
from tests.engine.training.conftest import RES, backbone_request, lora_request


def test_backbone_file_holds_merged_bases_and_metadata(trained):
    result = trained["backbone"]
    backbone = load_backbone(result.out)
    unet = load_model(trained["model"], torch.device("cpu"), torch.float32).unet
    assert set(backbone.bases) == set(target_modules(unet))
    for name, q in backbone.bases.items():
        assert q.shape[0] == unet.get_submodule(name).weight.shape[1]
        assert torch.allclose(q.T @ q, torch.eye(q.shape[1]), atol=1e-5)
    ranks = [backbone.bases[name].shape[1] for name in target_modules(unet)]
    assert ranks[0] == 8 and ranks[-1] == 4  # 2·r_max first, 2·r_min last (content + style)
    meta = backbone.metadata
    assert backbone.fingerprint == model_fingerprint(trained["model"]) and backbone.family.value == "sd1"
    assert (meta["craft.r_max"], meta["craft.r_min"]) == ("4", "2")
    assert (meta["craft.sigma"], meta["craft.lambda"], meta["craft.steps"]) == ("0.35", "1.0", "4")
    recorded = train_request_from_dict(json.loads(meta["craft.request"]))
    assert recorded == result.request and recorded.resolution == RES
    assert [list(t) for t in result.losses] == [["loss", "denoise", "ortho"]] * 4
    assert result.skipped and result.skipped[0][1] == "not an image file"
    assert not checkpoint_folder(result.out).exists()


def test_the_library_identifies_the_backbone(trained):
    from craftstudio.library.header import read_header
    from craftstudio.library.identify import identify

    ident = identify(read_header(trained["backbone"].out))
    assert (ident.kind, ident.family.value) == ("backbone", "sd1")
    assert ident.base_model_hash == model_fingerprint(trained["model"])


def test_the_sampler_applies_the_trained_backbone(trained):
    request = GenerateRequest(model=str(trained["model"]), prompt="a cat", width=RES, height=RES, steps=3,
                              scheduler="euler", device="cpu", backbone=trained["backbone"].out)
    with_backbone = generate(request)
    without = generate(GenerateRequest(**{**request.to_dict(), "switches": FusionSwitches(backbone=False)}))
    assert with_backbone.details["backbone"]["fingerprint"] == model_fingerprint(trained["model"])
    assert np.abs(np.asarray(with_backbone.images[0], float) - np.asarray(without.images[0], float)).max() > 0


def test_sdxl_backbone_trains_and_is_refused_for_another_base(tmp_path, tiny_sdxl, tiny_sd1, refs):
    result = train_backbone(backbone_request(tiny_sdxl, refs, tmp_path / "xl.safetensors", steps=2,
                                             gradient_checkpointing=True))
    assert load_backbone(result.out).family.value == "sdxl"
    with pytest.raises(LoraError, match="was trained for the base model tiny-sdxl .* turn the backbone off"):
        train_lora(lora_request(tiny_sd1, refs, tmp_path / "c.safetensors", backbone=result.out))
    assert not (tmp_path / "c.safetensors").exists()


def test_cancel_writes_nothing_and_resume_equals_an_uninterrupted_run(tmp_path, tiny_sd1, refs):
    whole = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "whole.safetensors", steps=5))
    out = tmp_path / "resumed.safetensors"
    token = CancelToken()

    def cancel_at_3(event):
        if getattr(event, "stage", "") == "train" and event.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        train_backbone(backbone_request(tiny_sd1, refs, out, steps=5, checkpoint_every=2),
                       progress=cancel_at_3, cancel=token)
    assert not out.exists() and (checkpoint_folder(out) / "last.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left
    resumed = train_backbone(backbone_request(tiny_sd1, refs, out, steps=5, checkpoint_every=2), resume=True)
    assert resumed.resumed_from == 3
    assert [t["loss"] for t in resumed.losses] == pytest.approx([t["loss"] for t in whole.losses], abs=1e-5)
    a, b = load_backbone(whole.out).bases, load_backbone(out).bases
    assert all(torch.allclose(a[k] @ a[k].T, b[k] @ b[k].T, atol=1e-5) for k in a)
    assert not checkpoint_folder(out).exists()


def test_resume_with_other_settings_is_refused(tmp_path, tiny_sd1, refs):
    out = tmp_path / "bb.safetensors"
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        train_backbone(backbone_request(tiny_sd1, refs, out, checkpoint_every=1), cancel=token)
    assert not out.exists()
    # Cancelled before the first step: nothing to keep, so there is no checkpoint either.
    assert not checkpoint_folder(out).exists()


def test_existing_output_and_small_images_are_refused(tmp_path, tiny_sd1, refs, trained):
    with pytest.raises(OutputExists, match="already exists.*--overwrite"):
        train_backbone(backbone_request(tiny_sd1, refs, trained["backbone"].out))
    small = {**refs, "content": refs["small"]}
    with pytest.raises(ImageSetError, match="smaller than the training resolution 32"):
        train_backbone(backbone_request(tiny_sd1, small, tmp_path / "x.safetensors"))
    assert not (tmp_path / "x.safetensors").exists()


def test_preservation_pictures_add_a_term_that_is_recorded_and_inert_at_zero_weight(tmp_path, tiny_sd1, refs):
    plain = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "plain.safetensors"))
    zero = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "zero.safetensors",
                                           keep_dir=str(refs["style"]), keep_weight=0.0))
    kept = train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "kept.safetensors",
                                           keep_dir=str(refs["style"]), keep_weight=100.0))
    a, b, c = (load_backbone(r.out) for r in (plain, zero, kept))
    # The preservation batch is drawn after the step's own: at κ = 0 the result is unchanged.
    assert all(torch.equal(a.bases[k], b.bases[k]) for k in a.bases)
    assert any(not torch.equal(a.bases[k], c.bases[k]) for k in a.bases)
    assert "keep" not in plain.losses[0] and all(t["keep"] > 0 for t in kept.losses)
    assert (a.metadata["craft.keep_weight"], c.metadata["craft.keep_weight"]) == ("0.0", "100.0")
    assert train_request_from_dict(json.loads(c.metadata["craft.request"])).keep_dir == str(refs["style"])
    assert kept.details["keep_images"] == [str(p) for p in sorted(refs["style"].iterdir())]


def test_a_missing_preservation_folder_is_named(tmp_path, tiny_sd1, refs):
    missing = tmp_path / "nowhere"
    with pytest.raises(ImageSetError, match=f"preservation pictures {missing} does not exist"):
        train_backbone(backbone_request(tiny_sd1, refs, tmp_path / "x.safetensors", keep_dir=str(missing)))
    assert not (tmp_path / "x.safetensors").exists()
