"""Training: the Rank-FT backbone (W_init) and routed content/style LoRAs, plus their benchmark.

`train(request, progress=..., cancel=..., resume=...)` dispatches on the request's kind to
`backbone_training.train_backbone` or `lora_training.train_lora`, in this process, or, for a
request on several processes (or on chosen GPUs), through `launcher.train_in_processes`, which
starts them and runs the same trainers there as replicas. Inside processes that a launcher
started (ours or a user's `accelerate launch`) the trainers run in place. The submodules are
imported only when a run starts.
"""

from __future__ import annotations

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.progress import ProgressCallback
from craftstudio.domain.training import BackboneTrainRequest, TrainRequest, TrainResult


def train(request: TrainRequest, *, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    from craftstudio.engine.training.replicas import launched

    if (request.num_processes > 1 or request.gpus) and not launched():
        from craftstudio.engine.training.launcher import train_in_processes

        return train_in_processes(request, progress=progress, cancel=cancel, resume=resume)
    return train_here(request, progress=progress, cancel=cancel, resume=resume)


def train_here(request: TrainRequest, *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    """Train in this process (alone, or as one of the launched processes)."""
    if isinstance(request, BackboneTrainRequest):
        from craftstudio.engine.training.backbone_training import train_backbone

        return train_backbone(request, progress=progress, cancel=cancel, resume=resume)
    from craftstudio.engine.training.lora_training import train_lora

    return train_lora(request, progress=progress, cancel=cancel, resume=resume)
