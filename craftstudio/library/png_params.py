"""PNG files with generation parameters: write them, read them back into a request.

Two text chunks: `parameters` (A1111-compatible infotext, read by most SD tools) and
`craftstudio` (the full request as JSON, preferred when reading).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from craftstudio.domain.errors import RequestError, UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.infotext import format_infotext, request_from_infotext

CHUNK_PARAMETERS = "parameters"
CHUNK_CRAFT = "craftstudio"


def save_png(image: Image.Image, path: str | Path, request: GenerateRequest, *, seed: int,
             model_name: str, extra: dict[str, str] | None = None,
             record: dict[str, Any] | None = None) -> Path:
    """Write `image` with both chunks. Written to a temporary file and renamed into place, so a
    failure (disk full) leaves no partial file and never damages an existing one."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK_PARAMETERS, format_infotext(request, model_name, seed=seed, extra=extra))
    payload = {"version": 1, "request": request.to_dict(), "seed": seed, "model_name": model_name}
    if record:
        payload["record"] = record
    info.add_itxt(CHUNK_CRAFT, json.dumps(payload, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"Could not write {path}: {exc.strerror or exc}; free some disk space or "
                        "choose another folder.") from exc
    return path


def read_text_chunks(path: str | Path) -> dict[str, str]:
    try:
        with Image.open(path) as im:
            im.load()
            return {k: v for k, v in im.info.items() if isinstance(v, str)}
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist.") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path} is not a readable image ({exc}).") from exc


def read_request(path: str | Path) -> GenerateRequest:
    """The request recorded in an image: our JSON chunk first, else A1111 `parameters` text."""
    chunks = read_text_chunks(path)
    if CHUNK_CRAFT in chunks:
        try:
            data = json.loads(chunks[CHUNK_CRAFT])
            request = GenerateRequest.from_dict(data["request"])
            # The recorded seed is the image's own seed (image i of a batch has seed + i).
            return GenerateRequest.from_dict({**request.to_dict(), "seed": data.get("seed", request.seed),
                                              "batch_count": 1})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RequestError(f"{path} has a damaged craftstudio chunk ({exc}).") from exc
    if CHUNK_PARAMETERS in chunks:
        return request_from_infotext(chunks[CHUNK_PARAMETERS])
    raise RequestError(f"{path} holds no generation parameters.")
