"""train_lora end to end: routed keys, stock diffusers loading, metadata, samples, resume, bad input."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import RequestError, UserError
from craftstudio.domain.generation import GenerateRequest, LoraRef
from craftstudio.domain.progress import PreviewEvent
from craftstudio.domain.training import train_request_from_dict
from craftstudio.engine.backbone import apply_backbone, load_backbone
from craftstudio.engine.fingerprint import file_sha256, model_fingerprint
from craftstudio.engine.generation import generate
from craftstudio.engine.loader import load_model
from craftstudio.engine.lora_adapters import load_lora
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets, modules_by_role, target_modules
from craftstudio.engine.training.checkpoint import checkpoint_folder
from craftstudio.engine.training.loop import OutputExists
from craftstudio.engine.training.lora_format import save_lora
from craftstudio.engine.training.lora_training import ADAPTER, add_lora, train_lora
from tests.engine.training.conftest import RES, lora_request, unet_out

CPU = torch.device("cpu")


def _tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118


def _metadata(path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata())


def _modules(keys) -> set[str]:
    return {k.removeprefix("unet.").rsplit(".lora_", 1)[0] for k in keys}


@pytest.mark.parametrize("role", [CONTENT, STYLE])
def test_a_lora_holds_exactly_its_role_set(trained, role):
    unet = load_model(trained["model"], CPU, torch.float32).unet
    sets = modules_by_role(target_modules(unet), LayerSets.for_family("sd1"))
    keys = _tensors(trained[role].out)
    assert all(k.startswith("unet.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    assert _modules(keys) == set(sets[role])
    assert not _modules(keys) & set(sets[STYLE if role == CONTENT else CONTENT])


def test_metadata_is_modelspec_plus_craft_and_round_trips(trained):
    result = trained["content"]
    meta = _metadata(result.out)
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert (meta["modelspec.title"], meta["modelspec.trigger_phrase"], meta["modelspec.category"]) == (
        "content", "sks cat", "content")
    assert meta["modelspec.date"][:2] == "20" and meta["modelspec.resolution"] == f"{RES}x{RES}"
    assert meta["craft.role"] == "content" and meta["craft.kind"] == "lora"
    assert json.loads(meta["craft.layers"]) == ["down_blocks.0.attentions.0", "mid_block.attentions.0",
                                                "up_blocks.1.attentions.0"]
    assert meta["craft.backbone"] == file_sha256(trained["backbone"].out)
    assert meta["craft.base_fingerprint"] == model_fingerprint(trained["model"])
    assert train_request_from_dict(json.loads(meta["craft.request"])) == result.request
    assert json.loads(meta["lora_adapter_metadata"])["unet.lora_alpha"] == 2  # stock diffusers' own key


def test_the_library_identifies_role_and_trigger(trained):
    from craftstudio.library.header import read_header
    from craftstudio.library.identify import identify

    ident = identify(read_header(trained["style"].out))
    assert (ident.kind, ident.family.value, ident.role, ident.triggers, ident.rank) == (
        "lora", "sd1", "style", ["ohwx"], 2)




def test_stock_diffusers_loads_the_file_as_the_in_memory_adapter(tmp_path, trained):
    from diffusers import StableDiffusionPipeline

    model = load_model(trained["model"], CPU, torch.float32)
    bases = load_backbone(trained["backbone"].out).bases
    apply_backbone(model.unet, bases)
    unet = model.unet
    modules = modules_by_role(target_modules(unet), LayerSets.for_family("sd1"))[CONTENT]
    params = add_lora(unet, modules, rank=4, alpha=2.0, seed=3)
    with torch.no_grad():
        for name, p in params.items():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.3)
    ours = unet_out(unet, 400)
    path = save_lora(unet, ADAPTER, StableDiffusionPipeline, tmp_path / "x.safetensors", {"craft.role": "content"},
                     overwrite=False)
    pipe = StableDiffusionPipeline.from_pretrained(trained["model"], local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    apply_backbone(pipe.unet, bases)
    plain = unet_out(pipe.unet, 400)
    pipe.load_lora_weights(str(path))
    stock = unet_out(pipe.unet, 400)
    assert (ours - plain).abs().max() > 1e-3  # the adapter matters
    assert torch.allclose(stock, ours, atol=1e-5)
    # CraftStudio's own reader sees every layer with scale alpha / rank.
    lora = load_lora(path, load_model(trained["model"], CPU, torch.float32))
    assert set(lora.deltas) == set(modules) and {d.scale for d in lora.deltas.values()} == {0.5}


def test_the_sampler_loads_the_trained_backbone_and_loras(trained):
    k = trained
    request = GenerateRequest(model=str(k["model"]), prompt="a sks cat <c> in ohwx style <s>", width=RES,
                              height=RES, steps=3, cfg_scale=5.0, scheduler="euler", device="cpu",
                              backbone=k["backbone"].out, content_lora=LoraRef(k["content"].out),
                              style_lora=LoraRef(k["style"].out))
    result = generate(request)
    loras = result.details["loras"]
    assert loras[CONTENT]["layers_dropped"] == 0 and loras[STYLE]["layers_dropped"] == 0
    assert loras[CONTENT]["layers_used"] == 24 and loras[STYLE]["layers_used"] == 8
    assert result.images[0].size == (RES, RES)


def test_cancel_writes_nothing_and_resume_equals_an_uninterrupted_run(tmp_path, tiny_sd1, refs):
    whole = train_lora(lora_request(tiny_sd1, refs, tmp_path / "whole.safetensors", steps=4, batch_size=2))
    out = tmp_path / "resumed.safetensors"
    token = CancelToken()

    def cancel_at_3(event):
        if getattr(event, "stage", "") == "train" and event.step == 3:
            token.cancel()

    request = lora_request(tiny_sd1, refs, out, steps=4, batch_size=2, checkpoint_every=2)
    with pytest.raises(Cancelled):
        train_lora(request, progress=cancel_at_3, cancel=token)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.safetensors.checkpoints", "whole.safetensors"]
    resumed = train_lora(request, resume=True)
    assert resumed.resumed_from == 3 and not checkpoint_folder(out).exists()
    a, b = _tensors(whole.out), _tensors(out)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert [t["loss"] for t in resumed.losses] == pytest.approx([t["loss"] for t in whole.losses], abs=1e-6)


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_sd1, refs):
    token = CancelToken()

    def cancel_at_1(event):
        if getattr(event, "stage", "") == "train" and event.step == 1:
            token.cancel()

    out = tmp_path / "c.safetensors"
    with pytest.raises(Cancelled):
        train_lora(lora_request(tiny_sd1, refs, out, checkpoint_every=5), progress=cancel_at_1, cancel=token)
    with pytest.raises(UserError, match=r"other settings: rank \(2 there, 3 now\)"):
        train_lora(lora_request(tiny_sd1, refs, out, rank=3), resume=True)


def test_sample_images_come_from_the_craft_sampler(tmp_path, tiny_sd1, refs):
    events = []
    train_lora(lora_request(tiny_sd1, refs, tmp_path / "s.safetensors", role=STYLE, steps=3, sample_every=2,
                            sample_steps=2), progress=events.append)
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert [e.step for e in previews] == [2, 3] and previews[0].image.size == (RES, RES)
    train = [e for e in events if getattr(e, "stage", "") == "train" and e.values]
    assert [e.step for e in train] == [1, 2, 3] and all({"loss", "eta_s"} <= set(e.values) for e in train)


def test_existing_output_is_never_overwritten_silently(tmp_path, tiny_sd1, refs, trained):
    before = trained["content"].out
    with pytest.raises(OutputExists, match="already exists"):
        train_lora(lora_request(tiny_sd1, refs, before))


def test_disk_full_while_saving_leaves_the_old_file_untouched(tmp_path, tiny_sd1, refs, monkeypatch):
    import safetensors.torch

    out = tmp_path / "c.safetensors"
    out.write_bytes(b"the old file")
    real = safetensors.torch.save_file

    def full_disk(tensors, filename, metadata=None):
        if str(filename).endswith(".tmp"):  # the final write (the staging write is allowed)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(UserError, match="Could not write .*c.safetensors: No space left on device"):
        train_lora(lora_request(tiny_sd1, refs, out, steps=1, overwrite=True))
    assert out.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


def test_adam_8bit_needs_bitsandbytes(tmp_path, tiny_sd1, refs):
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(RequestError, match="bitsandbytes"):
            train_lora(lora_request(tiny_sd1, refs, tmp_path / "c.safetensors", adam_8bit=True))
        assert not (tmp_path / "c.safetensors").exists()
    else:
        pytest.skip("bitsandbytes is installed here")


def test_sdxl_lora_trains_routed_and_loads_in_stock_diffusers(tmp_path, tiny_sdxl, refs):
    from diffusers import StableDiffusionXLPipeline

    result = train_lora(lora_request(tiny_sdxl, refs, tmp_path / "xl.safetensors", steps=2,
                                     gradient_checkpointing=True, loss="min_snr", alpha=1.0))
    unet = load_model(tiny_sdxl, CPU, torch.float32).unet
    sets = modules_by_role(target_modules(unet), LayerSets.for_family("sdxl"))
    assert _modules(_tensors(result.out)) == set(sets[CONTENT])
    assert _metadata(result.out)["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl, local_files_only=True)
    pipe.load_lora_weights(result.out)
    assert len(pipe.unet.peft_config) == 1
    assert np.isfinite(result.final_loss)


def test_lora_loss_falls_over_a_few_steps_on_a_fixed_batch(tiny_sd1):
    from craftstudio.engine.training.denoising import (
        DenoisingSetup,
        LatentCache,
        TextConditioning,
        draw_batch,
        make_noise_scheduler,
        step_generator,
    )
    from craftstudio.engine.training.lora_training import LoraStep, make_optimizer
    from craftstudio.engine.training.losses import make_denoising_loss
    from craftstudio.engine.training.precision import resolve_precision

    model = load_model(tiny_sd1, CPU, torch.float32)
    unet = model.unet
    modules = modules_by_role(target_modules(unet), LayerSets.for_family("sd1"))[CONTENT]
    params = add_lora(unet, modules, rank=4, alpha=4.0, seed=0)
    assert all(p.dtype == torch.float32 for p in params.values()) and len(params) == 2 * len(modules)
    scheduler = make_noise_scheduler(model.pipeline.scheduler.config)
    setup = DenoisingSetup(unet, scheduler, resolve_precision("no", CPU), make_denoising_loss("mse", scheduler))
    step = LoraStep(setup, make_optimizer(list(params.values()), 1e-2, adam_8bit=False))
    gen = torch.Generator().manual_seed(1)
    cache = LatentCache.constant(torch.randn(2, 4, 8, 8, generator=gen))
    text = TextConditioning(torch.randn(1, 77, 32, generator=gen))
    batch = draw_batch(cache, [0, 1], step_generator(0, 0), 1000, CPU)
    losses = [float(step(batch, text)["loss"]) for _ in range(6)]
    assert losses[-1] < losses[0]


def test_caption_files_give_each_image_its_own_caption(tmp_path, tiny_sd1):
    from tests.engine.training.conftest import write_image

    for i, shape in enumerate(("star", "ring")):
        write_image(tmp_path / f"{shape}.png", 10 + i)
        (tmp_path / f"{shape}.txt").write_text(f"a {shape} in {{trigger}} style")
    write_image(tmp_path / "plain.png", 12)
    result = train_lora(lora_request(tiny_sd1, {"style": tmp_path}, tmp_path / "style.safetensors", "style",
                                     caption="a picture in {trigger} style"))
    assert result.details["captions"] == {
        str(tmp_path / "plain.png"): "a picture in ohwx style",
        str(tmp_path / "ring.png"): "a ring in ohwx style",
        str(tmp_path / "star.png"): "a star in ohwx style",
    }
    assert result.skipped == []


def test_per_image_captions_reach_the_unet_row_by_row(tiny_sd1):
    from craftstudio.engine.training.denoising import encode_captions

    model = load_model(tiny_sd1, CPU, torch.float32)
    texts = ["a star in ohwx style", "a ring in ohwx style", "a star in ohwx style"]
    text = encode_captions(model, texts, RES)
    assert text.states.shape[0] == 3
    assert torch.equal(text.states[0], text.states[2]) and not torch.equal(text.states[0], text.states[1])
    picked = text.take([1, 0])
    assert torch.equal(picked.states[0], text.states[1])
    assert picked.expand(2)[0] is picked.states
    single = encode_captions(model, texts[:1] * 4, RES)
    assert single.states.shape[0] == 1 and single.take([0, 0, 0]).expand(3)[0].shape[0] == 3


def test_a_b_lora_preset_trains_the_roles_one_block(tiny_sd1, refs, tmp_path):
    from safetensors import safe_open

    from craftstudio.engine.training.lora_training import train_lora
    from tests.engine.training.conftest import lora_request

    out = tmp_path / "b-style.safetensors"
    train_lora(lora_request(tiny_sd1, refs, out, "style", routing_preset="b-lora", steps=1))
    with safe_open(str(out), framework="pt") as fh:
        blocks = {key.split(".transformer_blocks")[0].removeprefix("unet.") for key in fh.keys()}  # noqa: SIM118
    assert blocks == {"up_blocks.1.attentions.1"}
