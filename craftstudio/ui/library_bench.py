"""`craftstudio bench library-ui`: the Library page at N items (default 20,000), measured offscreen.

Makes N synthetic LoRAs (as `bench library`, a preview picture beside every fourth), scans them
into a catalog, then measures what an artist feels, against a baseline in the same run (the
page opened on an empty catalog):

- open: from the catalog being open to the first screenful of cards painted;
- keystroke: from the search's debounce firing to the grid repainted, for each letter typed;
- scroll: one screen down per step through the first `SCROLL_STEPS` screens, each step painted;
  the cards whose picture was not decoded yet are painted with a placeholder (counted), never
  waited for, while the pictures are decoded on the thumbnail threads;
- memory: the process's resident memory after all that, less before the page was built.

Offscreen (`QT_QPA_PLATFORM=offscreen`) a paint is a real raster paint into an image: `grab()`.
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

TARGETS = {"open": 1.0, "keystroke": 0.100, "memory": 300e6}
SCROLL_STEPS = 60
WINDOW = (1400, 900)
KEYSTROKES = ["w", "wa", "wat", "wate", "water", "waterc", "watercolor", "watercolor c", "watercolor ca",
              "", "r", "ro", "rob", "robo", "robot", "robot 0", "robot 01", "", "水", "水彩"]
PICTURES = 8  # distinct preview images, linked beside every fourth file


def _rss() -> int:
    """Resident memory of this process, bytes."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_previews(folder: Path, every: int = 4) -> tuple[int, int]:
    """A `.preview.png` beside every `every`-th LoRA (hard links to a few pictures);
    returns (previews, of which new)."""
    from PIL import Image, ImageDraw

    pictures = []
    for n in range(PICTURES):
        image = Image.new("RGB", (384, 512), (40 + 25 * n, 90, 200 - 20 * n))
        draw = ImageDraw.Draw(image)
        for k in range(5):
            draw.ellipse([30 + 50 * k, 60 * k + 20 * n, 150 + 50 * k, 180 + 60 * k], fill=(255 - 30 * k, 30 * n, 90))
        path = folder / f".picture-{n}.png"
        image.save(path)
        pictures.append(path)
    made = new = 0
    for i, lora in enumerate(sorted(folder.rglob("*.safetensors"))):
        if i % every:
            continue
        dest = lora.with_name(lora.name[: -len(".safetensors")] + ".preview.png")
        if not dest.exists():
            new += 1
            try:
                os.link(pictures[i % PICTURES], dest)
            except OSError:
                shutil.copyfile(pictures[i % PICTURES], dest)
        made += 1
    return made, new


def _settle(app: Any, rounds: int = 3) -> None:
    for _ in range(rounds):
        app.processEvents()


def _until_painted(app: Any, page: _Page, before: int, limit: int = 200) -> None:
    """Run the event loop until the grid has painted cards again (the view's own paint)."""
    for _ in range(limit):
        app.processEvents()
        if page.page.delegate.painted > before:
            return


class _Clock:
    """Wall time and this (GUI) thread's CPU time of one measure: on a busy machine the first
    grows with the load, the second is what the page itself costs."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.thread_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.thread_time() - self.cpu


class _Page:
    """One Library page over a catalog, as the app builds it (settings-free)."""

    def __init__(self, catalog: Any, cache: Path) -> None:
        from craftstudio.state.generate_state import GenerateState
        from craftstudio.state.library_state import LibraryState
        from craftstudio.ui.library_page import LibraryPage
        from craftstudio.workers.job_runner import JobRunner

        self.runner = JobRunner()
        self.generate = GenerateState(self.runner)
        self.state = LibraryState(catalog, self.runner, self.generate, thumbnail_cache=cache, watch=False)
        self.state.start(scan=False)
        self.page = LibraryPage(self.state)
        self.page.resize(*WINDOW)
        self.page.show()

    def close(self) -> None:
        self.state.shutdown()
        self.runner.shutdown()
        self.page.close()
        self.page.deleteLater()


def _open(app: Any, catalog_factory: Any, cache: Path) -> tuple[tuple[float, float], _Page, Any]:
    clock = _Clock()
    catalog = catalog_factory()
    page = _Page(catalog, cache)
    _until_painted(app, page, 0)
    return clock.stop(), page, catalog


def _keystrokes(app: Any, page: _Page) -> list[tuple[float, float]]:
    times = []
    for text in KEYSTROKES:
        page.state.search_text = text  # starts the debounce; the measure starts when it fires
        before = page.page.delegate.painted
        clock = _Clock()
        page.state.flush_search()
        if page.state.total:
            _until_painted(app, page, before)
        else:  # nothing to paint (the empty baseline): the page's own work only
            _settle(app)
        times.append(clock.stop())
    page.state.search_text = ""
    page.state.flush_search()
    _settle(app)
    return times


def _scroll(app: Any, page: _Page) -> tuple[list[tuple[float, float]], int, int]:
    grid = page.page.grid
    bar = grid.verticalScrollBar()
    delegate = page.page.delegate
    painted0, placeholders0 = delegate.painted, delegate.placeholders
    times = []
    for _ in range(SCROLL_STEPS):
        if bar.value() >= bar.maximum() and not page.state.model.canFetchMore():
            break  # the end of the list
        before = delegate.painted
        clock = _Clock()
        bar.setValue(bar.value() + grid.viewport().height())
        _until_painted(app, page, before)  # the view fetches the next page when it nears the end
        times.append(clock.stop())
    return times, delegate.painted - painted0, delegate.placeholders - placeholders0


def run(count: int = 20000, workdir: str | Path | None = None, keep: bool = False) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from craftstudio.library import bench
    from craftstudio.library.catalog import Catalog

    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="craftstudio-bench-ui-"))
    files, home, empty_home = base / "loras", base / "home", base / "empty-home"
    try:
        start = time.perf_counter()
        if not (files.exists() and sum(1 for _ in files.rglob("*.safetensors")) == count):
            shutil.rmtree(files, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
            bench.make_files(files, count)
        previews, _ = make_previews(files)
        with Catalog.open(home) as catalog:
            report = catalog.scan([files])  # incremental: a reused folder costs a moment
            if report.added + report.updated:
                catalog.items.analyse()
        prepared = time.perf_counter() - start
        shutil.rmtree(empty_home, ignore_errors=True)
        shutil.rmtree(base / "cache", ignore_errors=True)

        for _ in range(2):  # the first page pays Qt's one-time start (fonts, style): keep the second
            baseline, empty_page, empty_catalog = _open(app, lambda: Catalog.open(empty_home), base / "cache-empty")
            if _ == 0:
                empty_page.close()
                empty_catalog.close()
                _settle(app)
        empty_keys = _keystrokes(app, empty_page)
        empty_page.close()
        empty_catalog.close()
        _settle(app)

        rss_before = _rss()
        opened, page, catalog = _open(app, lambda: Catalog.open(home), base / "cache")
        visible = page.page.delegate.painted
        keys = _keystrokes(app, page)
        scroll, painted, placeholders = _scroll(app, page)
        page.state.thumbnails.wait_idle()
        _settle(app, 5)
        rss_after = _rss()
        wall = [w for w, _ in keys]
        result = {
            "items": count, "previews": previews, "prepare_seconds": prepared, "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "baseline_open_seconds": baseline[0], "baseline_open_cpu_seconds": baseline[1],
            "open_seconds": opened[0], "open_cpu_seconds": opened[1], "cards_in_first_paint": visible,
            "matching": page.state.total, "fits_family": page.state.model_family,
            "baseline_keystroke_median_seconds": statistics.median(w for w, _ in empty_keys),
            "keystroke_median_seconds": statistics.median(wall), "keystroke_max_seconds": max(wall),
            "keystroke_cpu_median_seconds": statistics.median(c for _, c in keys),
            "keystroke_cpu_max_seconds": max(c for _, c in keys),
            "scroll_steps": len(scroll), "scroll_median_seconds": statistics.median(w for w, _ in scroll),
            "scroll_max_seconds": max(w for w, _ in scroll),
            "scroll_cpu_median_seconds": statistics.median(c for _, c in scroll),
            "scroll_cpu_max_seconds": max(c for _, c in scroll), "scroll_cards_painted": painted,
            "scroll_placeholders": placeholders, "rows_loaded": page.state.model.rowCount(),
            "memory_growth_bytes": rss_after - rss_before,
        }
        page.close()
        catalog.close()
        return result
    finally:
        if not keep:
            shutil.rmtree(base if not workdir else base / "cache", ignore_errors=True)
            shutil.rmtree(empty_home, ignore_errors=True)


def format_table(r: dict[str, Any]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    def verdict(value: float, target: float) -> str:
        return "ok" if value <= target else "SLOW"

    base_open = max(r["baseline_open_seconds"], 1e-9)
    base_key = max(r["baseline_keystroke_median_seconds"], 1e-9)
    fits = f", fitting {r['fits_family']}" if r["fits_family"] else ""
    load = f" (load average {r['load_average']:.1f} at the end)" if r.get("load_average") is not None else ""
    lines = [
        f"{r['items']:,} LoRAs ({r['previews']:,} with a preview; {r['matching']:,} shown{fits}), "
        f"{r['cpus']} CPUs{load}, window {WINDOW[0]}×{WINDOW[1]} offscreen",
        f"baseline: the page on an empty catalog opens in {ms(r['baseline_open_seconds'])}, "
        f"a keystroke takes {ms(r['baseline_keystroke_median_seconds'])}",
        "| measure | wall time | GUI-thread CPU | target | result | ratio to baseline |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| open: catalog open → first screenful painted ({r['cards_in_first_paint']} cards) | "
        f"{ms(r['open_seconds'])} | {ms(r['open_cpu_seconds'])} | ≤ 1000 ms | "
        f"{verdict(r['open_seconds'], TARGETS['open'])} | {r['open_seconds'] / base_open:.2f}x |",
        f"| keystroke → view repainted (median of {len(KEYSTROKES)}) | {ms(r['keystroke_median_seconds'])} | "
        f"{ms(r['keystroke_cpu_median_seconds'])} | ≤ 100 ms | "
        f"{verdict(r['keystroke_median_seconds'], TARGETS['keystroke'])} | "
        f"{r['keystroke_median_seconds'] / base_key:.1f}x |",
        f"| keystroke → view repainted (slowest) | {ms(r['keystroke_max_seconds'])} | "
        f"{ms(r['keystroke_cpu_max_seconds'])} | ≤ 100 ms | "
        f"{verdict(r['keystroke_max_seconds'], TARGETS['keystroke'])} | {r['keystroke_max_seconds'] / base_key:.1f}x |",
        f"| scroll one screen → painted (median of {r['scroll_steps']}) | {ms(r['scroll_median_seconds'])} | "
        f"{ms(r['scroll_cpu_median_seconds'])} | | | slowest {ms(r['scroll_max_seconds'])} "
        f"(CPU {ms(r['scroll_cpu_max_seconds'])}) |",
        f"| cards painted while scrolling / of them before their picture arrived | "
        f"{r['scroll_cards_painted']:,} / {r['scroll_placeholders']:,} | | never wait | ok | "
        f"{r['rows_loaded']:,} rows loaded of {r['matching']:,} |",
        f"| memory growth | {r['memory_growth_bytes'] / 1e6:.0f} MB | | ≤ 300 MB | "
        f"{verdict(r['memory_growth_bytes'], TARGETS['memory'])} | |",
    ]
    return "\n".join(lines)


def cmd_bench_library_ui(args: argparse.Namespace) -> int:
    result = run(args.count, args.dir, keep=args.keep)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
