"""A scriptable stand-in for `craftstudio.engine.generation.generate` (no torch, instant).

Same contract as the real engine: progress and preview events per step, the cancel token
checked between steps (`Cancelled`), `UserError`s for bad input, a `GenerateResult` of PIL
images. `hold()` makes it wait inside the first step until `release()` (or a cancel), so tests
can act while a job is certainly running, without sleeps.
"""

from __future__ import annotations

import threading

from PIL import Image

from craftstudio.domain.generation import GenerateRequest, GenerateResult
from craftstudio.domain.progress import PreviewEvent, ProgressEvent

WAIT_LIMIT_S = 10.0  # a held fake never blocks a broken test forever


class FakeEngine:
    def __init__(self, *, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[GenerateRequest] = []
        self.entered = threading.Event()  # set when a call reached its first step
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> FakeEngine:
        self._gate.clear()
        return self

    def release(self) -> None:
        self._gate.set()

    def __call__(self, request: GenerateRequest, *, progress=None, cancel=None) -> GenerateResult:
        self.calls.append(request)
        if progress:
            progress(ProgressEvent("load", 0, 1, message="loading model"))
        if self.error is not None:
            raise self.error
        images = []
        for index, seed in enumerate(request.seeds()):
            for step in range(1, request.steps + 1):
                self.entered.set()
                waited = 0.0
                while not self._gate.wait(0.005):  # held: stay "in the step", honour cancel
                    waited += 0.005
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    if waited > WAIT_LIMIT_S:
                        raise TimeoutError("FakeEngine held too long")
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if progress:
                    progress(ProgressEvent("denoise", step, request.steps, index, request.batch_count))
                    progress(PreviewEvent(step, request.steps, _image(request, seed, step), index))
            images.append(_image(request, seed, request.steps))
        return GenerateResult(request=request, images=images, seeds=request.seeds(), family="sd1",
                              model_name="fake-model", device="cpu", seconds=0.01)


def _image(request: GenerateRequest, seed: int, step: int) -> Image.Image:
    shade = (seed * 37 + step * 11) % 256
    return Image.new("RGB", (request.width, request.height), (shade, 128, 255 - shade))


def quick_request(**changes) -> GenerateRequest:
    values = dict(model="/models/fake", prompt="a ginger cat", width=64, height=64, steps=3, seed=5)
    values.update(changes)
    return GenerateRequest(**values)
