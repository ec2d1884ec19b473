"""What the GenerateState tests share: a job runner and a state over a fake engine."""

from __future__ import annotations

import pytest

from craftstudio.state.generate_state import GenerateState
from craftstudio.workers.job_runner import JobRunner
from tests.workers.fake_engine import FakeEngine

TIMEOUT = 5000


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.shutdown()


def make_state(runner, tmp_path, engine=None, settings=None, prompt: str = "a ginger cat") -> GenerateState:
    state = GenerateState(runner, engine=engine or FakeEngine(), settings=settings,
                          outputs=tmp_path / "outputs")
    state.model, state.prompt = "/models/fake", prompt
    state.width = state.height = 64
    state.steps = 3
    return state
