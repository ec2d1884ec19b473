"""SpeedWatch: the recent speed, and the warning when it falls far below the start's."""

from __future__ import annotations

from craftstudio.state.training_speed import RECENT, REFERENCE, WARMUP, SpeedWatch


def feed(watch: SpeedWatch, start: float, intervals: list[float]) -> float:
    now = start
    for interval in intervals:
        now += interval
        watch.step(now)
    return now


def test_a_steady_run_is_not_slow_and_a_spilling_one_is():
    watch = SpeedWatch()
    now = feed(watch, 0.0, [5.0] + [0.5] * WARMUP + [0.1] * (REFERENCE + 20))
    assert abs(watch.reference - 10.0) < 1e-6 and abs(watch.steps_per_second - 10.0) < 1e-6
    assert not watch.is_slow
    now = feed(watch, now, [0.25] * RECENT)  # 2.5× slower: noisy machines do that
    assert not watch.is_slow
    feed(watch, now, [2.0] * RECENT)  # 20× slower: memory spilled
    assert watch.is_slow and abs(watch.steps_per_second - 0.5) < 1e-6


def test_sample_images_are_not_counted_as_slow_steps():
    watch = SpeedWatch()
    now = feed(watch, 0.0, [0.1] * (1 + WARMUP + REFERENCE))
    for _ in range(RECENT):
        now += 30.0  # a sample image took 30 s
        watch.pause(now)
        now = feed(watch, now, [0.1])
    assert not watch.is_slow and abs(watch.steps_per_second - 10.0) < 1e-6
