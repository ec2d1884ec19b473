"""Image to image on ShapesWorld: restyle a rendered picture with the demo style LoRA and let the
oracle judge every result (style reached, shape kept).

    python -m craftstudio.demo restyle --shape star --style stripes --seeds 16 --strengths 0.5,0.75

For each strength and seed: the world's picture of `shape` in `style` (seed s) is the init
image, the prompt names the shape with the style LoRA's trigger and the style marker, and the
engine redraws it. Reported per strength: the fraction the oracle calls the LoRA's style, the
fraction still called `shape`, both, and the seconds per image (the first, model-loading run
excluded).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RestyleRow:
    strength: float
    gamma: float
    style_rate: float
    shape_rate: float
    both_rate: float
    seconds_per_image: float


def run(shape: str, style: str, seeds: list[int], strengths: list[float], gammas: list[float], steps: int,
        device: str, sheet: Path | None = None) -> list[RestyleRow]:
    from craftstudio.demo import assets
    from craftstudio.demo.oracle import Oracle
    from craftstudio.demo.world import render
    from craftstudio.domain.curves import load_preset
    from craftstudio.domain.generation import GenerateRequest, LoraRef
    from craftstudio.engine.generation import generate

    model, lora, backbone = assets.demo_model_dir(), assets.demo_lora("style"), assets.demo_backbone()
    settings = json.loads((Path(lora).parent / "demo-assets.json").read_text())["style"]
    target, trigger = settings["style"], settings["trigger"]
    oracle = Oracle.load(assets.demo_oracle())
    rows, images = [], []
    with tempfile.TemporaryDirectory(prefix="restyle-") as tmp:
        pictures = []
        for seed in seeds:
            path = Path(tmp) / f"{shape}-{style}-{seed}.png"
            render(shape, style, seed).save(path)
            pictures.append(path)
        for gamma in gammas:
            for strength in strengths:
                outputs, seconds = [], 0.0
                for index, (seed, path) in enumerate(zip(seeds, pictures, strict=True)):
                    request = GenerateRequest(
                        model=str(model), prompt=f"a {shape} in {trigger} style <s:{gamma:g}>", width=64, height=64,
                        steps=steps, cfg_scale=assets.demo_cfg_scale() or 5.0, seed=seed, device=device,
                        style_lora=LoraRef(str(lora)), backbone=str(backbone) if backbone else None,
                        curves=load_preset(assets.demo_curves() or "paper").to_dict(),
                        init_image=str(path), strength=strength)
                    started = time.perf_counter()
                    outputs.append(generate(request).images[0])
                    if index or rows:  # the very first call loads the model
                        seconds += time.perf_counter() - started
                predicted = oracle.predict(outputs)
                timed = len(seeds) - (0 if rows else 1)
                rows.append(RestyleRow(
                    strength, gamma,
                    sum(s == target for _, s in predicted) / len(seeds),
                    sum(c == shape for c, _ in predicted) / len(seeds),
                    sum(c == shape and s == target for c, s in predicted) / len(seeds),
                    seconds / max(1, timed)))
                images.append([render(shape, style, seeds[0]), *outputs[:7]])
    if sheet is not None:
        _sheet(images, sheet)
    return rows


def _sheet(rows: list[list], path: Path) -> None:
    from PIL import Image

    tile = 64
    sheet = Image.new("RGB", (tile * len(rows[0]), tile * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            sheet.paste(image.resize((tile, tile)), (x * tile, y * tile))
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST).save(path)


def table(rows: list[RestyleRow], shape: str, style: str, target: str) -> str:
    lines = [f"restyle {shape} in {style} → {target}: oracle rates over the seeds",
             "| γ_s | strength | style reached | shape kept | both | s/image |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.gamma:g} | {r.strength:g} | {r.style_rate:.2f} | {r.shape_rate:.2f} | {r.both_rate:.2f} "
                     f"| {r.seconds_per_image:.2f} |")
    return "\n".join(lines)
