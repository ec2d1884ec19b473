"""The timeline strip under the curve editor: one thumbnail per step, centred under the
editor's x = k/(N−1); a click shows that step larger."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from craftstudio.ui.timeline_strip import TimelineStrip
from tests.ui.test_generate_panel import fill_in
from tests.workers.fake_engine import FakeEngine

TIMEOUT = 10_000


def test_thumbnails_sit_under_their_step_on_the_curve_editor(qtbot, make_studio):
    studio = make_studio(FakeEngine())
    window = studio.window
    window.resize(1400, 1000)
    panel = window.generate_panel
    fill_in(qtbot, panel)
    panel.steps_spin.setValue(4)
    strip = window.generate_panel.findChild(TimelineStrip)
    assert strip.isHidden()  # nothing to show before the first generation
    studio.generate.generate()
    qtbot.waitUntil(lambda: not studio.generate.is_busy, timeout=TIMEOUT)
    qtbot.waitUntil(strip.isVisible, timeout=TIMEOUT)
    editor = panel.craft_panel.editor
    rects = strip.thumbnail_rects()
    assert len(rects) == 4 and not any(r.isNull() for r in rects)
    for k, rect in enumerate(rects):
        centre = strip.strip.mapTo(window, rect.center())
        expected = editor.mapTo(window, editor.to_widget(k / 3, 0.0).toPoint())
        assert abs(centre.x() - expected.x()) <= 1
    qtbot.mouseClick(strip.strip, Qt.MouseButton.LeftButton, pos=rects[2].center())
    assert studio.timeline.selected == 2 and strip.large.isVisible()
    assert strip.large.pixmap().width() == 192
    qtbot.mouseClick(strip.strip, Qt.MouseButton.LeftButton, pos=rects[2].center() + QPoint(0, 0))
    assert studio.timeline.selected == -1 and strip.large.isHidden()
