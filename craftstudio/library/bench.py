"""`craftstudio bench library`: time a cold scan, a re-scan and searches on synthetic LoRAs.

Makes N LoRA files (default 5,000) with real key layouts (kohya SD1/SD2/SDXL, diffusers, peft)
and tiny tensors, in nested folders, some with spaces and non-ASCII characters in their names and
a civitai sidecar, then measures against a baseline in the same run: reading every byte of the
files once (what any scan must at least do to hash them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from craftstudio.library import synthetic
from craftstudio.library.catalog import Catalog
from craftstudio.library.item_query import ItemQuery

TARGETS = {"cold scan": 20.0, "re-scan": 2.0, "search": 0.020, "slowest search": 0.060}
SCREENFUL = 100  # what the Library page asks for first: the count and one page of cards
_WORDS = ["ink", "watercolor", "portrait", "castle", "neon", "forest", "pastel", "robot", "samurai", "glass"]
_SEARCHES: list[dict[str, Any]] = [
    {"text": "watercolor"}, {"text": "ink castle"}, {"family": "sdxl"}, {"family": "sd1", "text": "neon"},
    {"role": "style"}, {"tag": "bench"}, {"trigger": "robot"}, {"text": "zzz-not-there"},
]


def make_files(folder: Path, count: int) -> int:
    """Write `count` synthetic LoRAs under `folder`; returns the bytes written."""
    layouts = list(synthetic.LAYOUTS.items())
    total = 0
    for i in range(count):
        layout, keys = layouts[i % len(layouts)]
        family = layout.split("-")[1]
        word, other = _WORDS[i % len(_WORDS)], _WORDS[(i // len(_WORDS)) % len(_WORDS)]
        name = f"{word} {other} {i:05d}" if i % 7 == 0 else f"{word}_{other}_{i:05d}"
        if i % 50 == 0:
            name += "_水彩"
        sub = folder / f"set {i // 500:02d}" / layout
        rank = (1, 2, 4)[i % 3]
        if layout.startswith("kohya"):
            meta = synthetic.kohya_metadata(name, family, rank, {word: 30, other: 12, "1girl": 5})
        else:
            meta = {"modelspec.architecture": {"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512",
                                               "sdxl": "stable-diffusion-xl-v1-base"}[family] + "/lora",
                    "modelspec.title": name.replace("_", " "), "modelspec.trigger_phrase": f"{word} style",
                    "craft.role": ("content", "style")[i % 2]}
        path = synthetic.write_safetensors(sub / f"{name}.safetensors", keys(rank), meta)
        total += path.stat().st_size
        if i % 5 == 0:
            (sub / f"{name}.civitai.info").write_text(json.dumps(
                {"trainedWords": [word], "baseModel": "SDXL 1.0" if family == "sdxl" else "SD 1.5",
                 "model": {"name": name, "tags": ["bench"]}}), encoding="utf-8")
    return total


def read_all(folder: Path) -> float:
    """Baseline: read every byte of every file once."""
    start = time.perf_counter()
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as fh:
                while fh.read(1 << 20):
                    pass
    return time.perf_counter() - start


def run(count: int = 5000, workdir: str | Path | None = None, keep: bool = False) -> dict[str, Any]:
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="craftstudio-bench-"))
    files, home = base / "loras", base / "home"
    shutil.rmtree(home, ignore_errors=True)
    try:
        start = time.perf_counter()
        if not (files.exists() and sum(1 for _ in files.rglob("*.safetensors")) == count):
            shutil.rmtree(files, ignore_errors=True)
            make_files(files, count)
        made = time.perf_counter() - start
        size = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
        baseline = read_all(files)
        with Catalog.open(home) as cat:
            cpu = time.process_time()
            cold = cat.scan([files])
            cold_cpu = time.process_time() - cpu
            cpu = time.process_time()
            rescan = cat.scan([files])
            rescan_cpu = time.process_time() - cpu
            cat.items.change_tags(cat.items.search(limit=1)[0].id, add=["bench"])
            cat.items.analyse()  # as the page's scan job does after a scan
            timings: list[float] = []
            cpu_timings: list[float] = []
            full_timings: list[float] = []
            per_query: dict[str, float] = {}
            for fields in _SEARCHES:
                query = ItemQuery(**fields)
                runs = []
                for _ in range(5):
                    t, cpu = time.perf_counter(), time.thread_time()
                    matches = cat.items.count_matching(query)
                    cat.items.page(query, limit=SCREENFUL, matches=matches)
                    runs.append(time.perf_counter() - t)
                    cpu_timings.append(time.thread_time() - cpu)
                    t = time.perf_counter()
                    cat.items.search(**fields)  # every match, as `library list` prints them
                    full_timings.append(time.perf_counter() - t)
                per_query[json.dumps(fields)] = statistics.median(runs)
                timings.extend(runs)
            listed = cat.items.count("lora")
        return {
            "files": count, "bytes": size, "make_seconds": made, "baseline_read_seconds": baseline,
            "cold_scan_seconds": cold.seconds, "cold_added": cold.added, "unreadable": len(cold.unreadable),
            "rescan_seconds": rescan.seconds, "rescan_unchanged": rescan.unchanged,
            "search_median_seconds": statistics.median(timings), "search_max_seconds": max(timings),
            "search_cpu_median_seconds": statistics.median(cpu_timings),
            "search_cpu_max_seconds": max(cpu_timings), "cold_scan_cpu_seconds": cold_cpu,
            "rescan_cpu_seconds": rescan_cpu,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "full_list_median_seconds": statistics.median(full_timings),
            "full_list_max_seconds": max(full_timings),
            "search_per_query": per_query, "catalogued": listed, "cpus": os.cpu_count(),
        }
    finally:
        if not keep:
            shutil.rmtree(base if not workdir else home, ignore_errors=True)


def format_table(r: dict[str, Any]) -> str:
    """Wall time, the verdict against the target, and the CPU time (this process; for searches
    this thread): on a shared machine the wall time grows with the load, the CPU time does not."""
    read = max(r["baseline_read_seconds"], 1e-9)
    rows = [
        ("cold scan", r["cold_scan_seconds"], r.get("cold_scan_cpu_seconds"), TARGETS["cold scan"],
         f"{r['cold_scan_seconds'] / read:.1f}x plain read"),
        ("re-scan, nothing changed", r["rescan_seconds"], r.get("rescan_cpu_seconds"), TARGETS["re-scan"],
         f"{r['rescan_seconds'] / max(r['cold_scan_seconds'], 1e-9):.3f}x cold scan"),
        ("search: count + first 100 (median of 40)", r["search_median_seconds"], r.get("search_cpu_median_seconds"),
         TARGETS["search"], f"{r['search_median_seconds'] / max(r['full_list_median_seconds'], 1e-9):.2f}x every match"),
        ("search: count + first 100 (slowest of 40)", r["search_max_seconds"], r.get("search_cpu_max_seconds"),
         TARGETS["slowest search"], f"{r['search_max_seconds'] / max(r['full_list_max_seconds'], 1e-9):.2f}x every match"),
        ("search: every match, as `library list` (median)", r["full_list_median_seconds"], None, None,
         f"slowest {r['full_list_max_seconds'] * 1000:.1f} ms"),
    ]
    load = f", load average {r['load_average']:.1f}" if r.get("load_average") is not None else ""
    lines = [f"{r['files']:,} synthetic LoRAs, {r['bytes'] / 1e6:.0f} MB, {r['cpus']} CPUs{load}; "
             f"baseline (read every byte once): {r['baseline_read_seconds']:.2f} s",
             "| measure | time | CPU time | target | result | ratio |", "| --- | --- | --- | --- | --- | --- |"]

    def shown(seconds: float | None) -> str:
        if seconds is None:
            return ""
        return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"

    for name, seconds, cpu, target, ratio in rows:
        if target is None:
            lines.append(f"| {name} | {shown(seconds)} | {shown(cpu)} | | | {ratio} |")
            continue
        goal = f"≤ {target * 1000:.0f} ms" if target < 1 else f"≤ {target:.0f} s"
        lines.append(f"| {name} | {shown(seconds)} | {shown(cpu)} | {goal} | {'ok' if seconds <= target else 'SLOW'} "
                     f"| {ratio} |")
    return "\n".join(lines)


def cmd_bench_library(args: argparse.Namespace) -> int:
    result = run(args.count, args.dir, keep=args.keep)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0


def add_bench_command(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add `library` under `bench`."""
    p = bench_subparsers.add_parser("library", help="time scanning and searching N synthetic LoRAs")
    p.add_argument("--count", type=int, default=5000, help="number of LoRA files (default 5000)")
    p.add_argument("--dir", metavar="DIR", help="work folder (default: a temporary folder, deleted after)")
    p.add_argument("--keep", action="store_true", help="keep the generated files and library")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_library)
    return p
