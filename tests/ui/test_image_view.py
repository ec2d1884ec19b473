"""ImageView: small images enlarged by a whole factor with hard pixel edges, large ones fitted."""

from __future__ import annotations

from PIL import Image

from craftstudio.ui.image_view import ImageView


def _checker(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size))
    image.putdata([(255, 255, 255) if (x + y) % 2 else (0, 0, 0) for y in range(size) for x in range(size)])
    return image


def test_a_small_image_is_zoomed_by_a_whole_factor_without_blending_pixels(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    view.show_images([_checker(64)])
    zoom = view.zoom()
    assert zoom == int(zoom) and zoom >= 2
    shown = view.label.pixmap().toImage()
    assert shown.width() == 64 * zoom
    # Nearest neighbour: every screen pixel is pure black or pure white, no grey from smoothing.
    colours = {shown.pixelColor(x, y).name() for x in range(0, shown.width(), 3) for y in range(0, 40)}
    assert colours == {"#000000", "#ffffff"}
    assert view.caption.text() == f"64 × 64 px · shown at {int(zoom)}×"


def test_a_large_image_is_fitted_and_clear_brings_back_the_placeholder(qtbot):
    view = ImageView("Your image appears here.")
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    view.show_images([Image.new("RGB", (1024, 1024), "red")])
    assert 0 < view.zoom() < 1 and "%" in view.caption.text()
    view.show_images([])
    assert view.pixmap().isNull() and view.label.text() == "Your image appears here."
    assert view.caption.text() == ""
