"""The shared step loop: a loss that stays NaN stops training with one clear sentence."""

from __future__ import annotations

import math

import pytest

from craftstudio.domain.errors import UserError
from craftstudio.engine.training.loop import DIVERGED_AFTER, Diverged, LoopHooks, run_steps


def _run(values: list[float], checkpoint_every: int = 0):
    checkpoints: list[int] = []
    losses: list[dict[str, float]] = []
    hooks = LoopHooks(step=lambda step: {"loss": values[step]}, checkpoint=checkpoints.append)
    run_steps(hooks, start=0, total=len(values), checkpoint_every=checkpoint_every, sample_every=0, losses=losses,
              progress=None, cancel=None)
    return losses, checkpoints


def test_a_loss_that_stays_nan_stops_the_run_and_saves_no_checkpoint_of_it():
    values = [0.5, 0.4, 0.3] + [math.nan] * 20
    checkpoints: list[int] = []
    hooks = LoopHooks(step=lambda step: {"loss": values[step]}, checkpoint=checkpoints.append)
    with pytest.raises(Diverged, match=r"diverged at step 8 of 23: the loss has been nan for 5 steps in a row, so "
                                       r"nothing was saved\. Lower the learning rate \(--lr\)") as info:
        run_steps(hooks, start=0, total=len(values), checkpoint_every=2, sample_every=0, losses=[], progress=None,
                  cancel=None)
    assert isinstance(info.value, UserError)
    assert checkpoints == [2]  # the last good checkpoint stays; none after the loss went bad


def test_isolated_overflows_do_not_stop_training():
    # fp16 loss scaling skips an overflowing step and goes on; so may an infinite loss now and then.
    values = ([1.0] + [math.inf] * (DIVERGED_AFTER - 1)) * 3 + [0.2]
    losses, _ = _run(values)
    assert len(losses) == len(values)
