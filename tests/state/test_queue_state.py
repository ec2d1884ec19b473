"""QueueState over the runner: jobs run in order, cancelled pending jobs never run, pending jobs
can be reordered and duplicated, any job with a label appears."""

from __future__ import annotations

from craftstudio.state.queue_state import STATUS_ROLE, QueueState
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


def test_three_jobs_run_in_order_and_the_queue_shows_their_status(qtbot, runner, tmp_path):
    engine = FakeEngine().hold()
    generate = make_state(runner, tmp_path, engine)
    queue = QueueState(runner)
    generate.random_seed, generate.seed, generate.repeat = False, 10, 3
    first = generate.generate()
    qtbot.waitUntil(lambda: queue.running_label != "", timeout=TIMEOUT)
    statuses = [queue.model.data(queue.model.index(r), STATUS_ROLE) for r in range(3)]
    assert statuses == ["running", "pending", "pending"]
    assert queue.running_label.startswith("a ginger cat · seed 10") and queue.pending_count == 2
    assert queue.close_question() == "“a ginger cat · seed 10 · craft” is running and 2 jobs are waiting. " \
                                     "Close CraftStudio and cancel them?"
    engine.release()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    assert [c.seed for c in engine.calls] == [10, 11, 12]
    assert [j.status for j in queue.jobs] == ["done"] * 3 and queue.jobs[0].job_id == first
    assert not queue.has_unfinished and queue.may_close()


def test_a_cancelled_pending_job_never_runs_and_reorder_changes_the_order(qtbot, runner, tmp_path):
    engine = FakeEngine().hold()
    generate = make_state(runner, tmp_path, engine)
    queue = QueueState(runner)
    generate.random_seed, generate.seed, generate.repeat = False, 20, 4
    generate.generate()
    qtbot.waitUntil(lambda: queue.running_label != "", timeout=TIMEOUT)
    running, a, b, c = (j.job_id for j in queue.jobs)
    assert queue.cancel(a)
    assert queue.move_by(c, -1)  # c before b
    assert runner.pending == [c, b]
    asked = []
    queue.confirm_close = lambda question: asked.append(question) or False
    assert not queue.may_close() and "2 jobs are waiting" in asked[0]
    engine.release()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    assert [call.seed for call in engine.calls] == [20, 23, 22]
    assert queue.status_of(a) == "cancelled"


def test_duplicate_queues_the_same_request_again(qtbot, runner, tmp_path):
    engine = FakeEngine()
    generate = make_state(runner, tmp_path, engine)
    queue = QueueState(runner)
    generate.random_seed, generate.seed = False, 3
    first = generate.generate()
    qtbot.waitUntil(lambda: not generate.is_busy, timeout=TIMEOUT)
    copy = queue.duplicate(first)
    qtbot.waitUntil(lambda: queue.status_of(copy) == "done", timeout=TIMEOUT)
    assert [call.seed for call in engine.calls] == [3, 3]


def test_any_job_with_a_label_appears(qtbot, runner):
    class TrainJob:
        label, kind = "Train content LoRA heart", "train"

        def run(self, progress, cancel):
            return "trained"

    queue = QueueState(runner)
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(TrainJob())
    (info,) = queue.jobs
    assert (info.label, info.kind, info.status) == ("Train content LoRA heart", "train", "done")


def test_after_shutdown_closing_asks_nothing_even_before_the_cancellations_arrive(qtbot, runner, tmp_path):
    engine = FakeEngine().hold()
    generate = make_state(runner, tmp_path, engine)
    queue = QueueState(runner)
    generate.repeat = 2
    generate.generate()
    qtbot.waitUntil(engine.entered.is_set, timeout=TIMEOUT)
    assert queue.close_question()
    asked = []
    queue.confirm_close = lambda question: asked.append(question) or False
    runner.shutdown()  # the app's own shutdown: every job is cancelled
    assert queue.close_question() == "" and queue.may_close() and asked == []
