"""The Gallery page in the whole studio: thumbnails, viewer (crisp zoom, arrow keys, settings),
drag-out mime data, and the path from a compare cell to the viewer."""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import Qt

from craftstudio.library.png_params import save_png
from craftstudio.ui.compare_view import CompareView
from craftstudio.ui.queue_view import QueueView
from tests.ui.test_generate_panel import fill_in
from tests.workers.fake_engine import FakeEngine, quick_request

TIMEOUT = 10_000


def _generate(qtbot, studio, count=3):
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    studio.generate.random_seed, studio.generate.seed, studio.generate.repeat = False, 50, count
    studio.generate.generate()
    qtbot.waitUntil(lambda: not studio.generate.is_busy, timeout=TIMEOUT)


def test_generated_images_appear_as_thumbnails_and_open_in_the_viewer(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    _generate(qtbot, studio)
    window, gallery = studio.window, studio.gallery
    window.show_area("Gallery")
    page = window.page("Gallery")
    assert gallery.count == 3 and page.count_label.text() == "3 generations"
    rows = gallery.model.image_rows()
    paths = [gallery.model.entry(r).path for r in rows]
    qtbot.waitUntil(lambda: all(page.cache.get(p) is not None for p in paths), timeout=TIMEOUT)
    assert page.cache.get(paths[0]).width() == 64
    # Drag out: the files themselves.
    mime = gallery.model.mimeData([gallery.model.index(r) for r in rows])
    assert [u.toLocalFile() for u in mime.urls()] == paths
    page.open_row(rows[0])
    assert page.stack.currentWidget() is page.viewer
    assert "seed 52" not in page.viewer.settings_label.text()  # the table, not a sentence
    assert ">52<" in page.viewer.settings_label.text()
    qtbot.keyClick(page.viewer, Qt.Key.Key_Right)
    assert gallery.current.seed == 51
    qtbot.keyClick(page.viewer, Qt.Key.Key_Escape)
    assert page.stack.currentIndex() == 0 and gallery.current is None


def test_viewer_enlarges_small_images_without_blurring(qtbot, make_studio, tmp_path):
    studio = make_studio(FakeEngine())
    checker = Image.new("RGB", (64, 64))
    checker.putdata([(255, 0, 0) if (x + y) % 2 else (0, 0, 255) for y in range(64) for x in range(64)])
    path = save_png(checker, tmp_path / "checker.png", quick_request(), seed=5, model_name="m")
    studio.catalog.history.add_generation(quick_request(), [str(path)])
    studio.gallery.refresh()
    studio.window.show_area("Gallery")
    studio.gallery.open_row(studio.gallery.model.image_rows()[0])
    canvas = studio.window.page("Gallery").viewer.canvas
    canvas.set_scale(4)
    qtbot.waitUntil(lambda: canvas.width() >= 256 and canvas.height() >= 256, timeout=TIMEOUT)
    image = canvas.grab().toImage()
    left, top = (canvas.width() - 256) // 2, (canvas.height() - 256) // 2
    # A 1-pixel checkerboard at 400%: 4×4 blocks of exactly the two colours, nothing blended.
    row = {image.pixelColor(left + x, top + 130).name() for x in range(4, 250)}
    assert row == {"#ff0000", "#0000ff"}


def test_compare_cell_opens_in_the_gallery_viewer(qtbot, make_studio, tmp_path):
    engine = FakeEngine()
    studio = make_studio(engine)
    panel = studio.window.generate_panel
    fill_in(qtbot, panel)
    for role in ("content", "style"):
        lora = tmp_path / f"{role}.safetensors"
        lora.write_bytes(b"x")
        setattr(studio.generate.craft, f"{role}_lora", str(lora))
    view = studio.window.generate_panel.findChild(CompareView)
    with qtbot.waitSignal(studio.compare.cells_changed, timeout=TIMEOUT):
        qtbot.mouseClick(view.fusion_button, Qt.MouseButton.LeftButton)
    assert [t.text() for t in view.tiles][:2] == ["direct merge", "CRAFT"]
    qtbot.mouseClick(view.tiles[3], Qt.MouseButton.LeftButton)
    assert studio.window.current_area == "Gallery"
    assert studio.gallery.current.record.request.switches.routing is False
    assert "no routing" in studio.window.page("Gallery").viewer.settings_label.text()


def test_queue_view_cancels_and_reorders_waiting_jobs(qtbot, make_studio):
    engine = FakeEngine().hold()
    studio = make_studio(engine)
    fill_in(qtbot, studio.window.generate_panel)
    studio.generate.random_seed, studio.generate.seed, studio.generate.repeat = False, 1, 3
    studio.generate.generate()
    qtbot.waitUntil(lambda: studio.queue.running_label != "", timeout=TIMEOUT)
    view = studio.window.generate_panel.findChild(QueueView)
    model = studio.queue.model
    last = model.job(2).job_id
    view.select_job(last)
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    assert studio.runner.pending[0] == last
    view.select_job(last)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    asked = []
    studio.queue.confirm_close = lambda question: asked.append(question) or False
    assert not studio.window.close() and studio.window.isVisible()  # the user said no
    assert asked and asked[0].endswith("Close CraftStudio and cancel them?")
    engine.release()
    qtbot.waitUntil(lambda: not studio.generate.is_busy, timeout=TIMEOUT)
    assert [c.seed for c in engine.calls] == [1, 2]
    assert studio.queue.status_of(last) == "cancelled"
