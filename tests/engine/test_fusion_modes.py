"""The peer fusion modes (K-LoRA, LoRA Switch, LoRA Composite) against slow, obviously-correct
references, plus their invariants."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from craftstudio.domain.family import Family
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
from craftstudio.domain.markers import parse_prompt
from craftstudio.engine import fusion_klora, model_cache
from craftstudio.engine.backbone import save_backbone
from craftstudio.engine.conditioning import encode
from craftstudio.engine.fingerprint import model_fingerprint
from craftstudio.engine.fusion_multi import SWITCH_EVERY
from craftstudio.engine.generation import decode, generate, initial_latents
from craftstudio.engine.loader import load_model
from craftstudio.engine.routing import CONTENT, STYLE, target_modules
from craftstudio.engine.sampler import step_kwargs
from craftstudio.engine.schedulers import make_scheduler
from tests.kit.tiny_loras import random_backbone, random_lora, save_peft

CPU = torch.device("cpu")
PROMPT = "a ginger cat <c> in watercolor style <s:0.8>"
TOLERANCE = 2.0 / 255.0  # as the CRAFT reference tests


@pytest.fixture(scope="module")
def kit(tmp_path_factory, tiny_sd1, tiny_sdxl):
    out = {}
    for family, model_dir in (("sd1", tiny_sd1), ("sdxl", tiny_sdxl)):
        folder = tmp_path_factory.mktemp(f"peer-loras-{family}")
        unet = load_model(model_dir, CPU, torch.float32).unet
        content = random_lora(unet, seed=11)
        style = random_lora(unet, seed=12)
        backbone = save_backbone(folder / "backbone.safetensors", random_backbone(unet, seed=3),
                                 fingerprint=model_fingerprint(model_dir), family=Family(family),
                                 base_name=model_dir.name, r_max=3, r_min=3)
        out[family] = {"model": model_dir, "content": content, "style": style, "backbone": backbone,
                       "content_file": save_peft(content, folder / "content.safetensors"),
                       "style_file": save_peft(style, folder / "style.safetensors")}
    return out


def _request(k, mode: str | None, **kw) -> GenerateRequest:
    base = dict(model=str(k["model"]), prompt=PROMPT, width=64, height=64, steps=7, cfg_scale=5.0, seed=4,
                scheduler="euler", device="cpu", content_lora=LoraRef(str(k["content_file"]), 0.9),
                style_lora=LoraRef(str(k["style_file"]), 1.1), peer_mode=mode,
                switches=FusionSwitches.for_mode(mode or "direct"))
    base.update(kw)
    return GenerateRequest(**base)


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def _diff(a, b) -> float:
    return float(np.abs(_pixels(a) - _pixels(b)).max())


def _klora_winners(content, style, step: int, steps: int) -> dict[str, str]:
    """K-LoRA written out: Top-K sums of |ΔW| per layer, γ the mean ratio of the full sums,
    content wins where S_c/γ > S_s·(α·x + β)."""
    k = fusion_klora.TOP_K
    sums, ratios = {}, []
    for name in content:
        dc = (content[name][1] @ content[name][0]).abs().flatten()
        ds = (style[name][1] @ style[name][0]).abs().flatten()
        sums[name] = (dc.sort(descending=True).values[:k].sum().item(),
                      ds.sort(descending=True).values[:k].sum().item())
        ratios.append(dc.sum().item() / ds.sum().item())
    gamma = sum(ratios) / len(ratios)
    scale = fusion_klora.ALPHA * step / (steps - 1) + fusion_klora.BETA
    return {name: CONTENT if s_c / gamma > s_s * scale else STYLE for name, (s_c, s_s) in sums.items()}


@torch.no_grad()
def reference_image(k, request: GenerateRequest):
    """Separate UNet calls with merged weights per step and per LoRA; base weights W0, standard
    CFG with the LoRAs in both branches, as the papers' stock pipelines do."""
    model = load_model(k["model"], CPU, torch.float32)
    unet = model.unet
    w0 = {n: t.clone() for n, t in unet.state_dict().items()}
    parsed = parse_prompt(request.prompt)
    gate = {CONTENT: request.content_lora.weight * (parsed.gamma_content if parsed.has_markers else 1.0),
            STYLE: request.style_lora.weight * (parsed.gamma_style if parsed.has_markers else 1.0)}
    deltas = {CONTENT: k["content"], STYLE: k["style"]}

    def merged(per_layer: dict[str, str]) -> dict[str, torch.Tensor]:
        """W0 plus, on each layer, the delta of the role named for it."""
        weights = {n: t.clone() for n, t in w0.items()}
        for name, role in per_layer.items():
            a, b = deltas[role][name]
            weights[f"{name}.weight"] += gate[role] * (b @ a)
        return weights

    scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
    scheduler.set_timesteps(request.steps)
    generator = torch.Generator("cpu").manual_seed(request.seed)
    cond = encode(model, parsed.text, request.negative_prompt, request.width, request.height)
    latents = initial_latents(model, scheduler, request.width, request.height, generator)
    extra = step_kwargs(scheduler, generator)
    everywhere = {role: dict.fromkeys(deltas[role], role) for role in deltas}
    s = request.cfg_scale
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.scale_model_input(latents, t)

        def guided(weights, x=x, t=t):
            unet.load_state_dict(weights)
            eps_c = unet(x, t, encoder_hidden_states=cond.cond, added_cond_kwargs=cond.added_cond).sample
            eps_u = unet(x, t, encoder_hidden_states=cond.uncond, added_cond_kwargs=cond.added_uncond).sample
            return eps_u + s * (eps_c - eps_u)

        if request.peer_mode == "k-lora":
            eps = guided(merged(_klora_winners(k["content"], k["style"], i, request.steps)))
        elif request.peer_mode == "switch":
            active = (CONTENT, STYLE)[(i // SWITCH_EVERY) % 2]
            eps = guided(merged(everywhere[active]))
        else:  # composite: each LoRA's own guided prediction, averaged
            eps = (guided(merged(everywhere[CONTENT])) + guided(merged(everywhere[STYLE]))) / 2
        latents = scheduler.step(eps, t, latents, **extra).prev_sample
    return decode(model, latents)


@pytest.mark.parametrize("family, mode", [(f, m) for f in ("sd1", "sdxl") for m in ("k-lora", "switch", "composite")])
def test_matches_slow_reference(kit, family, mode):
    request = _request(kit[family], mode)  # 7 steps: Switch runs content on 0–4, style on 5–6
    ours = generate(request)
    assert _diff(ours.images[0], reference_image(kit[family], request)) <= TOLERANCE
    d = ours.details
    assert d["mode"] == mode and d["peer"]["paper"].startswith("arXiv")
    if mode == "k-lora":
        assert d["peer"]["k"] == fusion_klora.TOP_K
        per_step = d["peer"]["content_layers_per_step"]
        assert per_step[0] > per_step[-1]  # the step scaling favours content early, style late
    elif mode == "switch":
        assert d["peer"]["every"] == SWITCH_EVERY and d["peer"]["active"] == [CONTENT] * 5 + [STYLE] * 2
        assert d["gates"][STYLE][:5] == [0.0] * 5 and d["gates"][STYLE][5] == pytest.approx(1.1 * 0.8)
    else:
        assert d["peer"]["unet_rows_per_image"] == 4


def test_modes_differ_from_each_other_and_from_direct(kit):
    k = kit["sd1"]
    images = {mode: generate(_request(k, mode, steps=4)).images[0] for mode in (None, "k-lora", "switch", "composite")}
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert _diff(images[a], images[b]) > 0.01, (a, b)


def test_peer_modes_use_no_craft_component_and_record_what_they_did(kit):
    """A backbone and CRAFT switches given with a peer mode are not used; the record says so."""
    k = kit["sd1"]
    with_craft = _request(k, "switch", steps=4, backbone=str(k["backbone"]), switches=FusionSwitches())
    plain = _request(k, "switch", steps=4)
    ours = generate(with_craft)
    assert _diff(ours.images[0], generate(plain).images[0]) == 0.0
    d = ours.details
    assert d["mode"] == "switch" and d["backbone"] is None
    assert d["switches"] == {"backbone": False, "routing": False, "asymmetric": False, "gates": False}
    assert d["loras"][CONTENT]["layers_dropped"] == 0  # no routing


def test_switch_with_period_at_least_the_steps_is_the_content_lora_alone(kit):
    k = kit["sd1"]
    steps = SWITCH_EVERY
    switch = generate(_request(k, "switch", steps=steps))
    content_only = generate(_request(k, None, steps=steps, style_lora=None))
    assert _diff(switch.images[0], content_only.images[0]) <= 1.0 / 255.0


def test_composite_with_identical_loras_is_that_lora_alone(kit):
    k = kit["sd1"]
    same = LoraRef(str(k["content_file"]), 0.9)
    composite = generate(_request(k, "composite", steps=4, prompt="a ginger cat", style_lora=same))
    single = generate(_request(k, None, steps=4, prompt="a ginger cat", style_lora=None))
    assert _diff(composite.images[0], single.images[0]) <= 1.0 / 255.0


def test_composite_batch_images_match_their_single_runs(kit):
    """Replicas are laid out per image correctly: image 1 of a batch is the seed+1 image alone."""
    k = kit["sdxl"]
    batch = generate(_request(k, "composite", steps=3, batch_count=2))
    alone = generate(_request(k, "composite", steps=3, seed=5))
    assert _diff(batch.images[1], alone.images[0]) <= 1.0 / 255.0


def _lopsided_lora(unet, seed: int, strong_first: bool):
    """A LoRA strong on the first half of the layers and weak on the rest (or the other way)."""
    names = target_modules(unet)
    half = len(names) // 2
    first, second = names[:half], names[half:]
    strong, weak = (first, second) if strong_first else (second, first)
    return {**random_lora(unet, strong, seed=seed, strength=0.6), **random_lora(unet, weak, seed=seed + 1,
                                                                                 strength=0.1)}, first


def test_klora_table_is_cached_per_file_pair_and_follows_strength(kit, tmp_path, monkeypatch):
    k = kit["sd1"]
    model = model_cache.get_model(k["model"], CPU, torch.float32)
    a, first_half = _lopsided_lora(model.unet, seed=21, strong_first=True)
    b, _ = _lopsided_lora(model.unet, seed=31, strong_first=False)
    lora_a = model_cache.get_lora(save_peft(a, tmp_path / "a.safetensors"), model)
    lora_b = model_cache.get_lora(save_peft(b, tmp_path / "b.safetensors"), model)
    monkeypatch.setattr(fusion_klora, "_tables", OrderedDict())
    computed = []
    real = fusion_klora.compute_table
    monkeypatch.setattr(fusion_klora, "compute_table", lambda c, s: computed.append(1) or real(c, s))
    ab = fusion_klora.table_for(lora_a, lora_b)
    assert fusion_klora.table_for(lora_a, lora_b) is ab and len(computed) == 1
    assert (ab.content_sha256, ab.style_sha256) == (lora_a.sha256, lora_b.sha256)
    ba = fusion_klora.table_for(lora_b, lora_a)
    assert len(computed) == 2
    steps, mid = 10, 5
    win_ab, win_ba = ab.winners(mid, steps), ba.winners(mid, steps)
    assert win_ab != win_ba
    layer = first_half[0]
    assert win_ab[layer] == CONTENT and win_ba[layer] == STYLE  # the stronger LoRA there wins
    assert win_ab == _klora_winners(a, b, mid, steps)
    # Generating with a cached pair reuses its table.
    request = _request(k, "k-lora", steps=4, content_lora=LoraRef(str(lora_a.path)),
                       style_lora=LoraRef(str(lora_b.path)))
    generate(request)
    generate(request)
    assert len(computed) == 2
