"""CRAFT against its peers on the shipped demo pair (a heart, `sks`, in mosaic, `ohwx`):

    python -m craftstudio.demo peers --seeds 16

Every method draws the same seeds and the oracle judges each picture (heart? mosaic? both?):
- `craft`: the demo's own settings (its prompt with `<s:0.25>`, CFG 5, `guidance-interval`
  curves, the backbone);
- `direct`, `k-lora`, `switch`, `composite`: the two LoRAs on W0 with standard CFG, the prompt
  `a sks in ohwx style` (no markers: both LoRAs at weight 1), CFG 5;
- `ziplora`: the two LoRAs merged by ZipLoRA (100 steps) on the pictures they were trained on
  (hearts in the training styles; mosaic on training shapes), then used alone like a direct LoRA.
This is one pair on the CPU-sized demo, not the benchmark's Table 1 over every held-out pair.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PeerRow:
    method: str
    content_acc: float
    style_acc: float
    both_acc: float
    seconds_per_image: float


def _references(folder: Path, count: int, seed: int) -> tuple[Path, Path]:
    """The demo LoRAs' kind of training pictures (see asset_training.write_references)."""
    from craftstudio.demo.world import SPLIT, render

    content, style = folder / "content", folder / "style"
    content.mkdir(parents=True)
    style.mkdir(parents=True)
    for i in range(count):
        render("heart", SPLIT.train_styles[i % len(SPLIT.train_styles)], seed + i).save(content / f"heart-{i}.png")
        render(SPLIT.train_shapes[i % len(SPLIT.train_shapes)], "mosaic", seed + 100 + i).save(style / f"m-{i}.png")
    return content, style


def run(seeds: int, ziplora_steps: int, device: str, workdir: Path | None = None) -> tuple[list[PeerRow], float]:
    """One row per method, and the seconds the ZipLoRA merge took."""
    from craftstudio.demo import assets
    from craftstudio.demo.oracle import Oracle
    from craftstudio.domain.curves import load_preset
    from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
    from craftstudio.domain.merging import ZipLoraRequest
    from craftstudio.engine.generation import generate
    from craftstudio.engine.training.ziplora import merge_ziplora

    model, backbone = str(assets.demo_model_dir()), assets.demo_backbone()
    content, style = LoraRef(str(assets.demo_lora("content"))), LoraRef(str(assets.demo_lora("style")))
    oracle = Oracle.load(assets.demo_oracle())
    base = dict(model=model, width=64, height=64, steps=20, cfg_scale=assets.demo_cfg_scale() or 5.0, seed=0,
                batch_count=seeds, device=device)
    plain = "a sks in ohwx style"
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        folder = workdir or Path(tmp)
        content_refs, style_refs = _references(folder / "refs", 12, 0)
        merged = folder / "demo-ziplora.safetensors"
        started = time.perf_counter()
        merge_ziplora(ZipLoraRequest(model=model, content_lora=content.path, style_lora=style.path,
                                     content_prompt="a sks", style_prompt="a picture in ohwx style", out=str(merged),
                                     content_images=(str(content_refs),), style_images=(str(style_refs),),
                                     steps=ziplora_steps, resolution=64, device=device, overwrite=True))
        merge_seconds = time.perf_counter() - started
        requests = {
            "craft": GenerateRequest(prompt=assets.demo_prompt(), content_lora=content, style_lora=style,
                                     backbone=str(backbone) if backbone else None,
                                     curves=load_preset(assets.demo_curves() or "paper").to_dict(), **base),
            "direct": GenerateRequest(prompt=plain, content_lora=content, style_lora=style,
                                      switches=FusionSwitches.for_mode("direct"), **base),
            **{mode: GenerateRequest(prompt=plain, content_lora=content, style_lora=style, peer_mode=mode, **base)
               for mode in ("k-lora", "switch", "composite")},
            "ziplora": GenerateRequest(prompt=plain, content_lora=LoraRef(str(merged)),
                                       switches=FusionSwitches.for_mode("direct"), **base),
        }
        generate(requests["direct"])  # warm-up: loads the model
        rows = []
        for method, request in requests.items():
            started = time.perf_counter()
            images = generate(request).images
            seconds = (time.perf_counter() - started) / len(images)
            predicted = oracle.predict(images)
            rows.append(PeerRow(method, sum(c == "heart" for c, _ in predicted) / len(images),
                                sum(s == "mosaic" for _, s in predicted) / len(images),
                                sum(c == "heart" and s == "mosaic" for c, s in predicted) / len(images), seconds))
    return rows, merge_seconds


def table(rows: list[PeerRow], seeds: int, merge_seconds: float) -> str:
    lines = [f"the demo pair (heart × mosaic), seeds 0–{seeds - 1}: oracle accuracy",
             "| method | heart | mosaic | both | s/image |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.method} | {r.content_acc:.2f} | {r.style_acc:.2f} | {r.both_acc:.2f} | {r.seconds_per_image:.2f} |"
              for r in rows]
    lines.append(f"(the ZipLoRA merge took {merge_seconds:.1f} s)")
    return "\n".join(lines)


def write_json(rows: list[PeerRow], merge_seconds: float, path: Path) -> None:
    path.write_text(json.dumps({"rows": [r.__dict__ for r in rows], "ziplora_merge_seconds": merge_seconds},
                               indent=1))
