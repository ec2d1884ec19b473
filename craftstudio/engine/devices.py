"""Device and dtype choice: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import torch

from craftstudio.domain.errors import RequestError


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RequestError("No CUDA GPU is available here: choose device cpu (or auto).")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RequestError("Apple MPS is not available here: choose device cpu (or auto).")
    if preference not in ("cuda", "mps", "cpu"):
        raise RequestError(f"Unknown device {preference!r}: choose auto, cuda, mps or cpu.")
    return torch.device(preference)


def pick_dtype(device: torch.device) -> torch.dtype:
    """fp32 on the CPU; bf16 on GPUs that have it (no fp16 overflow in SDXL's VAE), else fp16."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
