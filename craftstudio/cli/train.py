"""`craftstudio train backbone|lora …` and `craftstudio bench train`.

`add_commands(subparsers)` adds `train` to the main parser and `add_bench_command(bench_subparsers)`
adds `train` under `bench`; every leaf sets `func(args) -> int`. Training shows a progress bar
with the loss and the time left on stderr. The first Ctrl-C cancels cleanly: a checkpoint of the
steps done is kept (continue with `--resume`) and no output file is written; a second Ctrl-C
stops at once. User errors are raised as `UserError` for the main to print as one line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from craftstudio.cli.parsing import help_command
from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import DEVICES
from craftstudio.domain.training import (
    BASIS_INITS,
    LOSSES,
    MIXED_PRECISION,
    ROLES,
    BackboneTrainRequest,
    LoraTrainRequest,
)

EXIT_CANCELLED = 130


class TrainProgress:
    """A tqdm bar for the steps (loss and ETA in its postfix), other stages as plain lines, and
    sample images saved next to the output (`<out>.samples/step-000100.png`)."""

    def __init__(self, out: Path) -> None:
        self.samples = out.with_name(out.name + ".samples")
        self._bar = None

    def __call__(self, event) -> None:
        from tqdm import tqdm

        stage = getattr(event, "stage", None)
        if stage is None:  # a PreviewEvent: a sample image
            from craftstudio.domain.atomic_file import atomic_path

            path = self.samples / f"step-{event.step:06d}.png"
            with atomic_path(path) as tmp:  # a full disk is one sentence, not a traceback
                event.image.save(tmp, format="PNG")
            self._write(f"sample image: {path}")
            return
        if stage != "train" or not event.values:
            if stage == "save":
                self.close()  # training is over: the bar stays as the last line above
            if event.message and event.message != "training":
                self._write(event.message)
            return
        if self._bar is None:
            self._bar = tqdm(total=event.total, initial=event.step - 1, unit="step", file=sys.stderr,
                             desc="training", dynamic_ncols=True)
        self._bar.update(event.step - self._bar.n)
        shown = {k: f"{v:.4f}" for k, v in event.values.items() if k != "eta_s"}
        self._bar.set_postfix(shown, refresh=False)

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _CtrlC:
    """First Ctrl-C: cancel the token (clean stop with a checkpoint). Second: the usual interrupt."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token
        self.previous = None

    def __enter__(self) -> _CtrlC:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (tests): leave signals alone
            self.previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.token.cancelled:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to stop at once)", file=sys.stderr)
        self.token.cancel()

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _run_training(request, resume: bool) -> int:
    from craftstudio.engine.training import train

    request.validate()
    out = Path(request.out)
    bar = TrainProgress(out)
    # Under a user's own `accelerate launch`, every process runs this command: the main one speaks.
    main = os.environ.get("RANK", "0") == "0"
    token = CancelToken()
    try:
        with _CtrlC(token):
            result = train(request, progress=bar if main else None, cancel=token, resume=resume)
    except Cancelled:
        bar.close()
        print(f"craftstudio: training cancelled; no file was written. Continue with the same command "
              f"and --resume{' (checkpoints are off)' if not request.checkpoint_every else ''}.",
              file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        bar.close()
    if not main:
        return 0
    for path, reason in result.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    loss = result.final_loss
    print(f"{result.out}  ({result.steps} steps, {result.seconds:.1f} s on {result.device}, "
          f"final loss {loss:.4f})" if loss is not None else result.out)
    return 0


def _common(p: argparse.ArgumentParser, *, steps: int, lr: float, checkpoint_every: int) -> None:
    p.add_argument("--model", help="diffusers model folder or .safetensors checkpoint (default: the built-in "
                                   "ShapesWorld demo model, as for generate)")
    p.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    p.add_argument("--steps", type=int, default=steps, help="training steps")
    p.add_argument("--lr", type=float, default=lr, help="learning rate")
    p.add_argument("--batch", type=int, default=1, help="batch size")
    p.add_argument("--resolution", type=int, default=0, help="training size (0 = the model's native size)")
    p.add_argument("--loss", choices=LOSSES, default="mse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--num-processes", type=int, default=None, metavar="N",
                   help="train on N processes, one GPU each (CPU processes with --device cpu); --batch is the "
                        "global batch, split over them (default 1, or one per --gpus)")
    p.add_argument("--gpus", type=_gpu_list, default=(), metavar="0,1,...",
                   help="the GPUs to train on, one process each (numbered as nvidia-smi does)")
    p.add_argument("--precision", default="auto", choices=MIXED_PRECISION, help="mixed precision on a GPU")
    p.add_argument("--no-gradient-checkpointing", dest="checkpointing", action="store_false",
                   help="faster, but needs much more GPU memory")
    p.add_argument("--fast", action="store_true",
                   help="compile the training step (CUDA: CUDA graphs, several times faster per step after a first "
                        "compile: 2-3 minutes for a full-size SD1.5 UNet on an H200, about 6 for SDXL); the same "
                        "weights")
    p.add_argument("--upscale", action="store_true", help="enlarge images smaller than the resolution")
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every, metavar="N",
                   help="save a resumable checkpoint every N steps (0 = never)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this output")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    p.add_argument("--title", default="", help="title written into the file's metadata")


def _gpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"GPUs are numbers separated by commas (0,1), not {text!r}") from None


def _processes(args: argparse.Namespace) -> dict[str, Any]:
    """--num-processes and --gpus as request fields (one process per chosen GPU by default)."""
    gpus = tuple(args.gpus)
    count = args.num_processes if args.num_processes is not None else (len(gpus) or 1)
    return {"num_processes": count, "gpus": gpus}


def _demo_fallback(args: argparse.Namespace, *, backbone: bool = False) -> None:
    """No --model: the built-in demo model, as `generate` does; a LoRA then trains on the demo's
    backbone too (unless --backbone is given), as the shipped demo LoRAs were."""
    if args.model:
        return
    from craftstudio.demo import assets

    model = assets.demo_model_dir()
    if model is None:
        raise UserError("No model given and the demo model is not installed: pass --model PATH.")
    args.model = str(model)
    if backbone and args.backbone is None and assets.demo_backbone() is not None:
        args.backbone = str(assets.demo_backbone())


def _run_backbone(args: argparse.Namespace) -> int:
    _demo_fallback(args)
    request = BackboneTrainRequest(
        model=args.model, content_dir=args.content_dir, style_dir=args.style_dir, out=str(args.out),
        r_max=args.r_max, r_min=args.r_min, init=args.init, sigma=args.sigma, ortho_weight=args.ortho_weight,
        keep_dir=args.keep_dir or "", keep_weight=args.keep_weight,
        steps=args.steps, learning_rate=args.lr, batch_size=args.batch, resolution=args.resolution,
        max_content=args.max_content, max_style=args.max_style, content_caption=args.content_caption,
        style_caption=args.style_caption, loss=args.loss, seed=args.seed, device=args.device,
        mixed_precision=args.precision, gradient_checkpointing=args.checkpointing, fast=args.fast,
        upscale=args.upscale, checkpoint_every=args.checkpoint_every, overwrite=args.overwrite, title=args.title, **_processes(args),
    )
    return _run_training(request, args.resume)


def _overrides(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        block, sep, role = item.partition("=")
        if not sep or not block:
            raise UserError(f"--route takes BLOCK=ROLE (e.g. up_blocks.1.attentions.0=style), not {item!r}.")
        out[block.strip()] = role.strip()
    return out


def _run_lora(args: argparse.Namespace) -> int:
    _demo_fallback(args, backbone=True)
    request = LoraTrainRequest(
        role=args.role, model=args.model, images=tuple(args.images), trigger=args.trigger, out=str(args.out),
        backbone=args.backbone, caption=args.caption, rank=args.rank, alpha=args.alpha,
        learning_rate=args.lr, steps=args.steps, batch_size=args.batch, resolution=args.resolution,
        loss=args.loss, seed=args.seed, device=args.device, mixed_precision=args.precision,
        gradient_checkpointing=args.checkpointing, fast=args.fast, adam_8bit=args.adam_8bit, upscale=args.upscale,
        sample_every=args.sample_every, sample_prompt=args.sample_prompt, sample_steps=args.sample_steps,
        checkpoint_every=args.checkpoint_every, routing_overrides=_overrides(args.route),
        routing_preset=args.routing_preset, uncond_weight=args.uncond_weight,
        overwrite=args.overwrite, title=args.title, **_processes(args),
    )
    return _run_training(request, args.resume)


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `train backbone` and `train lora` to the main parser's subparsers."""
    train = subparsers.add_parser("train", help="train a backbone (W_init) or a content/style LoRA",
                                  description="Train a CRAFT backbone or a routed content/style LoRA.")
    train.set_defaults(func=help_command(train))
    sub = train.add_subparsers(dest="train_command", metavar="KIND")

    p = sub.add_parser("backbone", help="Rank-FT: the rank-constrained backbone W_init",
                       description="Learn content and style bases on reference folders and save the "
                                   "merged backbone (W_init).")
    p.add_argument("--content-dir", required=True, help="folder of content references")
    p.add_argument("--style-dir", required=True, help="folder of style references")
    p.add_argument("--r-max", type=int, default=128, help="rank of the first (shallowest) layers")
    p.add_argument("--r-min", type=int, default=4, help="rank of the last (deepest) layers")
    p.add_argument("--init", choices=BASIS_INITS, default=BackboneTrainRequest.init,
                   help="start the bases on the base model's least-used input directions (minor: W_init "
                        "starts close to W0) or on random ones")
    p.add_argument("--sigma", type=float, default=0.35, help="low-pass cutoff for content images (1 = Nyquist)")
    p.add_argument("--lambda", dest="ortho_weight", type=float, default=1.0,
                   help="weight of the orthogonality penalty between content and style bases")
    p.add_argument("--keep-dir", default=None,
                   help="folder of pictures (with optional caption files) the base model should keep drawing: "
                        "each step also pulls W_init's prediction on them toward the base model's")
    p.add_argument("--keep-weight", type=float, default=BackboneTrainRequest.keep_weight,
                   help="weight κ of that preservation term")
    p.add_argument("--max-content", type=int, default=10, help="use at most N content references")
    p.add_argument("--max-style", type=int, default=10, help="use at most N style references")
    p.add_argument("--content-caption", default=BackboneTrainRequest.content_caption)
    p.add_argument("--style-caption", default=BackboneTrainRequest.style_caption)
    _common(p, steps=5000, lr=1e-3, checkpoint_every=500)
    p.set_defaults(func=_run_backbone)

    p = sub.add_parser("lora", help="a routed content or style LoRA",
                       description="Train a content LoRA (I_c layers only) or a style LoRA (I_s layers "
                                   "only) from reference images.")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--images", required=True, nargs="+", metavar="DIR|FILE",
                   help="image files or folders; an image's own caption may sit next to it (cat.png + cat.txt)")
    p.add_argument("--trigger", required=True, help="the trigger phrase, e.g. 'sks cat'")
    p.add_argument("--backbone", default=None, help="train on W_init of this backbone file (default: none; "
                                                    "the demo's backbone without --model)")
    p.add_argument("--caption", default="", help="caption template with {trigger} (default depends on the role)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument("--adam-8bit", action="store_true", help="8-bit AdamW (needs bitsandbytes)")
    p.add_argument("--sample-every", type=int, default=0, metavar="N", help="a sample image every N steps")
    p.add_argument("--sample-prompt", default="", help="prompt of the sample images (markers allowed)")
    p.add_argument("--sample-steps", type=int, default=20)
    p.add_argument("--route", action="append", metavar="BLOCK=ROLE",
                   help="override the layer set of a block (content, style or none); repeatable")
    p.add_argument("--routing", dest="routing_preset", choices=["craft", "b-lora"], default="craft",
                   help="the role's layer set: craft (Eq. 7) or b-lora (its one B-LoRA block)")
    p.add_argument("--uncond-weight", type=float, default=0.0, metavar="K",
                   help="keep the empty prompt's prediction as the base model's, with this weight (0 = off): the "
                        "LoRA's change then follows its caption")
    _common(p, steps=500, lr=1e-4, checkpoint_every=100)
    p.set_defaults(func=_run_lora)
    return train


def _run_bench(args: argparse.Namespace) -> int:
    from craftstudio.engine.devices import pick_device
    from craftstudio.engine.training.bench_train import FAMILIES, format_table, run

    families = list(FAMILIES) if args.family == "both" else [args.family]
    if args.num_processes is not None or args.gpus:
        return _run_bench_scaling(args, families)
    report = run(families, size=args.size, steps=args.steps or 20, warmup=args.warmup, rank=args.rank,
                 preset=args.preset, device=pick_device(args.device), precision=args.precision,
                 checkpointing=args.checkpointing)
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _run_bench_scaling(args: argparse.Namespace, families: list[str]) -> int:
    from craftstudio.engine.training import bench_scaling

    processes = args.num_processes if args.num_processes is not None else len(args.gpus)
    report = bench_scaling.run(families, processes=processes, batch=args.batch, size=args.size,
                               steps=args.steps or 10,
                               warmup=args.warmup, rank=args.rank, preset=args.preset, device=args.device,
                               precision=args.precision, checkpointing=args.checkpointing, gpus=tuple(args.gpus),
                               fast=args.fast, which=args.which, sync=args.sync, baseline=args.baseline,
                               one_bucket=args.one_bucket,
                               say=lambda text: print(text, file=sys.stderr))
    print(bench_scaling.format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def add_bench_command(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add `train` under `bench`."""
    p = bench_subparsers.add_parser("train", help="time LoRA and Rank-FT training steps on random UNets",
                                    description="ms/step and peak memory of (a) a plain LoRA step, (b) our "
                                                "routed content-LoRA step, (c) a Rank-FT step.")
    p.add_argument("--family", choices=["sd15", "sdxl", "both"], default="both")
    p.add_argument("--size", type=int, default=None, help="image size (default 512 for sd15, 1024 for sdxl)")
    p.add_argument("--preset", choices=["full", "small"], default=None,
                   help="full-size UNets or a tenth of the channels (default: full on CUDA, small elsewhere)")
    p.add_argument("--steps", type=int, default=None, help="measured steps per configuration (default 20; 10 "
                                                          "with --num-processes)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--precision", default="auto", choices=MIXED_PRECISION)
    p.add_argument("--no-gradient-checkpointing", dest="checkpointing", action="store_false")
    p.add_argument("--num-processes", type=int, default=None, metavar="N",
                   help="instead: steps (b) and (c) on N processes (one GPU each) against 1, at --batch "
                        "(1: one process alone)")
    p.add_argument("--gpus", type=_gpu_list, default=(), metavar="0,1,...", help="the GPUs for --num-processes")
    p.add_argument("--batch", type=int, default=8, help="global batch of the --num-processes benchmark")
    p.add_argument("--fast", action="store_true", help="with --num-processes: compile the training step")
    p.add_argument("--which", choices=["b", "c", "bc"], default="bc",
                   help="with --num-processes: the steps to time, (b) routed LoRA and/or (c) Rank-FT")
    p.add_argument("--no-sync", dest="sync", action="store_false",
                   help="with --num-processes: skip DDP's gradient all-reduce (to see what it costs; not training)")
    p.add_argument("--one-bucket", action="store_true",
                   help="with --num-processes: the routed LoRA's gradients in one DDP all-reduce after the backward "
                        "(a compiled step is then not split at DDP's 25 MiB buckets)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="with --num-processes N: only the N-process run, without the 1-process one (to split a "
                        "long benchmark over two commands; compare with --num-processes 1)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the numbers as JSON")
    p.set_defaults(func=_run_bench)
    return p
