"""`SpeedWatch`: steps per second of a training run, and whether it fell far below its start.

A run that outgrows the GPU's memory does not always fail: some drivers (Windows' "system memory
fallback") quietly move memory to the computer's RAM, and every step becomes ten to a hundred
times slower. The watch compares the recent speed with the speed of the run's first steps and
says so when it fell below a third of it for a while.

Times are the moments the page hears of each finished step. The first steps are left out of
the reference (they include warm-up: kernel selection, caches), and an interval in which a
sample image was made is not counted (`pause()`), since a sample takes many steps' time.
"""

from __future__ import annotations

from collections import deque

WARMUP = 2  # intervals left out at the start
REFERENCE = 8  # intervals that make the reference speed
RECENT = 8  # intervals of the recent speed
SLOW_FACTOR = 3.0  # recent below reference / SLOW_FACTOR = slow


class SpeedWatch:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._last: float | None = None
        self._skipped = 0
        self._reference: list[float] = []
        self._recent: deque[float] = deque(maxlen=RECENT)

    def step(self, now: float) -> None:
        """A step finished at `now` (seconds, any monotonic clock)."""
        if self._last is not None:
            interval = max(now - self._last, 1e-9)
            if self._skipped < WARMUP:
                self._skipped += 1
            elif len(self._reference) < REFERENCE:
                self._reference.append(interval)
            self._recent.append(interval)
        self._last = now

    def pause(self, now: float) -> None:
        """Something other than training (a sample image) ran until `now`: don't time it."""
        self._last = now

    @property
    def steps_per_second(self) -> float:
        """The recent speed (0 until two steps are known)."""
        return len(self._recent) / sum(self._recent) if self._recent else 0.0

    @property
    def reference(self) -> float:
        """The speed of the run's first steps after warm-up (0 until known)."""
        return len(self._reference) / sum(self._reference) if len(self._reference) == REFERENCE else 0.0

    @property
    def is_slow(self) -> bool:
        """The recent speed is far below the reference (and the recent window is all after it)."""
        reference = self.reference
        return (bool(reference) and len(self._recent) == RECENT
                and self.steps_per_second * SLOW_FACTOR < reference)
