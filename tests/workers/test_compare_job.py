"""CompareJob and its cells: the right requests, progress by cell, cancel leaves no sheet."""

from __future__ import annotations

import pytest

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import LoraRef
from craftstudio.domain.progress import ProgressEvent
from craftstudio.workers.compare_job import CompareJob, fusion_cells, parse_values, sweep_cells
from tests.workers.fake_engine import FakeEngine, quick_request

REQUEST = quick_request(content_lora=LoraRef("/l/heart.safetensors", 0.9),
                        style_lora=LoraRef("/l/mosaic.safetensors", 0.5), batch_count=3)


def test_cells_take_one_image_each_and_keep_everything_else():
    cells = fusion_cells(REQUEST)
    assert {c.request.batch_count for c in cells} == {1}
    assert {(c.request.prompt, c.request.seed, c.request.steps) for c in cells} == {("a ginger cat", 5, 3)}
    weights = sweep_cells(REQUEST, "content_weight", parse_values("content_weight", "0.5; 1.5"))
    assert [(c.label, c.request.content_lora.weight, c.request.style_lora.weight) for c in weights] == [
        ("content weight 0.5", 0.5, 0.5), ("content weight 1.5", 1.5, 0.5)]
    with pytest.raises(RequestError, match="Comparing the style weight needs a style LoRA"):
        sweep_cells(quick_request(), "style_weight", [1.0])
    with pytest.raises(RequestError, match="Type the values to compare"):
        parse_values("cfg_scale", " , ")


def test_progress_counts_cells_and_cancel_leaves_no_sheet(tmp_path):
    engine = FakeEngine()
    events = []
    token = CancelToken()

    def progress(event):
        events.append(event)
        if isinstance(event, ProgressEvent) and event.stage == "cell" and event.step == 1:
            token.cancel()  # during the second cell

    job = CompareJob(fusion_cells(REQUEST)[:3], engine=engine, outputs=tmp_path)
    with pytest.raises(Cancelled):
        job.run(progress, token)
    denoise = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "denoise"]
    assert {(e.image_index, e.image_count) for e in denoise} == {(0, 3)}
    assert not list(tmp_path.rglob("*sheet*"))
    assert job.label == "Compare: 3 cells · seed 5"


def test_fusion_grid_from_a_peer_mode_request_is_crafts_ablation():
    import dataclasses

    cells = fusion_cells(dataclasses.replace(REQUEST, peer_mode="k-lora"))
    assert {c.request.peer_mode for c in cells} == {None}
    assert [c.request.mode.value for c in cells[:2]] == ["direct", "craft"]
