"""Render the application icon from `resources/icons/craftstudio.svg` into every size the
platforms need: `python packaging/make_icons.py`.

Writes `resources/icons/craftstudio-256.png` (the window icon, shipped with the app) and, in
`packaging/icons/`, PNGs of 16–1024 px (Linux hicolor theme), `craftstudio.ico` (Windows) and
`craftstudio.icns` (macOS). Qt renders the SVG (QtSvg), Pillow writes ICO and ICNS.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "craftstudio.svg"
OUT = ROOT / "packaging" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def render(size: int):
    """The icon as a Pillow image of `size`×`size`."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs one)
    OUT.mkdir(parents=True, exist_ok=True)
    images = {size: render(size) for size in SIZES}
    for size, image in images.items():
        image.save(OUT / f"craftstudio-{size}.png", optimize=True)
    images[256].save(ROOT / "resources" / "icons" / "craftstudio-256.png", optimize=True)
    images[256].save(OUT / "craftstudio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    images[1024].save(OUT / "craftstudio.icns")
    print(f"Wrote {len(SIZES)} PNGs, craftstudio.ico and craftstudio.icns to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
