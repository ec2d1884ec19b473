"""Command line: `python -m craftstudio {gui, generate, library, bench, ...}`.

User errors print one line on stderr and exit with status 2; heavy libraries are imported only
by the commands that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from craftstudio import __version__
from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import DEFAULT_SCHEDULER, DEVICES, SCHEDULERS

EXIT_USER_ERROR = 2


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, not {text!r}") from None
    return width, height


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate images from a prompt")
    p.add_argument("--model", required=True, help="diffusers model folder or .safetensors checkpoint")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=_size, default=(512, 512), metavar="WxH")
    p.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help=f"one of {', '.join(SCHEDULERS)}")
    p.add_argument("--batch", type=int, default=1, help="number of images (seeds seed, seed+1, ...)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, type=Path, help="output PNG (FILE-2.png etc. for a batch)")
    p.set_defaults(func=_run_generate)


def _output_paths(out: Path, count: int) -> list[Path]:
    if out.suffix.lower() != ".png":
        raise UserError(f"Output {out} must be a .png file.")
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(count)]


class _TerminalProgress:
    """One tqdm bar per image on stderr."""

    def __init__(self) -> None:
        self._bar = None
        self._image = -1

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if getattr(event, "stage", None) != "denoise":
            return
        if event.image_index != self._image:
            self.close()
            self._image = event.image_index
            label = f"image {event.image_index + 1}/{event.image_count}"
            self._bar = tqdm(total=event.total, desc=label, unit="step", file=sys.stderr, leave=True)
        self._bar.update(event.step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _run_generate(args) -> int:
    from craftstudio.domain.generation import GenerateRequest
    from craftstudio.engine.generation import generate
    from craftstudio.library.png_params import save_png

    request = GenerateRequest(
        model=args.model, prompt=args.prompt, negative_prompt=args.negative, width=args.size[0],
        height=args.size[1], steps=args.steps, cfg_scale=args.cfg, seed=args.seed,
        scheduler=args.scheduler, batch_count=args.batch, device=args.device,
    )
    request.validate()
    outputs = _output_paths(args.out, request.batch_count)
    bar = _TerminalProgress()
    try:
        result = generate(request, progress=bar)
    finally:
        bar.close()
    for image, seed, path in zip(result.images, result.seeds, outputs, strict=True):
        save_png(image, path, request, seed=seed, model_name=result.model_name)
        print(path)
    return 0


def _run_gui(args) -> int:
    from craftstudio.app import main as gui_main

    return gui_main([])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="craftstudio", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"CraftStudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("gui", help="open the desktop application").set_defaults(func=_run_gui)
    _add_generate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.func(args)
    except UserError as exc:
        print(f"craftstudio: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("craftstudio: interrupted", file=sys.stderr)
        return 130
