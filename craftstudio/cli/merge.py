"""`craftstudio merge ziplora`: merge a content LoRA and a style LoRA into one LoRA file (ZipLoRA).

Progress and Ctrl-C work as for training (a cancel writes nothing; a merge is short, so it keeps
no checkpoints). torch loads only when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.generation import DEVICES
from craftstudio.domain.merging import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_SAMPLES,
    DEFAULT_SIMILARITY_WEIGHT,
    DEFAULT_STEPS,
    ZipLoraRequest,
)

EXIT_CANCELLED = 130


def add_commands(sub) -> None:
    merge = sub.add_parser("merge", help="merge LoRAs into one file")
    merge_sub = merge.add_subparsers(dest="merge", metavar="METHOD", required=True)
    p = merge_sub.add_parser("ziplora", help="ZipLoRA: learn per-column merge coefficients for a content and a "
                                             "style LoRA and write the merged LoRA")
    p.add_argument("--model", required=True, help="the base model both LoRAs were trained for")
    p.add_argument("--content-lora", required=True, type=Path)
    p.add_argument("--style-lora", required=True, type=Path)
    p.add_argument("--content-prompt", required=True, help="the content LoRA's training prompt, e.g. 'a sks dog'")
    p.add_argument("--style-prompt", required=True, help="the style LoRA's training prompt, e.g. 'a cat in ohwx style'")
    p.add_argument("--content-images", nargs="*", default=[], metavar="PATH",
                   help="the content LoRA's reference pictures (files or folders; default: pictures it draws)")
    p.add_argument("--style-images", nargs="*", default=[], metavar="PATH",
                   help="the style LoRA's reference pictures (default: pictures it draws)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATE, help="Adam learning rate of the coefficients")
    p.add_argument("--similarity-weight", type=float, default=DEFAULT_SIMILARITY_WEIGHT,
                   help="λ of the penalty on the two LoRAs' coefficient similarity")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help="pictures each LoRA draws when it has no references")
    p.add_argument("--resolution", type=int, default=0, help="0 = the model's native size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, type=Path, help="the merged LoRA (.safetensors)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_run_ziplora)


def _run_ziplora(args) -> int:
    from craftstudio.cli.train import TrainProgress, _CtrlC
    from craftstudio.engine.training.ziplora import merge_ziplora

    request = ZipLoraRequest(
        model=str(args.model), content_lora=str(args.content_lora), style_lora=str(args.style_lora),
        content_prompt=args.content_prompt, style_prompt=args.style_prompt, out=str(args.out),
        content_images=tuple(args.content_images), style_images=tuple(args.style_images), steps=args.steps,
        learning_rate=args.lr, similarity_weight=args.similarity_weight, samples=args.samples,
        resolution=args.resolution, seed=args.seed, device=args.device, overwrite=args.overwrite)
    request.validate()
    bar = TrainProgress(args.out)
    token = CancelToken()
    try:
        with _CtrlC(token):
            result = merge_ziplora(request, progress=bar, cancel=token)
    except Cancelled:
        bar.close()
        print("craftstudio: merge cancelled; no file was written.", file=sys.stderr)
        return EXIT_CANCELLED
    bar.close()
    last = result.losses[-1] if result.losses else {}
    print(f"{result.out}: {result.layers} layers merged in {result.seconds:.1f} s on {result.device}; "
          f"coefficient similarity {result.similarity:.3f}, last loss {last.get('loss', float('nan')):.4f}")
    return 0
