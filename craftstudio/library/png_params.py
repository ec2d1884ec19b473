"""PNG files with generation parameters: write them, read them back into a request.

Two text chunks: `parameters` (A1111-compatible infotext, read by most SD tools) and
`craftstudio` (the full request as JSON, preferred when reading).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from craftstudio.domain.atomic_file import atomic_path
from craftstudio.domain.errors import RequestError, UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.domain.infotext import format_infotext, request_from_infotext
from craftstudio.domain.limits import MAX_INFOTEXT_CHARS, MAX_RECORD_CHARS, check_text_size

CHUNK_PARAMETERS = "parameters"
CHUNK_CRAFT = "craftstudio"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286


def save_png(image: Image.Image, path: str | Path, request: GenerateRequest, *, seed: int,
             model_name: str, extra: dict[str, str] | None = None,
             record: dict[str, Any] | None = None, overwrite: bool = True) -> Path:
    """Write `image` with both chunks. Written to a temporary file and renamed into place, so a
    failure (disk full) leaves no partial file and never damages an existing one. With
    `overwrite=False` an existing file is never replaced (`FileExistsError`)."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK_PARAMETERS, format_infotext(request, model_name, seed=seed, extra=extra))
    payload = {"version": 1, "request": request.to_dict(), "seed": seed, "model_name": model_name}
    if record:
        payload["record"] = record
    info.add_itxt(CHUNK_CRAFT, json.dumps(payload, ensure_ascii=False))
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        image.save(fh, format="PNG", pnginfo=info)
    return path


def open_text_chunks(path: str | Path, *, exif_parameters: bool = False) -> dict[str, str]:
    """The text chunks of an image (with `exif_parameters`, A1111's EXIF UserComment of a
    JPEG/WebP as `parameters`). Every way a file can be bad is one `UserError` sentence: missing,
    not an image, a decompression bomb (Pillow's pixel limit), a text chunk over Pillow's limits
    or ours (`MAX_INFOTEXT_CHARS`, `MAX_RECORD_CHARS`)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read for ever
            kind = "a folder" if os.path.isdir(path) else "not a regular file"
            raise UserError(f"{path} is {kind}, not an image.")
        with warnings.catch_warnings():
            # Pillow warns between its pixel limit and twice it; a picture that large is refused too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                chunks = {k: v for k, v in im.info.items() if isinstance(v, str)}
                if exif_parameters and CHUNK_PARAMETERS not in chunks:
                    comment = im.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
                    if comment:
                        chunks[CHUNK_PARAMETERS] = _decode_user_comment(comment).strip("\0").strip()
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"{path} is too large a picture to open ({_first_sentence(exc)}): it may be a "
                        "decompression bomb.") from exc
    except ValueError as exc:  # Pillow's text-chunk limits ("Decompressed Data Too Large"...)
        raise UserError(f"{path} has a text chunk too large to read ({exc}): it is not generation "
                        "parameters.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise UserError(f"{path} is not a readable image ({_first_sentence(exc)}).") from exc
    for name, limit in ((CHUNK_PARAMETERS, MAX_INFOTEXT_CHARS), (CHUNK_CRAFT, MAX_RECORD_CHARS)):
        if name in chunks:
            try:
                check_text_size(f"The {name} text of {path}", chunks[name], limit)
            except RequestError as exc:
                raise RequestError(str(exc)) from None
    return chunks


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text.split(". ")[0] if text else type(exc).__name__)[:160]


def _decode_user_comment(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\0":
        candidates = [body.decode(enc, errors="replace") for enc in ("utf-16-be", "utf-16-le")]
        return min(candidates, key=lambda t: sum(not (c.isprintable() or c in "\n\r\t") for c in t))
    if head.startswith(b"ASCII"):
        return body.decode("ascii", errors="replace")
    return raw.decode("utf-8", errors="ignore")


def read_text_chunks(path: str | Path) -> dict[str, str]:
    return open_text_chunks(path)


def request_from_chunk(path: str | Path, text: str) -> tuple[GenerateRequest, dict[str, str]]:
    """The request in our JSON chunk `text` of `path`: (request, settings dropped as invalid).
    A chunk that is not JSON or holds no request object is one `RequestError`."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(f"{path} has a damaged craftstudio chunk (not JSON): its settings cannot be "
                           "restored.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
        found = type(data.get("request")).__name__ if isinstance(data, dict) else type(data).__name__
        raise RequestError(f"{path} has a damaged craftstudio chunk (its request is {found}, not an "
                           "object): its settings cannot be restored.")
    request, dropped = GenerateRequest.from_record(data["request"])
    # The recorded seed is the image's own seed (image i of a batch has seed + i).
    seed, more = GenerateRequest.from_record({"seed": data.get("seed", request.seed)})
    dropped.update(more)
    return dataclasses.replace(request, seed=seed.seed if not more else request.seed, batch_count=1), dropped


def read_recorded(path: str | Path) -> tuple[GenerateRequest, dict[str, str]]:
    """The request recorded in an image (our JSON chunk first, else A1111 `parameters` text) and,
    for each recorded setting that was invalid and left at its default, {field: sentence}."""
    path = Path(path)
    chunks = open_text_chunks(path)
    if CHUNK_CRAFT in chunks:
        return request_from_chunk(path, chunks[CHUNK_CRAFT])
    if CHUNK_PARAMETERS in chunks:
        dropped: dict[str, str] = {}
        try:
            request = request_from_infotext(chunks[CHUNK_PARAMETERS], dropped=dropped)
        except RequestError as exc:
            raise RequestError(f"{path}: {exc}") from None
        return request, dropped
    raise RequestError(f"{path} holds no generation parameters.")


def read_request(path: str | Path) -> GenerateRequest:
    """The request recorded in an image, every setting valid (invalid ones left at defaults)."""
    return read_recorded(path)[0]
