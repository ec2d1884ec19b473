"""GenerateJob: calls the engine with the request, saves PNGs that record it, honours cancel."""

from __future__ import annotations

import dataclasses

import pytest

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.library.png_params import read_request
from craftstudio.workers.generate_job import GenerateJob, GenerateOutput
from tests.workers.fake_engine import FakeEngine, quick_request


def test_saves_one_png_per_image_with_the_request(tmp_path):
    engine = FakeEngine()
    request = quick_request(batch_count=2, seed=40)
    events = []
    output = GenerateJob(request, engine=engine, outputs=tmp_path).run(events.append, CancelToken())
    assert isinstance(output, GenerateOutput)
    assert engine.calls == [request]
    assert [p.parent for p in output.paths] == [tmp_path, tmp_path]
    assert [p.name.rsplit("-", 1)[-1] for p in output.paths] == ["40.png", "41.png"]
    restored = [read_request(p) for p in output.paths]
    assert [r.seed for r in restored] == [40, 41]
    assert restored[0].prompt == "a ginger cat"
    assert any(getattr(e, "stage", "") == "save" for e in events)


def test_default_output_folder_is_the_app_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(tmp_path))
    output = GenerateJob(quick_request(), engine=FakeEngine()).run(lambda e: None, CancelToken())
    assert output.paths[0].parent == tmp_path / "outputs"


def test_same_seed_twice_in_one_second_keeps_both_files(tmp_path):
    job = GenerateJob(quick_request(), engine=FakeEngine(), outputs=tmp_path)
    first = job.run(lambda e: None, CancelToken()).paths[0]
    second = job.run(lambda e: None, CancelToken()).paths[0]
    assert first != second and first.exists() and second.exists()


def test_cancel_after_the_last_step_writes_nothing(tmp_path):
    token = CancelToken()

    def engine(request, *, progress, cancel):
        result = FakeEngine()(request, progress=progress, cancel=cancel)
        cancel.cancel()  # pressed while the last image was decoding
        return result

    with pytest.raises(Cancelled):
        GenerateJob(quick_request(), engine=engine, outputs=tmp_path).run(lambda e: None, token)
    assert list(tmp_path.iterdir()) == []



def test_the_queue_label_says_a_job_starts_from_a_picture_or_enlarges():
    plain = quick_request(prompt="a cat", seed=3)
    assert GenerateJob(plain).label == "a cat · seed 3 · craft"
    picture = dataclasses.replace(plain, init_image="in.png", strength=0.6)
    assert GenerateJob(picture).label == "a cat · seed 3 · craft · from picture 0.6"
    inpaint = dataclasses.replace(picture, mask="m.png", hires_factor=2.0)
    assert GenerateJob(inpaint).label == "a cat · seed 3 · craft · inpaint 0.6 · hires ×2"
