"""Curves: interpolation, sampling, validation, JSON round trip and the shipped presets."""

from __future__ import annotations

import json

import pytest

from craftstudio.domain.curves import (
    Curve,
    CurveError,
    CurveSet,
    Interpolation,
    list_presets,
    load_preset,
    progress,
)
from craftstudio.domain.errors import RequestError

POINTS = ((0.2, 0.0), (0.5, 1.0), (0.8, 0.5))

# interpolation, x, expected value
VALUES = [
    ("step", 0.0, 0.0), ("step", 0.2, 0.0), ("step", 0.49, 0.0), ("step", 0.5, 1.0),
    ("step", 0.79, 1.0), ("step", 0.8, 0.5), ("step", 1.0, 0.5),
    ("linear", 0.0, 0.0), ("linear", 0.35, 0.5), ("linear", 0.5, 1.0), ("linear", 0.65, 0.75),
    ("linear", 1.0, 0.5),
    ("smooth", 0.1, 0.0), ("smooth", 0.2, 0.0), ("smooth", 0.5, 1.0), ("smooth", 0.8, 0.5),
    ("smooth", 0.95, 0.5),
]


@pytest.mark.parametrize(("interpolation", "x", "expected"), VALUES)
def test_values_at_and_between_points(interpolation, x, expected):
    assert Curve(POINTS, interpolation).value(x) == pytest.approx(expected)


def test_smooth_is_monotone_between_monotone_points_without_overshoot():
    curve = Curve(((0.0, 0.0), (0.1, 0.9), (0.5, 1.0), (0.6, 1.0), (1.0, 0.0)), Interpolation.SMOOTH)
    values = [curve.value(k / 1000) for k in range(1001)]
    rising, flat, falling = values[:501], values[500:601], values[600:]
    assert all(a <= b + 1e-12 for a, b in zip(rising, rising[1:], strict=False))
    assert all(v == pytest.approx(1.0) for v in flat)
    assert all(a >= b - 1e-12 for a, b in zip(falling, falling[1:], strict=False))
    assert min(values) >= 0.0 and max(values) <= 1.0 + 1e-12
    # A smooth curve is smooth: it differs from the linear one between points.
    assert curve.value(0.3) != pytest.approx(Curve(curve.points, "linear").value(0.3))


def test_smooth_with_two_points_is_a_straight_line():
    curve = Curve(((0.0, 0.0), (1.0, 2.0)), "smooth")
    assert curve.value(0.25) == pytest.approx(0.5)


def test_single_point_is_constant():
    for interpolation in Interpolation:
        assert Curve(((0.4, 0.3),), interpolation).sample(5) == [0.3] * 5


def test_sample_uses_k_over_n_minus_1():
    assert progress(1) == [0.0]
    assert progress(2) == [0.0, 1.0]
    assert progress(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    line = Curve(((0.0, 0.0), (1.0, 1.0)), "linear")
    assert line.sample(1) == [0.0]
    assert line.sample(2) == [0.0, 1.0]
    with pytest.raises(CurveError, match="at least one step"):
        line.sample(0)


def test_paper_preset_at_50_steps():
    samples = load_preset("paper").sample(50, cfg_scale=7.5)
    content_steps = [k + 1 for k, v in enumerate(samples.content) if v == 1.0]
    style_steps = [k + 1 for k, v in enumerate(samples.style) if v == 1.0]
    assert content_steps == list(range(1, 36))
    assert style_steps == list(range(15, 51))
    assert set(samples.content) | set(samples.style) == {0.0, 1.0}
    assert samples.guidance == [7.5] * 50


@pytest.mark.parametrize(("n", "content", "style"), [(1, [1.0], [0.0]), (2, [1.0, 0.0], [0.0, 1.0])])
def test_paper_preset_at_one_and_two_steps(n, content, style):
    samples = load_preset("paper").sample(n, 5.0)
    assert (samples.content, samples.style, samples.guidance) == (content, style, [5.0] * n)


def test_relative_guidance_scales_the_strength_cfg_minus_1():
    curves = CurveSet(Curve(((0.0, 0.0), (1.0, 2.0)), "linear", relative=True),
                      Curve.constant(1.0), Curve.constant(1.0))
    assert curves.sample(3, cfg_scale=7.0).guidance == pytest.approx([1.0, 7.0, 13.0])
    absolute = CurveSet(Curve.constant(4.0), Curve.constant(1.0), Curve.constant(1.0))
    assert absolute.sample(2, cfg_scale=7.0).guidance == [4.0, 4.0]


def test_guidance_interval_switches_guidance_off_outside_the_middle():
    guidance = load_preset("guidance-interval").sample(11, cfg_scale=6.0).guidance
    assert guidance == [1.0, 1.0] + [6.0] * 6 + [1.0] * 3


def test_constant_curve_set():
    samples = CurveSet.constant().sample(4, 7.0)
    assert samples.to_dict() == {"guidance": [7.0] * 4, "content": [1.0] * 4, "style": [1.0] * 4}


def test_json_round_trip():
    curves = CurveSet(Curve(((0.0, 0.5), (1.0, 1.5)), "linear", relative=True),
                      Curve(((0.0, 1.0), (0.3, 1.0), (0.7, 0.0)), "smooth"),
                      Curve(((0.0, 0.0), (0.28, 1.0)), "step"), name="mine", description="a test")
    assert CurveSet.from_dict(curves.to_dict()) == curves
    assert CurveSet.from_json(curves.to_json()) == curves
    assert CurveSet.from_dict(json.loads(json.dumps(CurveSet.constant().to_dict()))) == CurveSet.constant()


def test_from_file_round_trip(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(load_preset("guidance-ramp").to_json())
    assert CurveSet.from_file(path) == load_preset("guidance-ramp")


# points, message words
BAD_POINTS = [
    ((), "no points"),
    (((-0.1, 1.0),), "point 1 has x = -0.1, outside 0–1"),
    (((0.0, 1.0), (1.2, 0.0)), "point 2 has x = 1.2, outside 0–1"),
    (((0.0, 1.0), (0.5, 0.0), (0.5, 1.0)), "point 3 has x = 0.5, not after point 2"),
    (((0.6, 1.0), (0.4, 0.0)), "point 2 has x = 0.4, not after point 1"),
    (((0.0, float("nan")),), "finite"),
    (((0.0, float("inf")),), "finite"),
]


@pytest.mark.parametrize(("points", "words"), BAD_POINTS)
def test_invalid_points(points, words):
    with pytest.raises(CurveError, match=words):
        Curve(points, "step")
    data = {"interpolation": "step", "points": [list(p) for p in points]}
    with pytest.raises(CurveError, match=f"The style curve.*{words}"):
        Curve.from_dict(data, "style")


# curve set data (as JSON), message words
BAD_SETS = [
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": [[0, 1]]}}, "lack the style curve"),
    ({"guidance": {"points": [[0, 31]]}, "content": {"points": [[0, 1]]}, "style": {"points": [[0, 1]]}},
     "guidance curve: point 1 .* outside 0–30"),
    ({"guidance": {"points": [[0, 6]], "relative": True}, "content": {"points": [[0, 1]]},
      "style": {"points": [[0, 1]]}}, "guidance curve: point 1 .* outside 0–5"),
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": [[0, 1], [0.5, 1.5]]},
      "style": {"points": [[0, 1]]}}, "content curve: point 2 .* y = 1.5, outside 0–1"),
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": [[0, 1]]},
      "style": {"points": [[0, 1]], "relative": True}}, "style curve cannot be relative"),
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": [[0, 1]], "interpolation": "cubic"},
      "style": {"points": [[0, 1]]}}, "content curve has unknown interpolation 'cubic'"),
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": [[0, 1, 2]]},
      "style": {"points": [[0, 1]]}}, r"content curve: point 1 is \[0, 1, 2\]"),
    ({"guidance": {"points": [[0, 1]]}, "content": {"points": "0 1"}, "style": {"points": [[0, 1]]}},
     "content curve needs \"points\""),
    ({"guidance": [[0, 1]], "content": {"points": [[0, 1]]}, "style": {"points": [[0, 1]]}},
     "guidance curve must be an object"),
    ([1, 2, 3], "must be an object"),
    ({"version": 9, "guidance": {}, "content": {}, "style": {}}, "newer CraftStudio"),
]


@pytest.mark.parametrize(("data", "words"), BAD_SETS)
def test_invalid_curve_sets(data, words):
    with pytest.raises(CurveError, match=words) as info:
        CurveSet.from_dict(data)
    assert isinstance(info.value, RequestError)


def test_invalid_json_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(CurveError, match=r"broken\.json is not valid JSON"):
        CurveSet.from_file(path)
    with pytest.raises(CurveError, match="not valid JSON"):
        CurveSet.from_json("{not json")


def test_wrong_shape_file_names_the_file(tmp_path):
    path = tmp_path / "shape.json"
    path.write_text(json.dumps({"guidance": {"points": [[0, 1]]}}))
    with pytest.raises(CurveError, match=r"shape\.json: curves lack the content and style curves"):
        CurveSet.from_file(path)
    with pytest.raises(CurveError, match=r"missing\.json does not exist"):
        CurveSet.from_file(tmp_path / "missing.json")


@pytest.mark.parametrize("name", ["paper", "constant", "content-early-style-late", "guidance-interval",
                                  "guidance-ramp"])
def test_every_shipped_preset_loads(name):
    assert name in list_presets()
    curves = load_preset(name)
    assert curves.name == name and curves.description
    samples = curves.sample(50, 7.0)
    assert all(0.0 <= v <= 1.0 for v in samples.content + samples.style)
    assert all(1.0 <= v <= 30.0 for v in samples.guidance)
    assert CurveSet.from_json(curves.to_json()) == curves


def test_shipped_presets_have_a_name_matching_the_file():
    for name in list_presets():
        assert load_preset(name).name == name


def test_content_early_style_late_hands_over_smoothly():
    samples = load_preset("content-early-style-late").sample(101, 7.0)
    assert samples.content[0] == 1.0 and samples.content[-1] == 0.0
    assert samples.style[0] == 0.0 and samples.style[-1] == 1.0
    assert all(a >= b for a, b in zip(samples.content, samples.content[1:], strict=False))
    assert all(a <= b for a, b in zip(samples.style, samples.style[1:], strict=False))
    assert samples.content[50] == pytest.approx(0.5) == samples.style[50]


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(CurveError, match="Unknown curve preset 'nope': choose one of .*paper"):
        load_preset("nope")
    with pytest.raises(CurveError, match="Unknown curve preset"):
        load_preset("../paper")
