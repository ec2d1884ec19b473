"""TimelineState: one frame per preview step of the current generation, at x = k/(N−1)."""

from __future__ import annotations

from craftstudio.state.timeline_state import TimelineState
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


def test_one_thumbnail_per_preview_step_at_its_x(qtbot, runner, tmp_path):
    generate = make_state(runner, tmp_path, FakeEngine())
    generate.steps, generate.batch_count = 5, 2
    timeline = TimelineState(runner, generate)
    generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    assert [f.step for f in timeline.frames] == [0, 1, 2, 3, 4]  # the batch's first image only
    assert [f.x for f in timeline.frames] == [0.0, 0.25, 0.5, 0.75, 1.0]
    timeline.select(2)
    assert timeline.selected_frame.step == 2
    with qtbot.waitSignal(timeline.frames_changed, timeout=TIMEOUT, check_params_cb=lambda f: f == []):
        generate.generate()  # a new job clears the strip
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    assert len(timeline.frames) == 5 and timeline.selected == -1


def test_other_jobs_do_not_reach_the_timeline(qtbot, runner, tmp_path):
    generate = make_state(runner, tmp_path, FakeEngine())
    other = make_state(runner, tmp_path, FakeEngine())
    timeline = TimelineState(runner, generate)
    other.generate()
    qtbot.waitUntil(lambda: not other.is_busy, timeout=TIMEOUT)
    assert timeline.frames == []
