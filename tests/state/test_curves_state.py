"""CurvesState: presets, clamped point edits, edits the domain refuses, undo, persistence."""

from __future__ import annotations

import pytest

from craftstudio.domain.curves import CurveSet, Interpolation, list_presets, load_preset
from craftstudio.state.curves_state import MIN_GAP, CurvesState


@pytest.fixture
def curves(qtbot) -> CurvesState:
    return CurvesState()


def test_starts_on_the_paper_preset(curves):
    assert curves.preset == "paper" and not curves.edited
    assert curves.curve_set == load_preset("paper")
    assert curves.presets() == list_presets()


def test_moving_a_point_clamps_x_between_neighbours_and_y_to_the_range(curves):
    curves.add_point(0.4, 0.5, "content")  # content: (0, 1) (0.4, 0.5) (0.7, 0)
    seen = []
    curves.curve_set_changed.connect(seen.append)
    assert curves.move_point(1, 0.95, 1.7, "content") == (pytest.approx(0.7 - MIN_GAP), 1.0)
    assert curves.move_point(1, -3.0, -1.0, "content") == (pytest.approx(MIN_GAP), 0.0)
    assert curves.curve("content").points[1] == (pytest.approx(MIN_GAP), 0.0)
    assert len(seen) == 2 and curves.edited and curves.preset == "paper"
    assert curves.curve_set.name == "paper (edited)"


def test_guidance_range_depends_on_relative(curves):
    assert curves.value_range("guidance") == (0.0, 5.0)  # paper's guidance is relative
    assert curves.move_point(0, 0.5, 99.0, "guidance") == (0.5, 5.0)
    assert curves.value_range("content") == (0.0, 1.0)


def test_add_point_inserts_in_order_and_selects_it(curves):
    curves.select("style")
    index = curves.add_point(0.5, 0.25)
    assert index == 2 and curves.selected == 2
    assert curves.curve("style").points == ((0.0, 0.0), (0.28, 1.0), (0.5, 0.25))


def test_edits_the_domain_refuses_leave_the_curves_and_explain(curves):
    before = curves.curve_set
    assert curves.add_point(0.7, 0.5, "content") is None  # x already taken
    assert "x must strictly increase" in curves.error
    assert curves.curve_set is before
    assert curves.remove_point(0, "guidance") is False  # its only point
    assert curves.error == "The guidance curve has no points: give at least one."
    assert curves.curve_set is before and not curves.edited
    curves.set_interpolation("smooth", "content")  # a valid edit clears the message
    assert curves.error == ""


def test_interpolation_change(curves):
    assert curves.set_interpolation(Interpolation.LINEAR, "content")
    assert curves.curve("content").interpolation is Interpolation.LINEAR
    assert curves.samples().content[10] == pytest.approx(1.0 - (10 / 19) / 0.7)


def test_samples_follow_steps_and_cfg(curves):
    curves.steps, curves.cfg_scale = 5, 4.0
    samples = curves.samples()
    assert samples.guidance == [4.0] * 5
    assert samples.content == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert samples.style == [0.0, 0.0, 1.0, 1.0, 1.0]  # x = 0.25 is before 0.28


def test_undo_and_redo_with_a_drag_as_one_step(curves):
    curves.begin_drag()
    for x in (0.5, 0.55, 0.6):
        curves.move_point(1, x, 0.0, "content")
    curves.end_drag()
    curves.remove_point(1, "style")
    assert curves.can_undo and not curves.can_redo
    assert curves.undo()
    assert curves.curve("style").points == ((0.0, 0.0), (0.28, 1.0))
    assert curves.undo()
    assert curves.curve_set == load_preset("paper") and not curves.edited
    assert not curves.can_undo and curves.can_redo
    assert curves.redo()
    assert curves.curve("content").points[1] == (0.6, 0.0) and curves.edited


def test_presets_and_revert(curves):
    assert curves.load_preset("guidance-interval")
    assert curves.preset == "guidance-interval" and not curves.edited
    curves.move_point(1, 0.3, 1.0, "guidance")
    assert curves.revert()
    assert curves.curve_set == load_preset("guidance-interval") and not curves.edited
    assert not curves.load_preset("no-such")
    assert "Unknown curve preset 'no-such'" in curves.error


def test_apply_curves_from_a_request(curves):
    curves.apply_curves(None)
    assert curves.preset == "constant" and not curves.edited
    curves.apply_curves(load_preset("content-early-style-late").to_dict())
    assert curves.preset == "content-early-style-late" and not curves.edited
    edited = CurvesState()
    edited.move_point(1, 0.5, 0.0, "content")
    curves.apply_curves(edited.curve_set.to_dict())
    assert curves.edited and curves.preset == "paper"
    assert curves.curve("content").points[1] == (0.5, 0.0)
    curves.apply_curves({"guidance": {}})
    assert "not restored" in curves.error and curves.curve("content").points[1] == (0.5, 0.0)


def test_settings_round_trip(curves):
    curves.load_preset("guidance-ramp")
    assert curves.settings() == {"preset": "guidance-ramp", "curves": None}
    again = CurvesState()
    again.restore_settings(curves.settings())
    assert again.preset == "guidance-ramp" and again.curve_set == load_preset("guidance-ramp")
    curves.add_point(0.5, 0.5, "style")
    again.restore_settings(curves.settings())
    assert again.edited and again.curve_set == curves.curve_set
    broken = CurvesState()
    broken.restore_settings({"preset": "constant", "curves": {"content": 3}})  # falls back
    assert broken.preset == "constant" and not broken.edited
    broken.restore_settings("nonsense")
    assert broken.curve_set == CurveSet.from_dict(load_preset("constant").to_dict())
