"""Identification from the header alone, on synthetic files with real key layouts."""

from __future__ import annotations

import json

import pytest

from craftstudio.domain.family import Family
from craftstudio.library import synthetic
from craftstudio.library.header import read_header
from craftstudio.library.identify import NotRecognised, identify, identify_folder


def _identify(tmp_path, tensors, metadata=None):
    path = synthetic.write_safetensors(tmp_path / "x.safetensors", tensors, metadata)
    return identify(read_header(path), path)


# (layout builder, family, format, rank): one row per real-world layout.
CASES = {
    "kohya sd1 (lora_unet_down_blocks…, lora_te_)": (lambda: synthetic.kohya("sd1", 8), Family.SD1, "kohya", 8),
    "kohya sd1 unet only": (lambda: synthetic.kohya("sd1", 4, text_encoder=False), Family.SD1, "kohya", 4),
    "kohya sd2 (te width 1024)": (lambda: synthetic.kohya("sd2", 16), Family.SD2, "kohya", 16),
    "kohya sd2 text encoder only": (lambda: {k: v for k, v in synthetic.kohya("sd2", 4).items()
                                             if k.startswith("lora_te_")}, Family.SD2, "kohya", 4),
    "kohya sdxl (te1/te2, input_blocks_4_1)": (lambda: synthetic.kohya("sdxl", 32), Family.SDXL, "kohya", 32),
    "kohya sdxl unet only (cross-attention 2048)": (
        lambda: synthetic.kohya("sdxl", 4, text_encoder=False), Family.SDXL, "kohya", 4),
    "diffusers sd1 (unet.…lora_A)": (lambda: synthetic.peft("sd1", 4, prefix="unet."), Family.SD1, "diffusers", 4),
    "diffusers sdxl with text_encoder_2": (
        lambda: synthetic.peft("sdxl", 4, prefix="unet.", text_encoder=True), Family.SDXL, "diffusers", 4),
    "diffusers sdxl unet only": (lambda: synthetic.peft("sdxl", 2, prefix="unet."), Family.SDXL, "diffusers", 2),
    "peft raw state dict sd1": (lambda: synthetic.peft("sd1", 4), Family.SD1, "peft", 4),
    "peft base_model.model prefix sd2": (
        lambda: synthetic.peft("sd2", 4, prefix="base_model.model."), Family.SD2, "peft", 4),
    "old diffusers attention processors": (lambda: {
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight": (4, 768),
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.up.weight": (320, 4),
    }, Family.SD1, "diffusers", 4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layouts(tmp_path, case):
    build, family, fmt, rank = CASES[case]
    ident = identify(read_header(synthetic.write_safetensors(tmp_path / "x.safetensors", build())))
    assert (ident.kind, ident.family, ident.format, ident.rank) == ("lora", family, fmt, rank)


def test_full_sdxl_layout_uses_real_sgm_names(tmp_path):
    keys = synthetic.kohya("sdxl", 4, full=True)
    assert "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k.lora_down.weight" in keys
    assert keys["lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k.lora_down.weight"] == (4, 2048)
    assert keys["lora_te2_text_model_encoder_layers_31_self_attn_q_proj.lora_down.weight"] == (4, 1280)
    assert _identify(tmp_path, keys).family is Family.SDXL


@pytest.mark.parametrize(("metadata", "family"), [
    ({"ss_base_model_version": "sdxl_base_v1-0"}, Family.SDXL),
    ({"ss_base_model_version": "sd_v2_768_v"}, Family.SD2),
    ({"ss_base_model_version": "sd_v1"}, Family.SD1),
    ({"ss_v2": "True"}, Family.SD2),
    ({"ss_v2": "False", "ss_network_module": "networks.lora"}, Family.SD1),
    ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, Family.SDXL),
    ({"modelspec.architecture": "stable-diffusion-v2-768-v/lora"}, Family.SD2),
    ({"modelspec.architecture": "stable-diffusion-v1/lora"}, Family.SD1),
    ({"modelspec.architecture": "flux-1-dev/lora"}, Family.UNKNOWN),
    ({}, Family.UNKNOWN),
])
def test_family_from_metadata_when_shapes_do_not_say(tmp_path, metadata, family):
    # A feed-forward-only LoRA: no cross-attention or text-encoder keys to measure.
    keys = {"lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2.lora_down.weight": (4, 5120),
            "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2.lora_up.weight": (1280, 4)}
    assert _identify(tmp_path, keys, metadata).family is family


def test_shapes_win_over_wrong_metadata(tmp_path):
    ident = _identify(tmp_path, synthetic.kohya("sdxl", 4), {"ss_base_model_version": "sd_v1"})
    assert ident.family is Family.SDXL
    assert "text encoder" in ident.meta["family_evidence"]


def test_modelspec_metadata(tmp_path):
    ident = _identify(tmp_path, synthetic.peft("sd1", 4, prefix="unet."), {
        "modelspec.title": "Ginger Cat", "modelspec.trigger_phrase": "gingercat, orange fur",
        "modelspec.description": "My cat", "modelspec.category": "character", "custom.key": "kept"})
    assert ident.title == "Ginger Cat"
    assert ident.triggers == ["gingercat", "orange fur"]
    assert ident.description == "My cat"
    assert ident.role == "content"
    assert ident.meta["custom.key"] == "kept"


@pytest.mark.parametrize(("metadata", "role"), [
    ({"craft.role": "style"}, "style"), ({"craft.role": "content"}, "content"),
    ({"modelspec.category": "Art Style"}, "style"), ({"modelspec.category": "pose"}, "other"),
    ({"craft.role": "style", "modelspec.category": "character"}, "style"), ({}, "other"),
])
def test_role(tmp_path, metadata, role):
    assert _identify(tmp_path, synthetic.kohya("sd1", 4), metadata).role == role


def test_kohya_metadata_gives_title_and_most_frequent_tags(tmp_path):
    meta = synthetic.kohya_metadata("inkSketch", "sd1", 4)
    meta["ss_tag_frequency"] = json.dumps({"10_a": {"ink": 5, "1girl": 40, "sketch": 9},
                                           "5_b": {"ink": 50, "hat": 1}})
    ident = _identify(tmp_path, synthetic.kohya("sd1", 4), meta)
    assert ident.title == "inkSketch"
    assert ident.triggers[:3] == ["ink", "1girl", "sketch"]
    assert len(ident.triggers) <= 5


def test_thumbnail_is_not_kept_in_metadata(tmp_path):
    ident = _identify(tmp_path, synthetic.kohya("sd1", 4), {"modelspec.thumbnail": "data:image/png;base64,AAAA"})
    assert ident.thumbnail == "data:image/png;base64,AAAA"
    assert "modelspec.thumbnail" not in ident.meta


def test_mixed_ranks_report_the_largest(tmp_path):
    keys = synthetic.kohya("sd1", 4)
    keys["lora_unet_extra.lora_down.weight"] = (16, 320)
    ident = _identify(tmp_path, keys)
    assert ident.rank == 16 and ident.meta["ranks"] == [4, 16]


def test_lycoris_is_a_lora(tmp_path):
    keys = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_a": (320, 8),
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_b": (8, 768)}
    ident = _identify(tmp_path, keys, {"ss_network_dim": "8", "ss_base_model_version": "sd_v1"})
    assert (ident.kind, ident.family, ident.rank, ident.format) == ("lora", Family.SD1, 8, "kohya")


@pytest.mark.parametrize(("keys", "metadata", "family"), [
    ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
      "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768)}, None, Family.SD1),
    ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
      "cond_stage_model.model.token_embedding.weight": (49408, 1024)}, None, Family.SD2),
    ({"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
      "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280)}, None, Family.SDXL),
    ({"model.diffusion_model.out.2.weight": (4, 320, 3, 3)},
     {"modelspec.architecture": "stable-diffusion-xl-v1-base"}, Family.SDXL),
])
def test_single_file_checkpoints(tmp_path, keys, metadata, family):
    ident = _identify(tmp_path, keys, metadata)
    assert (ident.kind, ident.family, ident.format) == ("model", family, "single-file")


def test_backbone(tmp_path):
    ident = _identify(tmp_path, {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.q": (320, 64)},
                      {"craft.kind": "backbone", "craft.base_model_hash": "ab" * 32, "craft.r_max": "128",
                       "modelspec.architecture": "stable-diffusion-v1"})
    assert (ident.kind, ident.family, ident.base_model_hash) == ("backbone", Family.SD1, "ab" * 32)


@pytest.mark.parametrize(("keys", "reason"), [
    ({}, "no tensors"),
    ({"encoder.down.0.block.0.conv1.weight": (128, 3, 3, 3), "decoder.up.0.block.0.conv1.weight": (128, 128, 3, 3)},
     "VAE"),
    ({"emb_params": (4, 768)}, "embedding"),
    ({"clip_l": (2, 768), "clip_g": (2, 1280)}, "embedding"),
    ({"some.weight": (3, 3)}, "not a LoRA"),
])
def test_other_safetensors_are_not_recognised(tmp_path, keys, reason):
    with pytest.raises(NotRecognised, match=reason):
        _identify(tmp_path, keys)


def _pipeline(folder, cls, cross):
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    (folder / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": cross}))
    return folder


@pytest.mark.parametrize(("cls", "cross", "family"), [
    ("StableDiffusionPipeline", 768, Family.SD1), ("StableDiffusionPipeline", 1024, Family.SD2),
    ("StableDiffusionXLPipeline", 2048, Family.SDXL), ("StableDiffusionPipeline", 32, Family.SD1),
])
def test_diffusers_folders(tmp_path, cls, cross, family):
    assert identify_folder(_pipeline(tmp_path / "m", cls, cross)).family is family


def test_other_pipelines_are_not_recognised(tmp_path):
    with pytest.raises(NotRecognised, match="FluxPipeline"):
        identify_folder(_pipeline(tmp_path / "m", "FluxPipeline", 4096))


def test_tiny_real_sd1_pipeline_is_recognised(tiny_sd1):
    ident = identify_folder(tiny_sd1)
    assert (ident.kind, ident.family, ident.format) == ("model", Family.SD1, "diffusers")
