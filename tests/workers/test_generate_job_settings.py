"""GenerateJob with the Settings page's options: file name template and torch's CPU threads."""

from __future__ import annotations

from craftstudio.domain.cancel import CancelToken
from craftstudio.workers.generate_job import GenerateJob
from tests.workers.fake_engine import FakeEngine, quick_request


class ThreadsSeen(FakeEngine):
    """Records torch's thread count while the engine runs."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def __call__(self, request, **kwargs):
        import torch

        self.threads.append(torch.get_num_threads())
        return super().__call__(request, **kwargs)


def _run(job: GenerateJob):
    return job.run(lambda event: None, CancelToken())


def test_cpu_threads_apply_while_the_job_runs_and_zero_gives_torchs_default(tmp_path):
    import torch

    default = torch.get_num_threads()
    engine = ThreadsSeen()
    _run(GenerateJob(quick_request(), engine=engine, outputs=tmp_path, threads=1))
    _run(GenerateJob(quick_request(), engine=engine, outputs=tmp_path, threads=0))
    assert engine.threads == [1, default]
    assert torch.get_num_threads() == default


def test_the_name_template_names_each_image_of_a_batch(tmp_path):
    output = _run(GenerateJob(quick_request(batch_count=2, seed=40), engine=FakeEngine(), outputs=tmp_path,
                              name_template="{prompt} #{index} {seed}"))
    assert [p.name for p in output.paths] == ["a ginger cat #1 40.png", "a ginger cat #2 41.png"]
