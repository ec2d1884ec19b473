"""`bench library-ui` on a few items: it measures a real page and prints its table."""

from __future__ import annotations

from craftstudio.ui import library_bench


def test_bench_measures_a_page_and_reports_against_the_baseline(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(library_bench, "SCROLL_STEPS", 3)
    monkeypatch.setattr(library_bench, "KEYSTROKES", ["ink", "", "neon"])
    result = library_bench.run(24, tmp_path / "work", keep=True)
    assert result["items"] == 24 and result["previews"] == 6
    assert result["cards_in_first_paint"] > 0 and result["scroll_cards_painted"] > 0
    assert result["matching"] > 0 and result["rows_loaded"] <= result["matching"]
    table = library_bench.format_table(result)
    assert "first screenful painted" in table and "ratio to baseline" in table
    again = library_bench.run(24, tmp_path / "work")  # reuses the files and the catalog
    assert again["matching"] == result["matching"]
