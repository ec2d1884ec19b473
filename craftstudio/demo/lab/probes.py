"""`python -m craftstudio.demo probe`: experiments on the shipped demo pair (issue: make CRAFT win
across pairs), each testing one hypothesis about why the style LoRA and the content LoRA fight.

- `style-alone` (*the style LoRA owns geometry*): the mosaic LoRA without the content LoRA, with
  the content trigger in the shape slot (`a sks in ohwx style <s:γ>`) and, as the control, with a
  training shape named (`a circle in ohwx style <s:γ>`). Reported per γ: how often the picture
  shows a heart, one of the style references' shapes (all 12 training shapes), the named shape
  (control), and mosaic.
- `style-subsets`: both LoRAs with the style LoRA applied on parts of I_s only (routing
  overrides at inference; the LoRA was trained on all of I_s): heart, mosaic, both.
- `uncond-ratio` (*a narrow style-weight window*): how much of each LoRA's change reaches the
  unconditional prediction: ‖ε_u^L − ε_u‖ / ‖ε_c^L − ε_c‖ with the LoRA at weight 1 on both
  branches, averaged over noise seeds and timesteps. A LoRA whose change is mostly
  prompt-independent (ratio near 1) is the one that asymmetric CFG amplifies by the guidance
  scale s, since it then sits in ε_c only. Also the cosine between the two changes δ_u and δ_c.

All use the demo's model, backbone, LoRAs, CFG and curves, 20 steps, seeds 0 … N−1, and the
oracle. Results are printed as tables and written as JSON with `--json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXPERIMENTS = ("style-alone", "style-subsets", "uncond-ratio")
# The style LoRA's decoder blocks on the demo's SD1.x-shaped UNet (routing.LAYER_MAPS["sd"]) and
# the parts an override keeps: None = all of I_s.
SUBSETS: dict[str, dict[str, str] | None] = {
    "all of I_s": None,
    "up_blocks.2 + up_blocks.3": {"up_blocks.1.attentions.1": "none", "up_blocks.1.attentions.2": "none"},
    "up_blocks.3 only": {"up_blocks.1.attentions.1": "none", "up_blocks.1.attentions.2": "none",
                         "up_blocks.2": "none"},
    "up_blocks.1 attentions 1–2 only": {"up_blocks.2": "none", "up_blocks.3": "none"},
}
CONTROL_SHAPES = ("circle", "square", "triangle", "star")


def _demo(loras: dict[str, str] | None = None) -> dict[str, Any]:
    """The demo's files and settings; `loras` (role → file) replaces its content and/or style LoRA
    (`probe --content-lora / --style-lora`)."""
    from craftstudio.demo import assets

    loras = loras or {}
    return {"model": str(assets.demo_model_dir()), "backbone": str(assets.demo_backbone() or "") or None,
            "content": loras.get("content") or str(assets.demo_lora("content")),
            "style": loras.get("style") or str(assets.demo_lora("style")),
            "cfg": assets.demo_cfg_scale() or 5.0, "curves": assets.demo_curves() or "paper",
            "oracle": assets.demo_oracle()}


def _generate(demo: dict[str, Any], prompt: str, images: int, device: str, *, content: bool = True,
              style: bool = True, overrides: dict[str, str] | None = None):
    from craftstudio.domain.curves import load_preset
    from craftstudio.domain.generation import GenerateRequest, LoraRef
    from craftstudio.engine.generation import generate

    request = GenerateRequest(
        model=demo["model"], prompt=prompt, width=64, height=64, steps=20, cfg_scale=demo["cfg"], seed=0,
        batch_count=images, device=device, backbone=demo["backbone"],
        content_lora=LoraRef(demo["content"]) if content else None,
        style_lora=LoraRef(demo["style"]) if style else None,
        curves=load_preset(demo["curves"]).to_dict(), routing_overrides=overrides)
    return generate(request).images


def _rates(predicted: Sequence[tuple[str, str]], counts: dict[str, Callable[[str, str], bool]]) -> dict[str, float]:
    return {name: sum(test(shape, style) for shape, style in predicted) / len(predicted)
            for name, test in counts.items()}


def style_alone(images: int, device: str, gammas: Sequence[float],
                loras: dict[str, str] | None = None) -> list[dict[str, Any]]:
    from craftstudio.demo.oracle import Oracle
    from craftstudio.demo.world import SPLIT

    demo = _demo(loras)
    oracle = Oracle.load(demo["oracle"])
    train_shapes = set(SPLIT.train_shapes)
    rows = []
    for gamma in gammas:
        predicted = oracle.predict(_generate(demo, f"a sks in ohwx style <s:{gamma:g}>", images, device,
                                             content=False))
        rows.append({"prompt": f"a sks in ohwx style <s:{gamma:g}>", "gamma": gamma, **_rates(predicted, {
            "heart": lambda c, s: c == "heart", "a training shape": lambda c, s: c in train_shapes,
            "mosaic": lambda c, s: s == "mosaic"})})
        per_shape = max(1, images // len(CONTROL_SHAPES))
        control = []
        for shape in CONTROL_SHAPES:
            found = oracle.predict(_generate(demo, f"a {shape} in ohwx style <s:{gamma:g}>", per_shape, device,
                                             content=False))
            control += [(c == shape, s == "mosaic") for c, s in found]
        rows.append({"prompt": f"a {{training shape}} in ohwx style <s:{gamma:g}>", "gamma": gamma,
                     "named shape": sum(a for a, _ in control) / len(control),
                     "mosaic": sum(b for _, b in control) / len(control),
                     "both": sum(a and b for a, b in control) / len(control)})
    return rows


def style_subsets(images: int, device: str, gammas: Sequence[float],
                  loras: dict[str, str] | None = None) -> list[dict[str, Any]]:
    from craftstudio.demo.oracle import Oracle

    demo = _demo(loras)
    oracle = Oracle.load(demo["oracle"])
    rows = []
    for gamma in gammas:
        for name, overrides in SUBSETS.items():
            prompt = f"a sks <c> in ohwx style <s:{gamma:g}>"
            predicted = oracle.predict(_generate(demo, prompt, images, device, overrides=overrides))
            rows.append({"style LoRA on": name, "gamma": gamma, **_rates(predicted, {
                "heart": lambda c, s: c == "heart", "mosaic": lambda c, s: s == "mosaic",
                "both": lambda c, s: c == "heart" and s == "mosaic"})})
    return rows


TIMESTEPS = (100, 300, 500, 700, 900)


def change_share(model: str, backbone: str | None, lora: str, prompt: str, device: str, seeds: int = 4,
                 timesteps: Sequence[int] = TIMESTEPS, role: str = "style") -> dict[str, Any]:
    """How much of a LoRA's change to ε reaches the unconditional prediction: per timestep the
    mean over noise seeds of ρ = ‖δ_u‖ / ‖δ_c‖, and cos(δ_u, δ_c), where δ_b = ε_b^L − ε_b is the
    LoRA's change (weight 1) with the empty prompt (b = u) and with `prompt` (b = c)."""
    import torch

    from craftstudio.engine.craft_layers import BranchState, installed
    from craftstudio.engine.devices import pick_device
    from craftstudio.engine.model_cache import get_lora, get_model
    from craftstudio.engine.training.denoising import encode_caption

    where = pick_device(device)
    loaded = get_model(model, where, torch.float32, backbone)
    unet = loaded.unet
    weights = get_lora(lora, loaded)
    cond = encode_caption(loaded, prompt, 64).states
    uncond = encode_caption(loaded, "", 64).states
    side = unet.config.sample_size
    state = BranchState()
    by_t: dict[int, float] = {}
    cosines = []
    for t in timesteps:
        ratios = []
        for seed in range(seeds):
            gen = torch.Generator("cpu").manual_seed(seed)
            x = torch.randn(1, unet.config.in_channels, side, side, generator=gen).to(where)
            step = torch.tensor([t], device=where)

            def eps(states, x=x, step=step):
                with torch.no_grad():
                    return unet(x, step, encoder_hidden_states=states).sample

            base_c, base_u = eps(cond), eps(uncond)
            with installed(unet, {role: weights}, state, None):
                state.update(slice(None), {role: 1.0})
                lora_c, lora_u = eps(cond), eps(uncond)
            d_u, d_c = (lora_u - base_u).flatten(), (lora_c - base_c).flatten()
            ratios.append((d_u.norm() / d_c.norm().clamp_min(1e-12)).item())
            cosines.append(torch.nn.functional.cosine_similarity(d_u, d_c, dim=0).item())
        by_t[t] = sum(ratios) / len(ratios)
    return {"per_t": by_t, "ratio": sum(by_t.values()) / len(by_t), "cos": sum(cosines) / len(cosines)}


def auto_style_weight(ratio: float, cos: float, guidance: float) -> float:
    """The weight γ* at which a LoRA in the conditional branch only (asymmetric CFG, Eq. 11) acts
    as strongly along its change as it does in both branches under standard CFG: with
    δ_u ≈ ρ·cos·δ_c, standard CFG gives (ρ·cos + s·(1 − ρ·cos))·δ_c and asymmetric CFG s·γ·δ_c,
    so γ* = 1 − ρ·cos·(s − 1)/s, kept within [1/s, 1]."""
    s = max(guidance, 1.0)
    return min(1.0, max(1.0 / s, 1.0 - ratio * cos * (s - 1.0) / s))


def uncond_ratio(device: str, seeds: int = 4, timesteps: Sequence[int] = TIMESTEPS,
                 loras: dict[str, str] | None = None) -> list[dict]:
    """Per LoRA of the demo pair: the unconditional share of its change, and γ* at the demo's CFG."""
    demo = _demo(loras)
    rows = []
    for role in ("content", "style"):
        share = change_share(demo["model"], demo["backbone"], demo[role], "a sks in ohwx style", device, seeds,
                             timesteps, role)
        rows.append({"LoRA": role, **{f"t={t}": round(v, 3) for t, v in share["per_t"].items()},
                     "mean": round(share["ratio"], 3), "cos(δ_u, δ_c)": round(share["cos"], 3),
                     "γ*": round(auto_style_weight(share["ratio"], share["cos"], demo["cfg"]), 3)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    for row in rows:
        cells = [(f"{row[k]:.2f}" if isinstance(row.get(k), float) else str(row.get(k, ""))) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(experiments: Sequence[str], images: int, device: str, gammas: Sequence[float],
        json_path: Path | None = None, say: Callable[[str], None] = print,
        loras: dict[str, str] | None = None) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    for name in experiments:
        started = time.perf_counter()
        if name == "style-alone":
            results[name] = style_alone(images, device, gammas, loras)
        elif name == "style-subsets":
            results[name] = style_subsets(images, device, gammas, loras)
        else:
            results[name] = uncond_ratio(device, loras=loras)
        say(f"{name} ({images} images per row, {time.perf_counter() - started:.0f} s)")
        say(table(results[name]))
        say("")
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=1))
    return results
