"""`python -m craftstudio.demo {render, train-oracle, eval-oracle, train-base, eval-base, benchmark}`.

Heavy libraries load only inside the command that needs them; nothing here imports Qt, so the
commands run on headless training machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from craftstudio.demo.lab.base_model import LATENT_SIZES
from craftstudio.domain.training import BASIS_INITS, MINOR_INIT, BackboneTrainRequest


def _cmd_render(args) -> int:
    from PIL import Image

    from craftstudio.demo.world import SHAPES, STYLES, render

    shapes = args.shapes.split(",") if args.shapes else list(SHAPES)
    styles = args.styles.split(",") if args.styles else list(STYLES)
    sheet = Image.new("RGB", (64 * len(shapes), 64 * len(styles)))
    for row, style in enumerate(styles):
        for col, shape in enumerate(shapes):
            sheet.paste(render(shape, style, args.seed + row * len(shapes) + col), (64 * col, 64 * row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({len(styles)} styles x {len(shapes)} shapes)")
    return 0


def _cmd_train_oracle(args) -> int:
    from craftstudio.demo.lab.oracle_training import OracleTrainConfig, train_oracle
    from craftstudio.demo.oracle import oracle_path

    config = OracleTrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, eval_images=args.eval_images,
                               threads=args.threads)
    out = args.out or oracle_path()
    train_oracle(config, out, log=lambda line: print(line, flush=True))
    return 0


def _cmd_eval_oracle(args) -> int:
    import torch

    from craftstudio.demo.lab.oracle_training import evaluate
    from craftstudio.demo.oracle import Oracle

    torch.set_num_threads(args.threads)
    oracle = Oracle.load(args.oracle)
    result = evaluate(oracle, args.images, args.seed)
    print(json.dumps(result, indent=1))
    return 0


def _cmd_train_base(args) -> int:
    import dataclasses

    from craftstudio.demo.lab.autoencoder_training import AutoencoderPhase
    from craftstudio.demo.lab.base_model import ModelSizes
    from craftstudio.demo.lab.base_training import BaseTrainConfig, DiffusionPhase, train_base

    sizes = (ModelSizes.tiny() if args.tiny else ModelSizes()).with_latent_size(args.latent_size)
    config = BaseTrainConfig(
        seed=args.seed, device=args.device, vae_images=args.vae_images, images=args.images,
        autoencoder=dataclasses.replace(AutoencoderPhase(), steps=args.vae_steps, batch=args.vae_batch),
        diffusion=dataclasses.replace(DiffusionPhase(), steps=args.steps, batch=args.batch, lr=args.lr,
                                      text_lr=args.lr / 2),
        sizes=sizes, time_budget=args.time_budget, workers=args.workers, log_every=args.log_every,
        check_images=args.check_images,
    )
    if args.device == "cpu":
        import torch

        torch.set_num_threads(args.threads)
    train_base(config, args.out)
    return 0


def _cmd_eval_base(args) -> int:
    from craftstudio.demo.lab.evaluation import EvalConfig, evaluate_base

    config = EvalConfig(model=str(args.model), images=args.images, steps=args.steps, cfg=args.cfg,
                        scheduler=args.scheduler, seed=args.seed, device=args.device, threads=args.threads,
                        oracle=str(args.oracle) if args.oracle else None,
                        backbone=str(args.backbone) if args.backbone else None)
    result = evaluate_base(config, log=lambda line: print(line, flush=True))
    print(json.dumps(result, indent=1))
    print(f"oracle accuracy: content {result['content_accuracy']:.3f}, style {result['style_accuracy']:.3f}, "
          f"both {result['both_accuracy']:.3f}; {result['seconds_per_image']:.2f} s/image "
          f"({config.device}, {config.threads} threads, {config.steps} steps)")
    return 0


def _cmd_restyle(args) -> int:
    from craftstudio.demo.lab.restyle import run, table

    floats = [float(v) for v in args.strengths.split(",")]
    gammas = [float(v) for v in args.gammas.split(",")]
    rows = run(args.shape, args.style, list(range(args.seeds)), floats, gammas, args.steps, args.device, args.sheet)
    print(table(rows, args.shape, args.style, "the style LoRA's style"))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    return 0


def _cmd_peers(args) -> int:
    from craftstudio.demo.lab.peers import run, table, write_json

    rows, merge_seconds = run(args.seeds, args.ziplora_steps, args.device)
    print(table(rows, args.seeds, merge_seconds))
    if args.json:
        write_json(rows, merge_seconds, args.json)
    return 0


def _cmd_probe(args) -> int:
    from craftstudio.demo.lab.probes import EXPERIMENTS, run

    run(args.experiment or list(EXPERIMENTS), args.images, args.device, [float(v) for v in args.gammas.split(",")],
        args.json, loras={role: str(path) for role, path in (("content", args.content_lora),
                                                             ("style", args.style_lora)) if path})
    return 0


def _cmd_benchmark_merge(args) -> int:
    from craftstudio.demo.lab.benchmark import merge
    from craftstudio.demo.lab.benchmark_report import report_text, write_json

    try:
        result = merge([json.loads(Path(p).read_text()) for p in args.results])
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report_text(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0


# Sizes that differ by device when not given: small on the CPU (the smoke test, a 2-core machine),
# the full table's on a CUDA GPU. There a seed's 20 LoRAs, backbone and merges train side by side,
# one thread each: 24 workers start every LoRA on W_init as soon as the backbone is done, where 16
# would leave some waiting for the W0 ones and cores idle at the end.
BENCH_DEFAULTS = {
    "cpu": {"images": 8, "lora_steps": 300, "lora_rank": 8, "lora_workers": 1, "gen_workers": 1, "threads": 2},
    "cuda": {"images": 16, "lora_steps": 1500, "lora_rank": 16, "lora_workers": 24, "gen_workers": 4, "threads": 1},
}


def _on_cuda(device: str) -> bool:
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return device == "cuda"


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--ref-seeds {text!r} must be comma-separated whole numbers, e.g. 0,1.") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--ref-seeds {text!r} must name one or more different seeds of 0 or more, e.g. 0,1.")
    return seeds


def _with_suffix(path: Path, seed: int) -> Path:
    return path.with_name(f"{path.stem}.seed{seed}{path.suffix}")


def _cmd_benchmark(args) -> int:
    import dataclasses

    from craftstudio.demo.assets import demo_model_dir
    from craftstudio.demo.lab.benchmark import BenchConfig, choose_pairs, merge, run_benchmark
    from craftstudio.demo.lab.benchmark_peers import parse_peers
    from craftstudio.demo.lab.benchmark_report import report_text, write_json
    from craftstudio.domain.curves import CurveError, load_preset

    try:
        pairs = choose_pairs(args.pair, args.pairs)
        load_preset(args.curves)  # refuse a wrong name before any training
        peers = parse_peers(args.peers)
        seeds = _seed_list(args.ref_seeds) if args.ref_seeds else [args.seed]
    except (ValueError, CurveError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = args.model or demo_model_dir()
    if model is None:
        print("error: the demo model is not installed; pass --model", file=sys.stderr)
        return 2
    sizes = BENCH_DEFAULTS["cuda" if _on_cuda(args.device) else "cpu"]
    size = {key: sizes[key] if getattr(args, key) is None else getattr(args, key) for key in sizes}
    config = BenchConfig(
        model=str(model), pairs=pairs, images=size["images"], seed=seeds[0], steps=args.steps, cfg=args.cfg,
        device=args.device, threads=size["threads"], refs=args.refs, ref_classes=args.ref_classes,
        plain_content_captions=args.plain_content_captions, lora_steps=size["lora_steps"],
        lora_rank=size["lora_rank"], lora_lr=args.lora_lr, backbone_steps=args.backbone_steps,
        r_max=args.r_max, r_min=args.r_min, lora_workers=size["lora_workers"], curves=args.curves,
        backbone_init=args.backbone_init, keep_weight=args.keep_weight,
        **({} if args.backbone_keep is None else {"backbone_keep": args.backbone_keep}),
        workdir=str(args.workdir or ""),
        oracle=str(args.oracle) if args.oracle else None, style_gamma=args.style_gamma, auto_style_gamma=args.auto_style_gamma,
        peers=peers, ziplora_steps=args.ziplora_steps, peer_style_gamma=args.peer_style_gamma,
        backbone=not args.no_backbone, fast_training=args.fast_training, resume=args.resume,
        gen_workers=size["gen_workers"],
    )
    results = []
    for seed in seeds:
        run = dataclasses.replace(config, seed=seed, workdir=(str(Path(config.workdir) / f"seed-{seed}")
                                                              if config.workdir and len(seeds) > 1 else config.workdir))
        if len(seeds) > 1:
            print(f"== reference seed {seed} ({len(results) + 1} of {len(seeds)})", flush=True)
        result = run_benchmark(run, log=lambda line: print(line, flush=True))
        if args.sheet:
            from craftstudio.demo.lab.benchmark_report import contact_sheet

            sheet = _with_suffix(args.sheet, seed) if len(seeds) > 1 else args.sheet
            sheet.parent.mkdir(parents=True, exist_ok=True)
            contact_sheet(result).save(sheet)
            print(f"wrote {sheet}")
        if args.json and len(seeds) > 1:  # each seed's run, for `benchmark-merge` with later runs
            print(f"wrote {write_json(result, _with_suffix(args.json, seed))}")
        results.append({k: v for k, v in result.items() if not k.startswith("_")} if len(seeds) > 1 else result)
    result = merge(results) if len(seeds) > 1 else results[0]
    print()
    print(report_text(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m craftstudio.demo",
                                     description="ShapesWorld: the built-in demo world, oracle and model.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="write a contact sheet of world pictures")
    p.add_argument("--out", type=Path, required=True, help="PNG file")
    p.add_argument("--shapes", default="", help="comma-separated shapes (default all)")
    p.add_argument("--styles", default="", help="comma-separated styles (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("train-oracle", help="train the oracle CNN on the CPU and save it")
    p.add_argument("--out", type=Path, default=None, help="weights file (default resources/demo/oracle.safetensors)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-images", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads (on a busy 2-core machine, 1 is several times faster)")
    p.set_defaults(func=_cmd_train_oracle)

    p = sub.add_parser("eval-oracle", help="measure the oracle on fresh pictures")
    p.add_argument("--oracle", type=Path, default=None)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--seed", type=int, default=123_456_789)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_cmd_eval_oracle)

    p = sub.add_parser("train-base", help="train the demo base model (GPU) and save a diffusers folder")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (e.g. resources/models/shapesworld)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=6000, help="diffusion (UNet + text encoder) steps")
    p.add_argument("--batch", type=int, default=512, help="diffusion batch size")
    p.add_argument("--lr", type=float, default=4e-4, help="UNet learning rate (text encoder: half)")
    p.add_argument("--vae-steps", type=int, default=2500)
    p.add_argument("--vae-batch", type=int, default=256)
    p.add_argument("--images", type=int, default=150_000, help="pictures of the training classes")
    p.add_argument("--vae-images", type=int, default=60_000, help="pictures of all classes for the autoencoder")
    p.add_argument("--time-budget", type=float, default=400.0,
                   help="seconds for both training phases; step counts shrink to fit (0 = no limit)")
    p.add_argument("--workers", type=int, default=0, help="rendering processes (0 = one per core)")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--check-images", type=int, default=280, help="generated and classified at the end (0 = skip)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads when --device cpu")
    p.add_argument("--tiny", action="store_true", help="tiny networks (smoke tests)")
    p.add_argument("--latent-size", type=int, default=16, choices=LATENT_SIZES,
                   help="latent side of the 64px pictures: 16 (the shipped model) or 32 (a 2x autoencoder: every "
                        "UNet block at twice the resolution)")
    p.set_defaults(func=_cmd_train_base)

    p = sub.add_parser("eval-base", help="oracle accuracy and CPU speed of a demo base model")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--images", type=int, default=56)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--scheduler", default="dpmpp_2m_karras")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--oracle", type=Path, default=None)
    p.add_argument("--backbone", type=Path, default=None,
                   help="generate on this backbone's W_init (how much of the base model it keeps)")
    p.set_defaults(func=_cmd_eval_base)

    p = sub.add_parser("benchmark", help="CRAFT quality benchmark (Table 1): train LoRAs on held-out pairs, 8 "
                       "ablation rows, the peers and each method's cost per step")
    p.add_argument("--pair", action="append", default=[], metavar="CONTENT:STYLE",
                   help="a held-out shape:style pair (repeatable; default all held-out pairs)")
    p.add_argument("--pairs", type=int, default=0, help="use the first K held-out pairs (0 = all)")
    p.add_argument("--images", type=int, default=None, help="images per pair and method (default 8 on the CPU, "
                   "16 on CUDA)")
    p.add_argument("--seed", type=int, default=0, help="reference seed: references, training and sampling seeds "
                   "derive from it (--ref-seeds runs several)")
    p.add_argument("--steps", type=int, default=20, help="sampler steps")
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto; CUDA changes the defaults "
                   "of --images, --lora-steps, --lora-rank, --lora-workers, --gen-workers and --threads to the full table's")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (default 2 on the CPU, 1 on "
                   "CUDA)")
    p.add_argument("--ref-seeds", default="", metavar="S,S,...",
                   help="run everything (references, training, generation) once per reference seed, replacing "
                        "--seed, and merge the runs: each pair averaged over the seeds; with --json each seed's "
                        "run is also written as NAME.seedS.json")
    p.add_argument("--peers", default="all", metavar="LIST",
                   help="peer methods beside CRAFT's rows: all (default), none, or some of "
                        "k-lora,switch,composite,ziplora,b-lora")
    p.add_argument("--ziplora-steps", type=int, default=100, help="ZipLoRA merge steps per pair (the paper's 100)")
    p.add_argument("--refs", type=int, default=4, help="reference images per concept")
    p.add_argument("--plain-content-captions", action="store_true",
                   help="caption content references `a {trigger}` only, not `a {trigger} in <style> style`")
    p.add_argument("--ref-classes", type=int, default=1,
                   help="training classes a concept's references show it with (1 = one, as leakage is "
                        "measured against; more lets each LoRA see its concept in several contexts)")
    p.add_argument("--lora-steps", type=int, default=None, help="default 300 on the CPU, 1500 on CUDA")
    p.add_argument("--lora-rank", type=int, default=None, help="default 8 on the CPU, 16 on CUDA")
    p.add_argument("--lora-lr", type=float, default=2e-3)
    p.add_argument("--backbone-steps", type=int, default=200)
    p.add_argument("--no-backbone", action="store_true",
                   help="train no Rank-FT backbone: only the LoRAs on W0 and the 4 rows without the backbone "
                        "(half the training; e.g. to test another --model)")
    p.add_argument("--resume", "--reuse-loras", dest="resume", action="store_true",
                   help="keep every file (backbone, LoRA, ZipLoRA merge) and every generated batch already in "
                        "--workdir that was made from the same request and files, so a stopped run continues where "
                        "it stopped and pairs run one after another train a shared concept once")
    p.add_argument("--fast-training", action="store_true",
                   help="compile the backbone's and the LoRAs' training steps (on a GPU replayed as CUDA graphs; "
                        "the same weights, after a first compile per process)")
    p.add_argument("--style-gamma", type=float, default=None, metavar="G",
                   help="also run full CRAFT with the style weight <s:G> (asymmetric CFG scales a LoRA's "
                        "effect by the guidance scale; G ≈ 1/cfg undoes that)")
    p.add_argument("--peer-style-gamma", type=float, default=None, metavar="G",
                   help="also run the direct merge and the peers (not ZipLoRA, whose merge fixes both "
                        "weights) with the style LoRA at weight G, as --style-gamma does for CRAFT")
    p.add_argument("--auto-style-gamma", action="store_true",
                   help="also run CRAFT at each pair's γ* = 1 − ρ·cos·(s−1)/s, from how much of the style "
                        "LoRA's change reaches the unconditional prediction (demo probe uncond-ratio)")
    p.add_argument("--r-max", type=int, default=16)
    p.add_argument("--r-min", type=int, default=4)
    p.add_argument("--curves", default="paper",
                   help="curve preset for the asymmetric-CFG rows (gates and guidance over the steps)")
    p.add_argument("--lora-workers", type=int, default=None,
                   help="train this many LoRAs (and ZipLoRA merges) at once, one process each (a GPU runs several "
                        "side by side; default 1 on the CPU, 24 on CUDA)")
    p.add_argument("--gen-workers", type=int, default=None,
                   help="generate this many pairs at once, one process each (default 1 on the CPU, 4 on CUDA); a "
                        "pair's methods and its base model share a process, so their cost ratio is measured under "
                        "one load")
    p.add_argument("--backbone-init", choices=BASIS_INITS, default=MINOR_INIT,
                   help="where the Rank-FT bases start: the base model's minor input directions or random")
    p.add_argument("--backbone-keep", type=int, default=None, metavar="N",
                   help="train the backbone with a preservation term on N pictures of the base model's own "
                        "classes (0 = none; default: as many as the shipped demo backbone)")
    p.add_argument("--keep-weight", type=float, default=BackboneTrainRequest.keep_weight,
                   help="weight κ of that preservation term")
    p.add_argument("--model", type=Path, default=None, help="default: the shipped demo model")
    p.add_argument("--oracle", type=Path, default=None)
    p.add_argument("--workdir", type=Path, default=None, help="where references and trained files go "
                   "(default a temporary folder)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG")
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("restyle", help="image to image: restyle world pictures with the demo style LoRA")
    p.add_argument("--shape", default="star")
    p.add_argument("--style", default="stripes")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--strengths", default="0.45,0.55,0.6", help="comma-separated denoising strengths")
    p.add_argument("--gammas", default="0.35,0.5", help="comma-separated style weights γ_s")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--sheet", type=Path, default=None, help="contact sheet: the picture, then 7 results per row")
    p.set_defaults(func=_cmd_restyle)

    p = sub.add_parser("peers", help="CRAFT against direct, K-LoRA, Switch, Composite and ZipLoRA on the demo pair")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--ziplora-steps", type=int, default=100)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=_cmd_peers)

    p = sub.add_parser("probe", help="experiments on the demo pair: the style LoRA alone, on parts of its "
                       "layers, and how unconditional each LoRA's change is")
    p.add_argument("--experiment", action="append", choices=("style-alone", "style-subsets", "uncond-ratio"),
                   help="repeatable (default: all three)")
    p.add_argument("--images", type=int, default=16, help="images per row (seeds 0 … N−1)")
    p.add_argument("--gammas", default="0.25,0.5,1", help="style weights <s:γ> to try")
    p.add_argument("--content-lora", type=Path, default=None, help="probe this content LoRA instead of the demo's")
    p.add_argument("--style-lora", type=Path, default=None, help="probe this style LoRA instead of the demo's")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser("benchmark-merge", help="one table from benchmark JSON files of different pairs or "
                       "reference seeds")
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by `benchmark --json`")
    p.add_argument("--json", type=Path, default=None, help="write the merged numbers to this JSON file")
    p.set_defaults(func=_cmd_benchmark_merge)
    return parser


def main(argv: list[str] | None = None) -> int:
    from craftstudio.domain.errors import UserError

    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:  # a wrong file or setting: one sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
