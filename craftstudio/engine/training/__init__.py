"""Training: the Rank-FT backbone (W_init) and routed content/style LoRAs, plus their benchmark.

`train(request, progress=..., cancel=..., resume=...)` dispatches on the request's kind to
`backbone_training.train_backbone` or `lora_training.train_lora`; the submodules are imported
only when a run starts.
"""

from __future__ import annotations

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.progress import ProgressCallback
from craftstudio.domain.training import BackboneTrainRequest, TrainRequest, TrainResult


def train(request: TrainRequest, *, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, resume: bool = False) -> TrainResult:
    if isinstance(request, BackboneTrainRequest):
        from craftstudio.engine.training.backbone_training import train_backbone

        return train_backbone(request, progress=progress, cancel=cancel, resume=resume)
    from craftstudio.engine.training.lora_training import train_lora

    return train_lora(request, progress=progress, cancel=cancel, resume=resume)
