"""The fast path: the UNet, CRAFT layers inside, compiled by torch.compile (CUDA graphs on CUDA).

Graph safety. A compiled graph must not depend on values that change between steps or images,
or every change would recompile. So on this path:
- the LoRA layers run in graph mode (`BranchState.graph`): every branch on every row, scaled by
  per-row gate tensors that the sampler overwrites in place (`CraftHooks.prepare_graph`);
- the sampler runs all 2N rows every step and reads s_k from a device table (`LoopSettings.graph`),
  so the UNet sees one shape and no Python number changes between calls;
- the LoRA layers stay installed between generations while the LoRAs, routing and model are
  the same (`ResidentLayers`), so the graph's guards keep holding from one image to the next.
What still compiles again: a new image size or batch chunk (a new shape), other LoRAs or
routing (a different network). `recompiles()` counts dynamo's compiled graphs so the benchmark
can show that none happen after warm-up.

Inductor's compiled kernels go to the app's cache directory (`cache_dir()`), so a second launch
loads them instead of compiling again.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

APP_NAME = "CraftStudio"
# Tests use dynamo's "eager" backend: the same graph capture, no code generation.
BACKEND = os.environ.get("CRAFTSTUDIO_COMPILE_BACKEND", "inductor")
# CUDA: CUDA graphs remove the launch overhead that bounds the eager step. Elsewhere: plain Inductor.
CUDA_MODE = "reduce-overhead"


def cache_dir() -> Path:
    """Where compiled kernels are kept: $CRAFTSTUDIO_CACHE, else the platform's user cache dir."""
    import platformdirs

    override = os.environ.get("CRAFTSTUDIO_CACHE")
    root = Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return root / "torch-compile"


def use_cache_dir() -> Path:
    """Point Inductor's and Triton's on-disk caches at `cache_dir()`, unless the user chose a
    folder (torch fills TORCHINDUCTOR_CACHE_DIR with its /tmp default on first use, so that
    default is replaced too)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, default_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder / "inductor")
    os.environ.setdefault("TRITON_CACHE_DIR", str(folder / "triton"))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    return folder


def graph_count() -> int:
    """Graphs dynamo has compiled in this process (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class CompiledUNet:
    """A torch.compile'd UNet that records how long its compiles took."""

    def __init__(self, unet, *, backend: str | None = None, mode: str | None = None) -> None:
        backend = backend or BACKEND
        if backend == "inductor":
            use_cache_dir()
        self.unet = unet
        self.config = unet.config
        device = next(unet.parameters()).device
        if mode is None and backend == "inductor" and device.type == "cuda":
            mode = CUDA_MODE
        self.mode = mode
        self._fn = torch.compile(unet, backend=backend, mode=mode, fullgraph=True, dynamic=False)
        self.compile_seconds = 0.0  # time spent in calls that compiled (first use of a shape)

    def __call__(self, *args, **kwargs):
        before = graph_count()
        start = time.perf_counter()
        out = self._fn(*args, **kwargs)
        if graph_count() != before:
            if args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            self.compile_seconds += seconds
            log.info("compiled the UNet in %.1f s (cache: %s)", seconds, os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
        return out


_compiled: dict[int, CompiledUNet] = {}


def for_unet(unet) -> CompiledUNet:
    """The compiled form of `unet`, made once per UNet object (the cached model's)."""
    found = _compiled.get(id(unet))
    if found is None or found.unet is not unet:
        _compiled.clear()  # one model at a time, as the model cache
        found = _compiled[id(unet)] = CompiledUNet(unet)
    return found


def reset() -> None:
    """Forget every compiled graph (and its CUDA graph memory)."""
    import torch._dynamo

    _compiled.clear()
    torch._dynamo.reset()


def supported(device: torch.device) -> bool:
    """torch.compile runs here (CUDA, or the CPU with a C++ compiler); MPS stays eager."""
    return device.type in ("cuda", "cpu")
