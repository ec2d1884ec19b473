"""`craftstudio bench gallery-ui`: how fast the Gallery page opens on a large history.

Writes N small PNGs (64×64, each with its request) and records them in a fresh catalog, spread
over days, then measures, offscreen at 1024×640, from opening the catalog to the first
screenful painted with its thumbnails:

- gallery: the Gallery page (paged model, thumbnails decoded off the GUI thread);
- baseline, in the same run: the plain approach — read every record of the history
  (`HistoryStore.generations(limit=N)`) and list them in a `QListWidget` (text only, no
  thumbnails at all), painted once.

Each is run `--repeats` times on a freshly opened catalog; medians are printed with their
ratio (gallery / baseline, lower is better).
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

SIZE = (1024, 640)


def make_history(home: Path, count: int) -> None:
    """`count` generations with one 64×64 PNG each, ten minutes apart (newest now)."""
    from PIL import Image

    from craftstudio.domain.generation import GenerateRequest, LoraRef
    from craftstudio.library.catalog import Catalog
    from craftstudio.library.png_params import save_png

    outputs = home / "outputs"
    now = time.time()
    with Catalog.open(home) as catalog, catalog.db.transaction() as conn:
        for i in range(count):
            request = GenerateRequest(
                model="/models/shapesworld", prompt=f"a shape {i} <c> in style {i % 7} <s>", width=64, height=64,
                steps=20, seed=i, content_lora=LoraRef(f"/loras/content-{i % 5}.safetensors", 1.0),
                style_lora=LoraRef(f"/loras/style-{i % 3}.safetensors", 0.5))
            colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
            path = save_png(Image.new("RGB", (64, 64), colour), outputs / f"{i:05d}.png", request,
                            seed=i, model_name="shapesworld")
            record_id = catalog.history.add_generation(request, [str(path)])
            conn.execute("UPDATE generations SET created_at = ? WHERE id = ?",
                         (now - (count - i) * 600, record_id))


def _settle(app: Any) -> None:
    for _ in range(3):
        app.processEvents()


def time_gallery(home: Path) -> dict[str, float]:
    """Seconds from opening the catalog to the first screenful painted with thumbnails."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QApplication

    from craftstudio.library.catalog import Catalog
    from craftstudio.state.gallery_state import GalleryState
    from craftstudio.state.generate_state import GenerateState
    from craftstudio.ui.gallery_page import GalleryPage
    from craftstudio.workers.job_runner import JobRunner

    app = QApplication.instance()
    runner = JobRunner()
    generate = GenerateState(runner)
    start = time.perf_counter()
    catalog = Catalog.open(home)
    opened = time.perf_counter()
    state = GalleryState(catalog, generate)
    page = GalleryPage(state)
    page.resize(*SIZE)
    page.show()
    _settle(app)
    page.grab()  # first paint: asks for the visible tiles' thumbnails
    first_paint = time.perf_counter()
    viewport: QRect = page.grid.viewport().rect()
    visible = [r for r in range(state.model.rowCount())
               if not state.model.entry(r).is_header
               and page.grid.visualRect(state.model.index(r)).intersects(viewport)]
    while any(page.cache.get(state.model.entry(r).path) is None for r in visible):
        page.cache.wait()
        _settle(app)
    page.grab()
    painted = time.perf_counter()
    result = {"open_catalog": opened - start, "first_paint": first_paint - start, "screenful": painted - start,
              "tiles": float(len(visible)), "rows_loaded": float(state.model.rowCount())}
    page.close()
    page.deleteLater()
    catalog.close()
    runner.shutdown()
    _settle(app)
    return result


def time_baseline(home: Path) -> float:
    """Seconds to read the whole history into a plain list widget and paint it once."""
    from PySide6.QtWidgets import QApplication, QListWidget

    from craftstudio.library.catalog import Catalog

    app = QApplication.instance()
    start = time.perf_counter()
    catalog = Catalog.open(home)
    records = catalog.history.generations(limit=1 << 30)
    widget = QListWidget()
    widget.resize(*SIZE)
    for record in records:
        widget.addItem(f"{Path(record.outputs[0]).name} — {record.request.prompt}")
    widget.show()
    _settle(app)
    widget.grab()
    seconds = time.perf_counter() - start
    widget.close()
    widget.deleteLater()
    catalog.close()
    _settle(app)
    return seconds


def run(count: int, repeats: int = 3, workdir: Path | None = None) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    base = workdir or Path(tempfile.mkdtemp(prefix="craftstudio-gallery-bench-"))
    home = base / "home"
    try:
        t = time.perf_counter()
        make_history(home, count)
        made = time.perf_counter() - t
        gallery_runs, baseline_runs = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            gallery_runs.append(time_gallery(home))
            baseline_runs.append(time_baseline(home))
        medians = {key: statistics.median(r[key] for r in gallery_runs) for key in gallery_runs[0]}
        baseline = statistics.median(baseline_runs)
        return {"images": count, "make_seconds": made, "repeats": repeats, "cpus": os.cpu_count(),
                "gallery": medians, "baseline_seconds": baseline,
                "ratio_screenful_vs_baseline": medians["screenful"] / baseline}
    finally:
        shutil.rmtree(base if workdir is None else home, ignore_errors=True)


def add_bench_command(bench_sub: Any) -> None:
    p = bench_sub.add_parser("gallery-ui", help="Gallery page open time on a large history vs reading it all")
    p.add_argument("--count", type=int, default=10_000, help="images in the history (default 10000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the results here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    result = run(args.count, args.repeats)
    g = result["gallery"]
    print(f"history: {result['images']} images (made in {result['make_seconds']:.1f} s), "
          f"{result['repeats']} runs, {result['cpus']} CPUs, offscreen {SIZE[0]}×{SIZE[1]}")
    print(f"gallery page: catalog open {g['open_catalog'] * 1000:.0f} ms, first paint {g['first_paint'] * 1000:.0f} ms, "
          f"first screenful with {g['tiles']:.0f} thumbnails {g['screenful'] * 1000:.0f} ms "
          f"({g['rows_loaded']:.0f} rows loaded)")
    print(f"baseline (read the whole history into a plain list, no thumbnails): "
          f"{result['baseline_seconds'] * 1000:.0f} ms")
    print(f"ratio gallery screenful / baseline: {result['ratio_screenful_vs_baseline']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
