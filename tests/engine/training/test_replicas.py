"""`Replicas.wrap`: the DDP settings a module is wrapped with (the launched paths themselves run in
the 2-process CPU tests)."""

from __future__ import annotations

import torch

from craftstudio.engine.training.replicas import Replicas


class _Accelerator:
    """What `wrap` uses of accelerate's Accelerator: its DDP settings and `prepare_model`."""

    def __init__(self) -> None:
        from accelerate import DistributedDataParallelKwargs

        self.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=False)
        self.seen: list[dict] = []

    def prepare_model(self, module, device_placement=True):
        self.seen.append(self.ddp_handler.to_kwargs())
        return module


def _module() -> torch.nn.Module:
    module = torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.Linear(1024, 1024))  # 8 MiB of fp32 weights
    module[0].requires_grad_(False)  # frozen weights need no all-reduce: only the trainable ones count
    return module


def test_one_bucket_holds_every_trainable_gradient_and_leaves_the_usual_settings():
    accelerator = _Accelerator()
    replicas = Replicas(torch.device("cpu"), world=2, rank=0, accelerator=accelerator)
    module = _module()
    assert replicas.wrap(module, one_bucket=True) is module
    assert accelerator.seen[-1]["bucket_cap_mb"] == 6  # 4.00 MiB trainable, rounded up, plus one
    assert replicas.wrap(module) is module
    assert "bucket_cap_mb" not in accelerator.seen[-1]  # DDP's own 25 MiB buckets
    assert accelerator.ddp_handler.to_kwargs() == {}  # the usual settings are back


def test_one_process_is_not_wrapped():
    module = _module()
    assert Replicas.single(torch.device("cpu")).wrap(module, one_bucket=True) is module
