"""Train the shipped demo backbone and LoRAs with the project's own training code.

`python -m craftstudio.demo.asset_training [--out resources/demo] [--steps N] [--device cpu]`
renders reference pictures of a held-out shape (content) and a held-out style (style), trains a
Rank-FT backbone on them, then a content LoRA and a style LoRA on W_init. The content references
show the shape in several training styles and the style references show the style on several
training shapes, so each LoRA can only bind its own concept to its trigger word.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from craftstudio.demo.assets import demo_model_dir
from craftstudio.demo.world import SPLIT, render
from craftstudio.domain.resources import demo_dir

CONTENT_SHAPE, STYLE_NAME = "heart", "neon"
CONTENT_TRIGGER, STYLE_TRIGGER = "sks", "ohwx"
DEMO_PROMPT = f"a {CONTENT_TRIGGER} <c> in {STYLE_TRIGGER} style <s>"


def write_references(folder: Path, count: int, seed: int) -> tuple[Path, Path]:
    content, style = folder / "content", folder / "style"
    content.mkdir(parents=True, exist_ok=True)
    style.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        render(CONTENT_SHAPE, SPLIT.train_styles[i % len(SPLIT.train_styles)], seed + i).save(
            content / f"{CONTENT_SHAPE}-{i}.png")
        render(SPLIT.train_shapes[i % len(SPLIT.train_shapes)], STYLE_NAME, seed + 100 + i).save(
            style / f"{STYLE_NAME}-{i}.png")
    return content, style


def _run(argv: list[str]) -> None:
    """Run one `craftstudio train ...` command through the training CLI's own parser."""
    from craftstudio import train_cli

    print("+ craftstudio " + " ".join(argv), flush=True)
    parser = argparse.ArgumentParser(prog="craftstudio")
    train_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.func(args) != 0:
        raise SystemExit(f"step failed: {' '.join(argv)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m craftstudio.demo.asset_training")
    parser.add_argument("--out", type=Path, default=demo_dir())
    parser.add_argument("--work", type=Path, default=Path("demo-asset-work"))
    parser.add_argument("--refs", type=int, default=8)
    parser.add_argument("--backbone-steps", type=int, default=400)
    parser.add_argument("--lora-steps", type=int, default=600)
    parser.add_argument("--lora-lr", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--r-max", type=int, default=16)
    parser.add_argument("--r-min", type=int, default=4)
    parser.add_argument("--no-backbone", action="store_true", help="train the LoRAs on the plain base model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = demo_model_dir()
    if model is None:
        print("The demo model is not installed (resources/models/shapesworld).", file=sys.stderr)
        return 2
    started = time.perf_counter()
    content, style = write_references(args.work, args.refs, args.seed)
    backbone = args.out / "backbone.safetensors"
    common = ["--model", str(model), "--resolution", "64", "--device", args.device, "--seed", str(args.seed),
              "--overwrite"]
    if not args.no_backbone:
        _run(["train", "backbone", *common, "--content-dir", str(content), "--style-dir", str(style),
              "--out", str(backbone), "--r-max", str(args.r_max), "--r-min", str(args.r_min),
              "--steps", str(args.backbone_steps)])
    on_backbone = [] if args.no_backbone else ["--backbone", str(backbone)]
    for role, images, trigger, caption in (
        ("content", content, CONTENT_TRIGGER, "a {trigger}"),
        ("style", style, STYLE_TRIGGER, "a picture in {trigger} style"),
    ):
        _run(["train", "lora", *common, "--role", role, *on_backbone, "--images", str(images),
              "--trigger", trigger, "--caption", caption, "--rank", str(args.rank), "--steps", str(args.lora_steps),
              "--lr", str(args.lora_lr),
              "--batch", "4", "--title", f"ShapesWorld {role}: {CONTENT_SHAPE if role == 'content' else STYLE_NAME}",
              "--out", str(args.out / f"{role}-lora.safetensors")])
    (args.out / "demo-assets.json").write_text(json.dumps({
        "prompt": DEMO_PROMPT, "content": {"shape": CONTENT_SHAPE, "trigger": CONTENT_TRIGGER},
        "style": {"style": STYLE_NAME, "trigger": STYLE_TRIGGER}, "refs": args.refs,
        "backbone": None if args.no_backbone else {"steps": args.backbone_steps, "r_max": args.r_max,
                                                   "r_min": args.r_min},
        "lora": {"steps": args.lora_steps, "lr": args.lora_lr, "rank": args.rank}, "device": args.device,
        "seconds": round(time.perf_counter() - started, 1)}, indent=1))
    print(f"demo assets written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
