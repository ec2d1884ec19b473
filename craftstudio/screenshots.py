"""`python -m craftstudio screenshots --out DIR`: one PNG per area of the window, from the code.

The window opens offscreen on a temporary data folder holding a small library (a few synthetic
LoRAs with real key layouts, plus the demo model, backbone and LoRAs registered in place) and
a history, with the dark theme. The Generate page runs the real demo generation (64×64, CPU)
before it is captured. So the pictures in the README and docs/ always show the app as it is:
regenerate them with this command after changing a page.

Besides one PNG per area, `compare.png` shows the Generate page's compare grid (the CRAFT
explorer) for the demo pair, and the Train page shows a content LoRA's references (ShapesWorld
pictures rendered for the occasion). `settings-gpus.png` shows the Settings page as on a computer
with two GPUs (two listed GPUs are staged in its state, both ticked for a batch), whatever this
computer has. `Shot.placeholder` says if an area still shows "Coming soon" (none should).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SIZE = (1024, 640)
GENERATE_TIMEOUT_S = 600
SETTLE_MS = 1500  # thumbnails are decoded off the GUI thread: let them arrive before a grab
REFERENCES = (("heart", "stripes"), ("heart", "dots"), ("heart", "flat"), ("heart", "gradient"))
# (file stem, family, rank, trigger tags): what the synthetic library holds besides the demo.
SYNTHETIC_LORAS = (
    ("ink sketch", "sd1", 4, {"ink": 30, "sketch": 25}),
    ("watercolor", "sd1", 8, {"watercolor": 40, "paper texture": 12}),
    ("neon city", "sdxl", 8, {"neon": 35, "city": 20}),
    ("ginger cat", "sd1", 16, {"ginger cat": 38, "whiskers": 9}),
    ("paper cutout", "sd2", 4, {"paper cutout": 22}),
)
STAGED_GPUS = ("NVIDIA GeForce RTX 4090, 24 GB", "NVIDIA GeForce RTX 4090, 24 GB")


@dataclass(frozen=True)
class Shot:
    area: str
    path: Path
    placeholder: bool  # the page says "Coming soon"


def file_name(area: str) -> str:
    return area.lower().replace(" ", "-") + ".png"


def take_screenshots(out: Path, *, size: tuple[int, int] = SIZE, steps: int = 20, engine=None,
                     pages: Iterable[tuple[str, object]] = ()) -> list[Shot]:
    """Capture every area into `out` (made if needed); a QApplication must exist. `steps`: the
    demo generation's; `engine` replaces the real one (tests)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("CRAFTSTUDIO_HOME")
    with tempfile.TemporaryDirectory(prefix="craftstudio-shots-") as tmp:
        home = Path(tmp) / "home"
        os.environ["CRAFTSTUDIO_HOME"] = str(home)
        try:
            return _capture(home, Path(tmp) / "My LoRAs", out, size, steps, engine, pages)
        finally:
            if previous is None:
                os.environ.pop("CRAFTSTUDIO_HOME", None)
            else:
                os.environ["CRAFTSTUDIO_HOME"] = previous


def _capture(home: Path, loras: Path, out: Path, size: tuple[int, int], steps: int, engine,
             pages) -> list[Shot]:
    from PySide6.QtWidgets import QApplication, QLabel

    from craftstudio.app import build_studio
    from craftstudio.library.paths import AppPaths
    from craftstudio.ui.theme import apply_theme

    paths = AppPaths(home)
    _fill_library(paths, loras)
    app = QApplication.instance()
    palette, style_sheet = app.palette(), app.styleSheet()
    studio = build_studio(paths=paths, engine=engine, pages=pages)
    try:
        studio.settings.change("loras_folder", str(loras))
        apply_theme(studio.settings.theme)
        window = studio.window
        window.resize(*size)
        window.show()
        # One thread: on a busy machine torch's default (all cores) can be many times slower,
        # and the status line in the picture should show a typical time (docs/settings.md).
        studio.settings.change("cpu_threads", 1 if engine is None else 0)
        _generate_demo(studio, steps)
        studio.settings.change("cpu_threads", 0)
        _record_history(paths, studio.generate)
        _fill_train_references(studio, home.parent / "references")
        # The compare grid first: its cells then fill the gallery beside the demo image.
        window.show_area("Generate")
        _run_compare(studio)
        _settle()
        compare = _grab(window, out / "compare.png")
        panel = window.generate_panel
        if panel.side_tabs is not None:
            panel.side_tabs.setCurrentIndex(0)  # the image again
        shots = []
        for area in window.areas:
            window.show_area(area)
            _settle()
            page = window.page(area)
            placeholder = any(label.text().startswith("Coming soon") for label in page.findChildren(QLabel))
            shots.append(Shot(area, _grab(window, out / file_name(area)), placeholder))
        shots.append(Shot("Compare", compare, False))
        shots += _image_to_image(studio, home.parent / "pictures", out)
        shots.append(_settings_gpus(studio, out))
        shots.append(_train_advanced(studio, out))
        return shots
    finally:
        studio.shutdown()
        studio.window.deleteLater()
        app.setPalette(palette)  # leave the application as it was (tests share it)
        app.setStyleSheet(style_sheet)


def _image_to_image(studio, folder: Path, out: Path) -> list[Shot]:
    """A ShapesWorld star in stripes restyled by the demo style LoRA (the Image tab), and the
    same picture with a painted mask in the Init image tab."""
    from PySide6.QtGui import QImage

    from craftstudio.demo.world import render

    folder.mkdir(parents=True, exist_ok=True)
    picture = folder / "star-in-stripes.png"
    render("star", "stripes", seed=3).save(picture)
    window, state = studio.window, studio.generate
    window.show_area("Generate")
    panel = window.generate_panel
    saved_prompt = state.prompt
    state.use_init_image(picture)
    state.prompt, state.pictures.strength = "a star in ohwx style <s:0.35>", 0.55
    studio.settings.change("cpu_threads", 1)  # as for the demo: a typical time in the status line
    _run_and_wait(state)
    studio.settings.change("cpu_threads", 0)
    panel.side_tabs.setCurrentIndex(0)
    scroll = panel.settings_scroll.verticalScrollBar()  # vertically only: the column never scrolls sideways
    scroll.setValue(min(scroll.maximum(), panel.picture_settings.y() - 160))
    _settle()
    shots = [Shot("Image to image", _grab(window, out / "image-to-image.png"), False)]
    mask = QImage(64, 64, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    for y in range(8, 56):
        for x in range(30, 60):
            mask.setPixel(x, y, 0xFFFFFFFF)
    panel.picture_canvas.painter.set_mask(mask)
    panel.side_tabs.setCurrentWidget(panel.picture_canvas)
    _settle()
    shots.append(Shot("Mask", _grab(window, out / "mask.png"), False))
    state.pictures.clear()
    state.prompt = saved_prompt
    return shots


def _settings_gpus(studio, out: Path) -> Shot:
    """The Settings page with two GPUs listed and ticked for a batch (staged in its state)."""
    from craftstudio.workers.train_job import DeviceInfo

    settings = studio.settings
    studio.window.show_area("Settings")
    settings.use_devices(DeviceInfo("cuda", STAGED_GPUS[0].split(",")[0], 24.0, False, STAGED_GPUS))
    settings.gpu_selection.chosen = ",".join(str(n) for n in range(len(STAGED_GPUS)))
    _settle()
    return Shot("Settings GPUs", _grab(studio.window, out / "settings-gpus.png"), False)


def _train_advanced(studio, out: Path) -> Shot:
    """The Train page with its Advanced settings open (GPUs listed by the staged probe above)."""
    studio.window.show_area("Train")
    from PySide6.QtWidgets import QScrollArea

    page = studio.window.page("Train")
    page.advanced_toggle.click()
    _settle()
    page.findChild(QScrollArea).ensureWidgetVisible(page.fast_check)
    _settle()
    try:
        return Shot("Train advanced", _grab(studio.window, out / "train-advanced.png"), False)
    finally:
        page.advanced_toggle.click()


def _settle() -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(SETTLE_MS, loop.quit)
    loop.exec()


def _grab(window, path: Path) -> Path:
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def _fill_train_references(studio, folder: Path) -> None:
    """A content LoRA's references on the Train page: the demo world's hearts, captioned."""
    from craftstudio.demo.world import render

    folder.mkdir(parents=True, exist_ok=True)
    for index, (shape, style) in enumerate(REFERENCES):
        render(shape, style, seed=index).save(folder / f"{shape}-{style}.png")
    train = studio.train
    train.kind, train.trigger = "content", "zkq heart"
    train.images.set_folder(folder)


def _run_compare(studio) -> None:
    """The CRAFT explorer's fusion grid for the current (demo) settings, shown in its tab."""
    from PySide6.QtCore import QEventLoop, QTimer

    from craftstudio.ui.compare_view import CompareView

    panel = studio.window.generate_panel
    view = panel.findChild(CompareView)
    if panel.side_tabs is not None and view is not None:
        panel.side_tabs.setCurrentWidget(view)
    loop = QEventLoop()

    def finished(busy: bool) -> None:
        if not busy:
            loop.quit()

    studio.compare.is_busy_changed.connect(finished)
    QTimer.singleShot(GENERATE_TIMEOUT_S * 1000, loop.quit)
    try:
        if studio.compare.run_fusion_grid() is None:
            raise RuntimeError(f"the compare grid was refused: {studio.generate.error}")
        loop.exec()
    finally:
        studio.compare.is_busy_changed.disconnect(finished)


def _fill_library(paths, loras: Path) -> None:
    """A few synthetic LoRAs and the shipped demo files, scanned into the catalog."""
    from craftstudio.domain.resources import resources_dir
    from craftstudio.library.catalog import Catalog
    from craftstudio.library.synthetic import kohya, kohya_metadata, write_safetensors

    for name, family, rank, tags in SYNTHETIC_LORAS:
        write_safetensors(loras / f"{name}.safetensors", kohya(family, rank),
                          kohya_metadata(name, family, rank, tags))
    folders = [loras]
    for demo in (resources_dir() / "demo", resources_dir() / "models" / "shapesworld"):
        if demo.exists():
            folders.append(demo)
    with Catalog.open(paths.root) as catalog:
        catalog.scan(folders)


def _generate_demo(studio, steps: int) -> None:
    """Run the real demo generation and wait for it (the GUI thread keeps processing events).
    A one-step run first loads the model, so the status line shows the time an image takes."""
    state = studio.generate
    if not state.model:
        raise RuntimeError("the demo model is not installed: screenshots need it")
    state.random_seed = False
    state.width = state.height = 64
    state.seed, state.steps = 7, 1
    _run_and_wait(state)
    studio.gallery.delete([str(p) for p in state.image_paths])  # the warm-up is not worth showing
    state.steps = steps
    _run_and_wait(state)


def _run_and_wait(state) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()

    def finished(busy: bool) -> None:
        if not busy:
            loop.quit()

    state.is_busy_changed.connect(finished)
    QTimer.singleShot(GENERATE_TIMEOUT_S * 1000, loop.quit)
    try:
        if state.generate() is None:
            raise RuntimeError(f"the demo generation was refused: {state.error}")
        loop.exec()
    finally:
        state.is_busy_changed.disconnect(finished)
    if state.is_busy or state.error or not state.image_paths:
        raise RuntimeError(f"the demo generation did not finish: {state.error or state.status}")


def _record_history(paths, state) -> None:
    from craftstudio.library.catalog import Catalog

    outputs = [str(p) for p in state.image_paths]
    with Catalog.open(paths.root) as catalog:
        if not any(catalog.history.generation_for_output(path) for path in outputs):
            catalog.history.add_generation(state.request(), outputs)  # unless the app recorded it


def main(out: Path) -> int:
    """The CLI command: capture offscreen, print one line per file."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = QApplication.instance() or QApplication(["craftstudio-screenshots"])
    app.setApplicationName("CraftStudio")
    for shot in take_screenshots(out):
        note = " (placeholder)" if shot.placeholder else ""
        print(f"{shot.path}{note}")
    return 0
