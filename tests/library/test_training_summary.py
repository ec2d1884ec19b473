"""training_summary: the metadata worth showing, in order; caption tags as trigger hints."""

from __future__ import annotations

import json

from craftstudio.library import synthetic
from craftstudio.library.training_summary import MAX_VALUE, summary, tag_hints


def test_kohya_metadata_is_summarised():
    meta = synthetic.kohya_metadata("inkSketch", "sd1", 4, {"ink": 50, "sketch": 20})
    meta.update({"ss_max_train_steps": "1600", "craft.role": "style", "family_evidence": "shapes"})
    rows = dict(summary(meta))
    assert rows["Title"] == "inkSketch" and rows["Base model"] == "sd_v1"
    assert rows["Steps"] == "1600" and rows["Rank / alpha"] == "4 / 2.0"
    assert rows["Resolution"] == "(512, 512)" and rows["craft.role"] == "style"
    assert [label for label, _ in summary(meta)][0] == "Title"


def test_modelspec_wins_and_long_values_are_cut():
    rows = dict(summary({"modelspec.title": "Ink", "ss_output_name": "ink_v2", "craft.request": "x" * 500}))
    assert rows["Title"] == "Ink" and len(rows["craft.request"]) == MAX_VALUE


def test_tag_hints_add_up_over_folders_and_ignore_junk():
    raw = json.dumps({"10_a": {"ink": 5, "cat": 2}, "5_b": {"ink": 3, " ": 9, "bad": "x"}})
    assert tag_hints({"ss_tag_frequency": raw}) == [("ink", 8), ("cat", 2)]
    assert tag_hints({"ss_tag_frequency": "{not json"}) == [] and tag_hints({}) == []
