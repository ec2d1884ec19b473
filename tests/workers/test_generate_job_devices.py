"""A GenerateJob given several devices splits its batch (the real engine, tiny SD1, cpu,cpu): the
same PNGs as one device saves, progress reported, a cancel stops every device and saves nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.progress import ProgressEvent
from craftstudio.library.png_params import read_request
from craftstudio.workers.generate_job import GenerateJob


def _request(model) -> GenerateRequest:
    return GenerateRequest(model=str(model), prompt="a red cat", width=64, height=64, steps=3, cfg_scale=6.0,
                           seed=11, device="cpu", batch_count=3, preview_every=0)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.int16)


def test_a_batch_split_over_two_devices_saves_the_one_device_images(tiny_sd1, tmp_path):
    request = _request(tiny_sd1)
    one = GenerateJob(request, outputs=tmp_path / "one", name_template="cat-{seed}").run(
        lambda event: None, CancelToken())
    events = []
    job = GenerateJob(request, outputs=tmp_path / "two", name_template="cat-{seed}", devices=("cpu", "cpu"))
    assert job.splits and job.label.endswith("on 2 devices")
    two = job.run(events.append, CancelToken())
    assert [p.name for p in two.paths] == [p.name for p in one.paths] == ["cat-11.png", "cat-12.png", "cat-13.png"]
    for a, b in zip(one.paths, two.paths, strict=True):
        assert np.abs(_pixels(a) - _pixels(b)).max() <= 1  # within one 8-bit level
        assert read_request(a) == read_request(b)  # the PNG records the same request
    assert two.result.details["devices"] == [{"device": "cpu", "seeds": [11, 12]}, {"device": "cpu", "seeds": [13]}]
    assert any(isinstance(e, ProgressEvent) and e.stage == "denoise" for e in events)
    assert not np.array_equal(_pixels(two.paths[0]), _pixels(two.paths[1]))


def test_a_cancel_stops_a_split_batch_and_saves_nothing(tiny_sd1, tmp_path):
    token = CancelToken()
    steps = []

    def progress(event) -> None:
        if isinstance(event, ProgressEvent) and event.stage == "denoise":
            steps.append(event.step)
            token.cancel()  # pressed while the first device is denoising

    job = GenerateJob(_request(tiny_sd1), outputs=tmp_path / "out", devices=("cpu", "cpu"))
    with pytest.raises(Cancelled):
        job.run(progress, token)
    assert len(steps) < 3  # stopped at the next step, not after its 2 images × 3 steps
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_on_the_job_runner_a_split_batch_reports_progress_and_finishes(qtbot, tiny_sd1, tmp_path):
    from craftstudio.workers.job_runner import JobRunner

    runner = JobRunner()
    try:
        seen = []
        runner.progress.connect(lambda job_id, event: seen.append(event.stage))
        job = GenerateJob(_request(tiny_sd1), outputs=tmp_path, devices=("cpu", "cpu"))
        with qtbot.waitSignal(runner.finished, timeout=60_000) as finished:
            runner.submit(job)
        assert len(finished.args[1].paths) == 3 and "denoise" in seen
    finally:
        runner.shutdown()
