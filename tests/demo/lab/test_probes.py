"""The demo probes: the unconditional share of a LoRA's change is measured, not assumed."""

from __future__ import annotations

import pytest

from craftstudio.demo.assets import demo_lora, demo_model_dir

pytestmark = pytest.mark.skipif(demo_model_dir() is None or demo_lora("style") is None,
                                reason="demo model or LoRAs not installed")


def test_uncond_ratio_of_the_demo_loras():
    from craftstudio.demo.lab.probes import uncond_ratio

    rows = {row["LoRA"]: row for row in uncond_ratio("cpu", seeds=1, timesteps=(500,))}
    assert set(rows) == {"content", "style"}
    for row in rows.values():
        assert row["mean"] == row["t=500"] > 0
        assert -1.0 <= row["cos(δ_u, δ_c)"] <= 1.0
    # The two LoRAs differ: the numbers come from their deltas, not from a constant.
    assert rows["content"]["mean"] != rows["style"]["mean"]


def test_table_prints_every_key_once_and_blank_cells():
    from craftstudio.demo.lab.probes import table

    text = table([{"a": 0.5, "b": "x"}, {"a": 1.0, "c": 2}])
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[2] == "| 0.50 | x |  |" and lines[3] == "| 1.00 |  | 2 |"


def test_a_probe_measures_the_lora_files_it_is_given_in_place_of_the_demos():
    from craftstudio.demo.lab.probes import uncond_ratio

    def rows(**kw):
        return {row["LoRA"]: row for row in uncond_ratio("cpu", seeds=1, timesteps=(500,), **kw)}

    shipped = rows()
    swapped = rows(loras={"content": str(demo_lora("style"))})  # the style file measured as the content LoRA
    assert swapped["style"] == shipped["style"]
    assert swapped["content"]["mean"] != shipped["content"]["mean"]
