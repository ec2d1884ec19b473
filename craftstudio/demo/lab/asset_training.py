"""Train the shipped demo backbone and LoRAs with the project's own training code.

`python -m craftstudio.demo.lab.asset_training [--out resources/demo] [--style mosaic] [--device cpu]`
renders reference pictures of a held-out shape (content) and a held-out style (style), trains a
Rank-FT backbone on them (unless `--no-backbone`) with the preservation term on pictures of the
base model's own classes (`--keep`, `--keep-weight`), then a content LoRA and a style LoRA on W_init.
The content references show the shape in several training styles and the style references show
the style on several training shapes. Each style reference has a caption file naming its shape
(`a star in ohwx style`), so the style LoRA is not asked to invent the shape: the trigger binds
only the look.

The demo prompt weights the style marker (`<s:γ_s>`): asymmetric CFG multiplies the conditional
branch's LoRA delta by the guidance scale, so at CFG 5 a full-weight style LoRA overdrives the
picture (see README, ShapesWorld). The prompt is tuned to a guidance scale and a curve preset,
both recorded in demo-assets.json and used with the demo prompt by the CLI and the GUI.
`--measure-only` re-measures the shipped LoRAs with another style weight or preset, no training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from craftstudio.demo.assets import demo_model_dir
from craftstudio.demo.world import KEEP_PICTURES, SPLIT, caption, marked_prompt, render, write_base_pictures
from craftstudio.domain.curves import list_presets
from craftstudio.domain.resources import demo_dir
from craftstudio.domain.training import BASIS_INITS, MINOR_INIT, BackboneTrainRequest

CONTENT_SHAPE = "heart"
CONTENT_TRIGGER, STYLE_TRIGGER = "sks", "ohwx"
DEMO_CFG = 5.0  # the demo prompt's style weight is tuned to this guidance scale (about 1/CFG)
# Guidance only between 20 % and 80 % of the steps: the LoRAs' change is not multiplied by the
# guidance scale while the outline forms (the noisiest steps), so the style weight can be higher.
DEMO_CURVES = "guidance-interval"
DEMO_STYLE_GAMMA = 0.25


def demo_prompt(style_gamma: float) -> str:
    return marked_prompt(CONTENT_TRIGGER, STYLE_TRIGGER, None if style_gamma == 1 else style_gamma)


def write_references(folder: Path, count: int, seed: int, style_name: str) -> tuple[Path, Path]:
    """`count` content and style pictures; every style picture gets a caption file naming its shape."""
    content, style = folder / "content", folder / "style"
    for sub in (content, style):
        sub.mkdir(parents=True, exist_ok=True)
        for old in sub.iterdir():
            old.unlink()
    for i in range(count):
        render(CONTENT_SHAPE, SPLIT.train_styles[i % len(SPLIT.train_styles)], seed + i).save(
            content / f"{CONTENT_SHAPE}-{i}.png")
        shape = SPLIT.train_shapes[i % len(SPLIT.train_shapes)]
        render(shape, style_name, seed + 100 + i).save(style / f"{style_name}-{i}.png")
        (style / f"{style_name}-{i}.txt").write_text(caption(shape, "{trigger}") + "\n", encoding="utf-8")
    return content, style


def measure(model: Path, folder: Path, backbone: Path | None, style_name: str, style_gamma: float, images: int,
            device: str, curves: str = DEMO_CURVES) -> dict[str, dict[str, float]]:
    """The oracle's verdict on the shipped LoRAs together: CRAFT with the demo prompt, CRAFT at full
    style weight, and the direct merge (20 steps, CFG 5, the `curves` preset for CRAFT)."""
    from craftstudio.demo.oracle import Oracle
    from craftstudio.domain.curves import load_preset
    from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
    from craftstudio.engine.generation import generate

    oracle = Oracle.load(None)
    settings = {
        f"craft, {demo_prompt(style_gamma)}": (demo_prompt(style_gamma), FusionSwitches(), True),
        f"craft, {demo_prompt(1)}": (demo_prompt(1), FusionSwitches(), True),
        "direct merge": (demo_prompt(1), FusionSwitches.for_mode("direct"), False),
    }
    out = {}
    for name, (prompt, switches, craft) in settings.items():
        pictures = generate(GenerateRequest(
            model=str(model), prompt=prompt, width=64, height=64, steps=20, cfg_scale=DEMO_CFG, seed=7,
            scheduler="dpmpp_2m_karras", batch_count=images, device=device,
            content_lora=LoraRef(str(folder / "content-lora.safetensors")),
            style_lora=LoraRef(str(folder / "style-lora.safetensors")),
            backbone=str(backbone) if backbone else None, switches=switches,
            curves=load_preset(curves).to_dict() if craft else None)).images
        scores = oracle.scores(pictures, CONTENT_SHAPE, style_name)
        out[name] = {key: round(scores[f"{key}_acc"], 3) for key in ("content", "style", "both")}
        print(f"{name}: {out[name]}", flush=True)
    return out


def _run(argv: list[str]) -> None:
    """Run one `craftstudio train ...` command through the training CLI's own parser."""
    from craftstudio.cli import train as train_cli

    print("+ craftstudio " + " ".join(argv), flush=True)
    parser = argparse.ArgumentParser(prog="craftstudio")
    train_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.func(args) != 0:
        raise SystemExit(f"step failed: {' '.join(argv)}")


def _write_record(path: Path, record: dict) -> None:
    """demo-assets.json through a temporary file, so a failed write keeps the old record."""
    from craftstudio.engine.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def _measure_only(model: Path, args: argparse.Namespace) -> int:
    """Re-measure the LoRAs already in `args.out` with this prompt weight and these curves, and
    record them (prompt, curves, numbers) in its demo-assets.json; the training record stays."""
    path = args.out / "demo-assets.json"
    try:
        record = json.loads(path.read_text())
        style_name = record["style"]["style"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{path} is missing or unreadable ({exc}): train the demo assets first.", file=sys.stderr)
        return 2
    backbone = args.out / "backbone.safetensors" if record.get("backbone") else None
    if backbone is not None and not backbone.is_file():
        print(f"{backbone} is missing although {path} records a backbone: train the demo assets again.",
              file=sys.stderr)
        return 2
    record.update(prompt=demo_prompt(args.style_gamma), cfg_scale=DEMO_CFG, curves=args.curves,
                  measured_on=args.device,
                  measured=measure(model, args.out, backbone, style_name, args.style_gamma, args.check_images,
                                   args.device, args.curves))
    _write_record(path, record)
    print(f"measured and recorded in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m craftstudio.demo.lab.asset_training")
    parser.add_argument("--out", type=Path, default=demo_dir())
    parser.add_argument("--work", type=Path, default=Path("demo-asset-work"))
    parser.add_argument("--style", default="mosaic", choices=SPLIT.heldout_styles, help="the held-out style to learn")
    parser.add_argument("--style-gamma", type=float, default=DEMO_STYLE_GAMMA,
                        help="style weight in the demo prompt (<s:G>); about 1/CFG under asymmetric CFG")
    parser.add_argument("--curves", default=DEMO_CURVES, choices=list_presets(),
                        help="curve preset the demo prompt is measured with and shipped for")
    parser.add_argument("--measure-only", action="store_true",
                        help="train nothing: measure the LoRAs in --out with this prompt and these curves and "
                             "record them in its demo-assets.json")
    parser.add_argument("--refs", type=int, default=12)
    parser.add_argument("--backbone-steps", type=int, default=400)
    parser.add_argument("--lora-steps", type=int, default=1500)
    parser.add_argument("--lora-lr", type=float, default=2e-3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--check-images", type=int, default=16, help="generated per setting to measure the result")
    parser.add_argument("--r-max", type=int, default=16)
    parser.add_argument("--r-min", type=int, default=4)
    parser.add_argument("--backbone-init", choices=BASIS_INITS, default=MINOR_INIT)
    parser.add_argument("--keep", type=int, default=KEEP_PICTURES,
                        help="preservation pictures of the base model's own classes for the backbone (0 = none)")
    parser.add_argument("--keep-weight", type=float, default=BackboneTrainRequest.keep_weight,
                        help="weight κ of the preservation term")
    parser.add_argument("--no-backbone", action="store_true", help="train the LoRAs on the plain base model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = demo_model_dir()
    if model is None:
        print("The demo model is not installed (resources/models/shapesworld).", file=sys.stderr)
        return 2
    if args.measure_only:
        return _measure_only(model, args)
    started = time.perf_counter()
    content, style = write_references(args.work, args.refs, args.seed, args.style)
    backbone = args.out / "backbone.safetensors"
    common = ["--model", str(model), "--resolution", "64", "--device", args.device, "--seed", str(args.seed),
              "--overwrite"]
    keep = []
    if args.keep and not args.no_backbone:
        keep = ["--keep-dir", str(write_base_pictures(args.work / "keep", args.keep, args.seed)),
                "--keep-weight", str(args.keep_weight)]
    if not args.no_backbone:
        _run(["train", "backbone", *common, "--content-dir", str(content), "--style-dir", str(style),
              "--out", str(backbone), "--r-max", str(args.r_max), "--r-min", str(args.r_min),
              "--init", args.backbone_init, *keep, "--steps", str(args.backbone_steps)])
    on_backbone = [] if args.no_backbone else ["--backbone", str(backbone)]
    for role, images, trigger, template in (
        ("content", content, CONTENT_TRIGGER, "a {trigger}"),
        ("style", style, STYLE_TRIGGER, "a picture in {trigger} style"),  # caption files name the shape
    ):
        _run(["train", "lora", *common, "--role", role, *on_backbone, "--images", str(images),
              "--trigger", trigger, "--caption", template, "--rank", str(args.rank), "--steps", str(args.lora_steps),
              "--lr", str(args.lora_lr),
              "--batch", "4", "--title", f"ShapesWorld {role}: {CONTENT_SHAPE if role == 'content' else args.style}",
              "--out", str(args.out / f"{role}-lora.safetensors")])
    _write_record(args.out / "demo-assets.json", {
        "prompt": demo_prompt(args.style_gamma), "cfg_scale": DEMO_CFG, "curves": args.curves,
        "content": {"shape": CONTENT_SHAPE, "trigger": CONTENT_TRIGGER},
        "style": {"style": args.style, "trigger": STYLE_TRIGGER, "captions": "a {shape} in {trigger} style"},
        "refs": args.refs,
        "backbone": None if args.no_backbone else {"steps": args.backbone_steps, "r_max": args.r_max,
                                                   "r_min": args.r_min, "init": args.backbone_init,
                                                   "keep": args.keep, "keep_weight": args.keep_weight},
        "lora": {"steps": args.lora_steps, "lr": args.lora_lr, "rank": args.rank}, "device": args.device,
        "seconds": round(time.perf_counter() - started, 1),
        "measured_on": args.device,
        "measured": measure(model, args.out, None if args.no_backbone else backbone, args.style, args.style_gamma,
                            args.check_images, args.device, args.curves)})
    print(f"demo assets written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
