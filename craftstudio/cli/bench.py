"""`craftstudio bench ...`: every benchmark, each printing ratios against a baseline measured in
the same run. Parsers only here: each benchmark's code (torch, Qt) loads when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craftstudio.cli import train as train_commands
from craftstudio.library import bench as library_bench


def add_commands(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks (print ratios against a baseline)")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    library_bench.add_bench_command(bench_sub)
    _add_library_ui_bench(bench_sub)
    _add_engine_bench(bench_sub)
    _add_hires_bench(bench_sub)
    train_commands.add_bench_command(bench_sub)
    _add_gallery_bench(bench_sub)


def _add_engine_bench(bench_sub) -> None:
    """The sampler benchmark's parser without importing torch at start-up."""
    p = bench_sub.add_parser("sampler", help="CRAFT sampler cost per step vs base UNet and peft")
    p.add_argument("--family", choices=["sd15", "sdxl"], action="append", help="default: both")
    p.add_argument("--size", type=int, help="image side (default 512 for sd15, 1024 for sdxl)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--fast", action="store_true", help="also time the compiled UNet (a_fast, c_fast)")
    p.add_argument("--profile", action="store_true", help="kernel counts and GPU time per step (CUDA)")
    p.add_argument("--batch", type=int, default=4, help="images per call for the batch case (1 = skip)")
    p.add_argument("--low-vram", action="store_true", help="also time CRAFT with the UNet offloaded")
    p.add_argument("--cases", default="abcd", help="eager cases besides a (default abcd)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.set_defaults(func=_run_bench_sampler)


def _add_hires_bench(bench_sub) -> None:
    p = bench_sub.add_parser("hires", help="hires request vs plain: seconds per image and peak GPU memory")
    p.add_argument("--family", choices=["sd15", "sdxl"], action="append", help="default: both")
    p.add_argument("--factor", type=float, default=2.0, help="hires factor (default 2: SDXL 2048²)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="write the results here")
    p.set_defaults(func=_run_bench_hires)


def _run_bench_hires(args) -> int:
    from craftstudio.engine import bench_hires

    return bench_hires.main(args)


def _run_bench_sampler(args) -> int:
    from craftstudio.engine import bench_sampler

    return bench_sampler.main(args)


def _add_library_ui_bench(bench_sub) -> None:
    """The Library page benchmark's parser; Qt is imported only when it runs."""
    p = bench_sub.add_parser("library-ui", help="the Library page at N items: open, search, scroll, memory")
    p.add_argument("--count", type=int, default=20000, help="number of LoRA files (default 20000)")
    p.add_argument("--dir", metavar="DIR", help="work folder, reused when it holds N files (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep the generated files and library")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_bench_library_ui)


def _run_bench_library_ui(args) -> int:
    from craftstudio.ui.library_bench import cmd_bench_library_ui

    return cmd_bench_library_ui(args)


def _add_gallery_bench(bench_sub) -> None:
    """The Gallery page benchmark, Qt imported only when it runs."""
    from craftstudio.ui import gallery_bench

    gallery_bench.add_bench_command(bench_sub)
