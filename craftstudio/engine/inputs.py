"""The input files of a generation, judged before anything heavy loads.

`check_inputs(request)` looks at the base model, the LoRAs and the backbone a request names: each
must exist (a symbolic-link loop is said so), be a regular file or a diffusers folder (a FIFO or
device is refused without blocking on it), not be a pickle, and carry a sound safetensors header
(the shared rules of `domain/safetensors_header.py`). So a bad file costs milliseconds and one
sentence, not a model load followed by a traceback. Tensor values (NaN, Inf) are checked when the
file is loaded (`check_finite`), once per file content.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from craftstudio.domain.errors import LoraError, ModelError, UserError
from craftstudio.domain.generation import GenerateRequest

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}

_finite_lock = threading.Lock()
_finite_files: set[str] = set()  # content hashes of files whose tensors were all finite


def existing(path: str | Path, what: str, error: type[UserError]) -> tuple[Path, os.stat_result]:
    """`path` (user-expanded) and its stat; a missing path, a link loop or an unreadable one is
    `error` naming `what` and the file."""
    path = Path(path).expanduser()
    try:
        return path, path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist: choose an existing file.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{what} {path} is a loop of symbolic links: point it at a real file.") from None
        raise error(f"{what} {path} cannot be read ({exc.strerror or exc}).") from None


def regular_safetensors(path: str | Path, what: str, error: type[UserError]) -> Path:
    """A regular `.safetensors` file with a sound header, else `error` with one sentence."""
    from craftstudio.engine.loader import check_safetensors_file

    path, st = existing(path, what, error)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise error(f"{what} {path} is a pickle file ({path.suffix}), which can run code when loaded: use "
                    "its .safetensors version.")
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{what} {path} is {kind}: choose a .safetensors file.")
    try:
        check_safetensors_file(path)
    except ModelError as exc:
        raise error(f"{what} {str(exc)[0].lower()}{str(exc)[1:]}") from None
    return path


def check_model(path: str | Path) -> Path:
    """A diffusers folder (valid model_index.json, sound UNet/VAE headers) or a checkpoint file."""
    from craftstudio.engine.loader import check_folder, refuse_pickle

    refuse_pickle(Path(path).expanduser())
    path, st = existing(path, "Model", ModelError)
    if stat.S_ISDIR(st.st_mode):
        check_folder(path)
        return path
    return regular_safetensors(path, "Model", ModelError)


def check_inputs(request: GenerateRequest) -> None:
    """Judge every file `request` names (see module doc); raises a `UserError` for the first bad one."""
    check_model(request.model)
    for role, ref in (("content", request.content_lora), ("style", request.style_lora)):
        if ref is not None:
            regular_safetensors(ref.path, f"The {role} LoRA", LoraError)
    if request.backbone and request.effective_switches.backbone:
        regular_safetensors(request.backbone, "The backbone", LoraError)


def check_finite(sha256: str, path: Path, tensors: Callable[[], object], what: str) -> None:
    """Refuse a file whose tensors hold NaN or Inf (they would make black images). `tensors()`
    yields (name, tensor) pairs; a file content already found finite is not checked again."""
    import torch

    with _finite_lock:
        if sha256 in _finite_files:
            return
    for name, tensor in tensors():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise LoraError(f"{what} {path} holds non-finite values (NaN or Inf) in {name}: it is damaged; "
                            "train or download it again.")
    with _finite_lock:
        _finite_files.add(sha256)


def read_model_index(path: Path) -> dict:
    """A diffusers folder's model_index.json as an object, else `ModelError`."""
    index = path / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{index} is not valid JSON: the model folder is damaged; download or copy it "
                         "again.") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{index} is not a JSON object: the model folder is damaged; download or copy it "
                         "again.")
    return data
