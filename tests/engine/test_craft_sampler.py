"""The CRAFT sampler against a slow, obviously-correct reference, plus its invariants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from craftstudio.domain.curves import CurveSet, load_preset
from craftstudio.domain.errors import LoraError, RequestError
from craftstudio.domain.family import Family
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
from craftstudio.domain.markers import parse_prompt
from craftstudio.engine import model_cache
from craftstudio.engine.backbone import save_backbone
from craftstudio.engine.conditioning import encode
from craftstudio.engine.fingerprint import model_fingerprint
from craftstudio.engine.generation import decode, generate, initial_latents
from craftstudio.engine.loader import load_model
from craftstudio.engine.routing import CONTENT, STYLE, LayerSets
from craftstudio.engine.sampler import step_kwargs
from craftstudio.engine.schedulers import make_scheduler
from tests.kit.tiny_loras import random_backbone, random_lora, save_kohya, save_peft

CPU = torch.device("cpu")
PROMPT = "a ginger cat <c> in watercolor style <s:0.8>"


@pytest.fixture(scope="module")
def kit(tmp_path_factory, tiny_sd1, tiny_sdxl):
    """Per family: the model dir, content/style LoRA tensors and files, a backbone file."""
    out = {}
    for family, model_dir in (("sd1", tiny_sd1), ("sdxl", tiny_sdxl)):
        folder = tmp_path_factory.mktemp(f"loras-{family}")
        unet = load_model(model_dir, CPU, torch.float32).unet
        content = random_lora(unet, seed=1)
        style = random_lora(unet, seed=2)
        bases = random_backbone(unet, seed=3)
        backbone = save_backbone(folder / "backbone.safetensors", bases,
                                 fingerprint=model_fingerprint(model_dir), family=Family(family),
                                 base_name=model_dir.name, r_max=3, r_min=3)
        out[family] = {
            "model": model_dir, "content": content, "style": style, "bases": bases, "backbone": backbone,
            "content_file": save_peft(content, folder / "content.safetensors"),
            "style_file": save_peft(style, folder / "style.safetensors"),
            "content_kohya": save_kohya(content, folder / "content-kohya.safetensors"),
        }
    return out


def _request(k, switches=FusionSwitches(), curves="paper", **kw) -> GenerateRequest:
    base = dict(model=str(k["model"]), prompt=PROMPT, width=64, height=64, steps=6, cfg_scale=5.0, seed=3,
                scheduler="euler", device="cpu", content_lora=LoraRef(str(k["content_file"]), 0.9),
                style_lora=LoraRef(str(k["style_file"]), 1.1), backbone=str(k["backbone"]),
                switches=switches, curves=load_preset(curves).to_dict() if curves else None)
    base.update(kw)
    return GenerateRequest(**base)


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


@torch.no_grad()
def reference_image(k, request: GenerateRequest):
    """Separate UNet calls per branch; LoRA deltas merged into a copy of the weights every step."""
    model = load_model(k["model"], CPU, torch.float32)  # a fresh, uncached copy
    unet = model.unet
    sw = request.switches
    if sw.backbone:
        for name, q in k["bases"].items():
            w = unet.get_submodule(name).weight
            w.copy_(w - (w @ q) @ q.T)
    w_init = {n: t.clone() for n, t in unet.state_dict().items()}
    parsed = parse_prompt(request.prompt)
    gammas = {CONTENT: parsed.gamma_content, STYLE: parsed.gamma_style}
    weights = {CONTENT: request.content_lora.weight, STYLE: request.style_lora.weight}
    curves = CurveSet.from_dict(request.curves) if (request.curves and sw.gates) else CurveSet.constant()
    samples = curves.sample(request.steps, request.cfg_scale)
    sets = LayerSets.for_family(model.family) if sw.routing else None

    def weights_at(k_step: int) -> dict[str, torch.Tensor]:
        merged = {n: t.clone() for n, t in w_init.items()}
        for role, lora, curve in ((CONTENT, k["content"], samples.content), (STYLE, k["style"], samples.style)):
            gate = weights[role] * gammas[role] * curve[k_step]
            for name, (a, b) in lora.items():
                if sets is None or sets.role_of(name) == role:
                    merged[f"{name}.weight"] += gate * (b @ a)
        return merged

    scheduler = make_scheduler(request.scheduler, model.pipeline.scheduler.config)
    scheduler.set_timesteps(request.steps)
    generator = torch.Generator("cpu").manual_seed(request.seed)
    cond = encode(model, parsed.text, request.negative_prompt, request.width, request.height)
    latents = initial_latents(model, scheduler, request.width, request.height, generator)
    start = 0
    if request.init_image:  # image to image: the picture's latents noised to step `start`'s level
        from PIL import Image

        start = request.steps - int(request.steps * request.strength)
        scheduler.set_begin_index(start)
        pixels = torch.from_numpy(np.asarray(Image.open(request.init_image).convert("RGB"), dtype=np.float32))
        posterior = model.vae.encode(pixels.permute(2, 0, 1)[None] / 127.5 - 1.0).latent_dist
        known = posterior.mean * model.vae.config.scaling_factor
        noise = latents / scheduler.init_noise_sigma
        latents = scheduler.add_noise(known, noise, scheduler.timesteps[start:start + 1])
    extra = step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        if i < start:
            continue
        x = scheduler.scale_model_input(latents, t)

        def eps(states, added, x=x, t=t):
            return unet(x, t, encoder_hidden_states=states, added_cond_kwargs=added).sample

        lora_weights = weights_at(i)
        unet.load_state_dict(lora_weights)
        eps_c = eps(cond.cond, cond.added_cond)
        unet.load_state_dict(w_init if sw.asymmetric else lora_weights)
        eps_u = eps(cond.uncond, cond.added_uncond)
        s = samples.guidance[i]
        latents = scheduler.step(eps_u + s * (eps_c - eps_u), t, latents, **extra).prev_sample
    return decode(model, latents)


ROWS = [
    ("sd1", FusionSwitches(), "paper"),
    ("sd1", FusionSwitches(), "guidance-ramp"),
    ("sd1", FusionSwitches(), "content-early-style-late"),
    ("sd1", FusionSwitches.for_mode("direct"), "paper"),
    ("sd1", FusionSwitches(backbone=False), "paper"),
    ("sd1", FusionSwitches(routing=False), "guidance-interval"),
    ("sd1", FusionSwitches(asymmetric=False), "paper"),
    ("sd1", FusionSwitches(gates=False), "paper"),
    ("sdxl", FusionSwitches(), "paper"),
    ("sdxl", FusionSwitches(), "content-early-style-late"),
    ("sdxl", FusionSwitches.for_mode("direct"), "constant"),
    ("sdxl", FusionSwitches(routing=False, backbone=False), "guidance-ramp"),
]


@pytest.mark.parametrize("family, switches, curves", ROWS)
def test_matches_slow_reference(kit, family, switches, curves):
    request = _request(kit[family], switches, curves)
    ours = generate(request)
    ref = reference_image(kit[family], request)
    assert np.abs(_pixels(ours.images[0]) - _pixels(ref)).max() <= 2.0 / 255.0
    assert ours.details["mode"] == switches.mode.value


@pytest.mark.parametrize("family, scheduler, strength", [("sd1", "euler", 0.5), ("sd1", "dpmpp_2m_karras", 0.7),
                                                         ("sdxl", "euler_a", 0.6)])
def test_mid_schedule_start_matches_slow_reference(kit, family, scheduler, strength, tmp_path):
    """Image to image: the run starts mid-schedule, and the curves are read at each step's place
    in the full schedule."""
    from PIL import Image

    picture = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(picture)
    request = _request(kit[family], curves="content-early-style-late", scheduler=scheduler, steps=8,
                       init_image=str(picture), strength=strength)
    ours = generate(request)
    ref = reference_image(kit[family], request)
    assert np.abs(_pixels(ours.images[0]) - _pixels(ref)).max() <= 2.0 / 255.0
    assert ours.details["image_to_image"]["steps_run"] == int(8 * strength)


def test_loras_change_the_image_and_record_everything(kit):
    k = kit["sd1"]
    plain = generate(_request(k, content_lora=None, style_lora=None, backbone=None))
    craft = generate(_request(k))
    assert np.abs(_pixels(plain.images[0]) - _pixels(craft.images[0])).max() > 0.02
    d = craft.details
    assert d["mode"] == "craft" and d["gamma"] == {CONTENT: 1.0, STYLE: 0.8}
    paper = load_preset("paper").sample(6, 5.0)
    assert d["gates"][CONTENT] == pytest.approx([0.9 * g for g in paper.content])
    assert d["gates"][STYLE] == pytest.approx([1.1 * 0.8 * g for g in paper.style])
    assert d["guidance"] == pytest.approx(paper.guidance)
    assert d["encoded_prompt"] == "a ginger cat in watercolor style"
    content = d["loras"][CONTENT]
    assert content["layers_used"] + content["layers_dropped"] == len(k["content"])
    assert content["layers_dropped"] > 0  # routing confined it to I_c
    assert d["backbone"]["fingerprint"] == model_fingerprint(k["model"])


def test_all_gates_zero_is_plain_generation(kit):
    k = kit["sd1"]
    plain = generate(_request(k, prompt="a ginger cat in watercolor style", content_lora=None,
                              style_lora=None))
    zero = generate(_request(k, prompt="a ginger cat <c:0> in watercolor style <s:0>"))
    assert np.array_equal(np.asarray(plain.images[0]), np.asarray(zero.images[0]))


@pytest.mark.parametrize("from_picture", [False, True])
def test_unconditional_branch_never_sees_a_lora(kit, monkeypatch, tmp_path, from_picture):
    """Every LoRA layer call touches only the conditional row (also when the run starts from a
    picture); the unconditional row's output is exactly what the LoRA-free UNet gives."""
    from PIL import Image

    from craftstudio.engine import craft_layers

    calls: list[tuple[int, slice | None]] = []
    original = craft_layers._craft_forward

    def spy(self, x, *args, **kwargs):
        calls.append((x.shape[0], self._craft_state.rows))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(craft_layers, "_craft_forward", spy)
    picture = {}
    if from_picture:
        Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")
        picture = {"init_image": str(tmp_path / "red.png"), "strength": 0.75, "steps": 8}
    generate(_request(kit["sd1"], curves="guidance-interval", **picture))
    assert calls
    pairs = [rows for batch, rows in calls if batch == 2]
    singles = [rows for batch, rows in calls if batch == 1]
    assert pairs and all(rows == slice(1, 2) for rows in pairs)  # CFG steps: the cond row only
    assert singles and all(rows == slice(0, 1) for rows in singles)  # s = 1 steps: cond branch only

    model = model_cache.get_model(kit["sd1"]["model"], CPU, torch.float32, kit["sd1"]["backbone"])
    lora = model_cache.get_lora(kit["sd1"]["content_file"], model)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    states = torch.randn(2, 77, 32, generator=gen)
    with torch.no_grad():
        plain = model.unet(x, 500, encoder_hidden_states=states).sample
        state = craft_layers.BranchState(rows=slice(1, 2), gates={CONTENT: 1.0, STYLE: 0.0})
        with craft_layers.installed(model.unet, {CONTENT: lora}, state, None):
            mixed = model.unet(x, 500, encoder_hidden_states=states).sample
    assert torch.allclose(mixed[0], plain[0], atol=1e-6)
    assert (mixed[1] - plain[1]).abs().max() > 1e-3


def test_direct_mode_equals_stock_pipeline_with_set_adapters(kit):
    from diffusers import StableDiffusionPipeline

    k = kit["sd1"]
    request = _request(k, FusionSwitches.for_mode("direct"), curves=None, backbone=None)
    ours = generate(request)
    pipe = StableDiffusionPipeline.from_pretrained(k["model"], local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = make_scheduler("euler", pipe.scheduler.config)
    pipe.load_lora_weights(str(k["content_file"]), adapter_name="content")
    pipe.load_lora_weights(str(k["style_file"]), adapter_name="style")
    # Markers give γ_c = 1, γ_s = 0.8; direct mode still applies w·γ.
    pipe.set_adapters(["content", "style"], adapter_weights=[0.9, 1.1 * 0.8])
    stock = pipe(parse_prompt(PROMPT).text, num_inference_steps=6, guidance_scale=5.0, width=64, height=64,
                 generator=torch.Generator("cpu").manual_seed(3), output_type="np").images[0]
    assert np.abs(_pixels(ours.images[0]) - stock).max() <= 1.5 / 255.0


def test_kohya_and_peft_layouts_give_the_same_image(kit):
    k = kit["sd1"]
    peft = generate(_request(k))
    kohya = generate(_request(k, content_lora=LoraRef(str(k["content_kohya"]), 0.9)))
    assert np.abs(_pixels(peft.images[0]) - _pixels(kohya.images[0])).max() <= 1.0 / 255.0


def test_lora_for_another_family_is_refused(kit):
    request = _request(kit["sd1"], content_lora=LoraRef(str(kit["sdxl"]["content_file"])))
    with pytest.raises(LoraError) as info:
        generate(request)
    assert "content.safetensors" in str(info.value) and "another base model" in str(info.value)


def test_mis_shaped_lora_is_refused(kit, tmp_path):
    k = kit["sd1"]
    bad = {name: (a[:, :-1].contiguous(), b) for name, (a, b) in k["content"].items()}
    path = save_peft(bad, tmp_path / "misshaped.safetensors")
    with pytest.raises(LoraError, match="misshaped.safetensors"):
        generate(_request(k, content_lora=LoraRef(str(path))))


def test_lora_with_missing_tensors_is_refused(kit, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(kit["sd1"]["content_file"]))
    cut = {key: v for key, v in tensors.items() if not key.endswith("lora_B.weight")}
    save_file(cut, str(tmp_path / "cut.safetensors"))
    with pytest.raises(LoraError, match="cut.safetensors"):
        generate(_request(kit["sd1"], content_lora=LoraRef(str(tmp_path / "cut.safetensors"))))


def test_backbone_for_another_model_is_refused(kit):
    request = _request(kit["sd1"], backbone=str(kit["sdxl"]["backbone"]))
    with pytest.raises(LoraError, match="turn the backbone off"):
        generate(request)


def test_malformed_markers_fail_before_loading(kit):
    with pytest.raises(RequestError, match="column"):
        generate(_request(kit["sd1"], prompt="a cat <c> and <x> things", model="/nonexistent"))


def test_backbone_projection_removes_the_subspace(kit):
    k = kit["sd1"]
    model = model_cache.get_model(k["model"], CPU, torch.float32, k["backbone"])
    for name, q in k["bases"].items():
        w = model.unet.get_submodule(name).weight
        assert torch.allclose(w @ q, torch.zeros(()), atol=1e-5)


def test_switch_modes_are_recorded():
    assert FusionSwitches().mode.value == "craft"
    assert FusionSwitches.for_mode("direct").mode.value == "direct"
    assert dataclasses.replace(FusionSwitches(), gates=False).mode.value == "custom"
