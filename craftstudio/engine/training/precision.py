"""Mixed precision for training: which dtype the frozen weights load in, what autocast runs in,
and the loss scaler that fp16 needs.

Frozen weights (UNet, VAE, text encoders) load in bf16 or fp16 on a GPU to halve their memory;
trainable tensors (LoRA matrices, Rank-FT bases) stay in fp32 so small updates are not rounded
away; the forward pass runs under autocast. fp16 gradients can underflow, so fp16 uses a
`GradScaler`; bf16 has fp32's exponent range and needs none. On the CPU and on Apple MPS `auto`
trains in fp32 (CPU autocast is slow, MPS fp16 training is fragile).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from craftstudio.domain.errors import RequestError


@dataclass
class Precision:
    device: torch.device
    load_dtype: torch.dtype  # frozen weights
    autocast_dtype: torch.dtype | None  # None: no autocast (fp32 throughout)
    scaler: Any = None  # torch.amp.GradScaler for fp16

    @property
    def label(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.autocast_dtype, "fp32")

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """`loss` as its backward must see it (times the fp16 loss scale)."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def backward(self, loss: torch.Tensor) -> None:
        self.scaled(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state(self) -> dict[str, float]:
        """The loss scaler's state (plain numbers, for a checkpoint's JSON)."""
        if self.scaler is None:
            return {}
        return {k: v for k, v in self.scaler.state_dict().items() if isinstance(v, int | float)}

    def load_state(self, state: dict[str, float]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict({**self.scaler.state_dict(), **state})


def resolve_precision(choice: str, device: torch.device) -> Precision:
    """`auto`, `bf16`, `fp16` or `no` (fp32) for `device`."""
    if choice == "auto" and device.type == "cuda":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif choice == "auto":
        choice = "no"
    if choice == "no":
        return Precision(device, torch.float32, None)
    if choice == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RequestError("This GPU does not support bf16: train with fp16 (--precision fp16) or auto.")
        return Precision(device, torch.bfloat16, torch.bfloat16)
    if choice == "fp16":
        if device.type != "cuda":
            raise RequestError(f"fp16 training needs a CUDA GPU, not {device.type}: use --precision auto.")
        return Precision(device, torch.float16, torch.float16, torch.amp.GradScaler("cuda"))
    raise RequestError(f"Unknown mixed precision {choice!r}: choose auto, bf16, fp16 or no.")
