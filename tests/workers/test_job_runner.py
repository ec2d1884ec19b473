"""JobRunner: FIFO order, cancel (queued and running), failures, signals on the GUI thread,
shutdown that joins the worker thread."""

from __future__ import annotations

import logging
import threading

import pytest
from PySide6.QtCore import QThread

from craftstudio.domain.cancel import Cancelled
from craftstudio.domain.errors import ModelError
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.workers.job_runner import JobRunner

TIMEOUT = 5000


class FnJob:
    """A job running `fn(progress, cancel)`; `gate` (if given) holds it until set or cancelled."""

    def __init__(self, fn=None, gate: threading.Event | None = None, log: list | None = None, name=""):
        self.fn, self.gate, self.log, self.name = fn, gate, log, name
        self.running = threading.Event()

    def run(self, progress, cancel):
        self.running.set()
        if self.log is not None:
            self.log.append(self.name)
        while self.gate is not None and not self.gate.wait(0.005):
            cancel.raise_if_cancelled()
        return self.fn(progress, cancel) if self.fn else self.name


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.shutdown()


def test_jobs_run_one_at_a_time_in_submission_order(qtbot, runner):
    ran: list[str] = []
    started: list[int] = []
    finished: list[tuple[int, object]] = []
    runner.started.connect(started.append)
    runner.finished.connect(lambda job_id, result: finished.append((job_id, result)))
    ids = [runner.submit(FnJob(log=ran, name=name)) for name in "abc"]
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=TIMEOUT)
    assert ran == ["a", "b", "c"]
    assert started == ids
    assert finished == list(zip(ids, "abc", strict=True))
    assert not runner.is_busy


def test_progress_and_preview_events_arrive_in_order(qtbot, runner):
    events: list[object] = []
    runner.progress.connect(lambda _id, event: events.append(event))
    runner.preview.connect(lambda _id, event: events.append(event))

    def work(progress, cancel):
        for step in (1, 2):
            progress(ProgressEvent("denoise", step, 2))
            progress(PreviewEvent(step, 2, image=f"image{step}"))
        return "done"

    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(FnJob(work))
    assert [type(e).__name__ for e in events] == ["ProgressEvent", "PreviewEvent"] * 2
    assert [e.step for e in events] == [1, 1, 2, 2]
    assert events[-1].image == "image2"


def test_signals_reach_plain_functions_on_the_gui_thread(qtbot, runner):
    threads = []
    runner.progress.connect(lambda *_: threads.append(QThread.currentThread()))
    runner.finished.connect(lambda *_: threads.append(QThread.currentThread()))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(FnJob(lambda progress, cancel: progress(ProgressEvent("x", 1, 1))))
    assert threads and all(t is runner.thread() for t in threads)


def test_cancel_a_queued_job_drops_it_without_running_it(qtbot, runner):
    gate = threading.Event()
    ran: list[str] = []
    holder = FnJob(gate=gate, log=ran, name="first")
    first = runner.submit(holder)
    second = runner.submit(FnJob(log=ran, name="second"))
    assert holder.running.wait(5)
    with qtbot.waitSignal(runner.cancelled, timeout=TIMEOUT) as blocker:
        assert runner.cancel(second)
    assert blocker.args == [second]
    assert runner.pending == []
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT) as done:
        gate.set()
    assert done.args == [first, "first"]
    assert ran == ["first"]


def test_cancel_the_running_job_sets_its_token(qtbot, runner):
    job = FnJob(gate=threading.Event())
    job_id = runner.submit(job)
    assert job.running.wait(5)
    with qtbot.waitSignal(runner.cancelled, timeout=TIMEOUT) as blocker:
        assert runner.cancel(job_id)
    assert blocker.args == [job_id]
    assert not runner.is_busy
    assert not runner.cancel(job_id)  # done: nothing to cancel


def test_user_error_is_reported_with_its_message(qtbot, runner):
    def fail(progress, cancel):
        raise ModelError("/models/x is not a model folder: choose a diffusers folder.")

    with qtbot.waitSignal(runner.failed, timeout=TIMEOUT) as blocker:
        job_id = runner.submit(FnJob(fail))
    assert blocker.args == [job_id, "/models/x is not a model folder: choose a diffusers folder."]


def test_unexpected_error_is_short_and_logged(qtbot, runner, caplog):
    def crash(progress, cancel):
        raise ValueError("shapes do not match")

    with caplog.at_level(logging.ERROR), qtbot.waitSignal(runner.failed, timeout=TIMEOUT) as blocker:
        runner.submit(FnJob(crash))
    assert blocker.args[1] == "Unexpected error: shapes do not match; details in the log."
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    # The runner keeps working after a failed job.
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(FnJob(name="next"))


def test_a_job_raising_cancelled_itself_reports_cancelled(qtbot, runner):
    def stop(progress, cancel):
        raise Cancelled("stopped")

    with qtbot.waitSignal(runner.cancelled, timeout=TIMEOUT):
        runner.submit(FnJob(stop))


def test_shutdown_cancels_everything_and_joins_the_thread(qtbot):
    runner = JobRunner()
    cancelled: list[int] = []
    runner.cancelled.connect(cancelled.append)
    running = FnJob(gate=threading.Event())
    first = runner.submit(running)
    second = runner.submit(FnJob())
    assert running.running.wait(5)
    assert runner.shutdown(timeout_ms=TIMEOUT)
    assert not runner._thread.isRunning()
    qtbot.waitUntil(lambda: sorted(cancelled) == [first, second], timeout=TIMEOUT)
    with pytest.raises(RuntimeError):
        runner.submit(FnJob())
    assert runner.shutdown()  # twice is fine


def test_shutdown_without_jobs_starts_no_thread(qtbot):
    runner = JobRunner()
    assert runner.shutdown()
    assert not runner._thread.isRunning()


def test_jobs_list_statuses_labels_move_and_duplicate(qtbot, runner):
    ran: list[str] = []
    gate = threading.Event()
    first = FnJob(gate=gate, log=ran, name="first")
    ids = [runner.submit(first)] + [runner.submit(FnJob(log=ran, name=n)) for n in ("a", "b", "c")]
    qtbot.waitUntil(lambda: runner.info(ids[0]).status == "running", timeout=TIMEOUT)
    assert [(i.label, i.kind, i.status) for i in runner.jobs] == [
        ("FnJob", "job", "running"), ("FnJob", "job", "pending"), ("FnJob", "job", "pending"),
        ("FnJob", "job", "pending")]
    with qtbot.waitSignal(runner.jobs_changed, timeout=TIMEOUT):
        assert runner.move(ids[3], 0)
    assert runner.pending == [ids[3], ids[1], ids[2]]
    assert [i.job_id for i in runner.jobs] == [ids[0], ids[3], ids[1], ids[2]]
    assert not runner.move(ids[0], 1)  # running: no longer movable
    again = runner.duplicate(ids[1])
    assert runner.pending[-1] == again
    gate.set()
    qtbot.waitUntil(lambda: not runner.is_busy, timeout=TIMEOUT)
    assert ran == ["first", "c", "a", "b", "a"]
    assert {i.status for i in runner.jobs} == {"done"}
    runner.clear_finished()
    assert runner.jobs == []


def test_a_failed_job_keeps_its_message(qtbot, runner):
    def fail(progress, cancel):
        raise ModelError("The model folder /m is incomplete.")

    job_id = runner.submit(FnJob(fail))
    qtbot.waitUntil(lambda: runner.info(job_id).status == "failed", timeout=TIMEOUT)
    assert runner.info(job_id).message == "The model folder /m is incomplete."
