"""One launched process: `python -m craftstudio.engine.training.process_entry JOB.json`.

launcher.py starts N of these through accelerate's launcher. Each runs the job (a training, or
the scaling benchmark) as a replica (replicas.py). The main process (rank 0) connects to the app
(process_link.py), reports progress and previews, learns of a cancel, and sends the outcome;
the others are silent. A process that fails writes `error-<rank>.json` into the run's folder, so
the app can show a user error (out of memory on one GPU, say) that a process other than the
main one met. A cancelled process exits normally: the launcher ends the whole group when any
process exits with an error, and that must not cut the main process's checkpoint short.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import UserError
from craftstudio.domain.progress import PreviewEvent, ProgressEvent


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


class _Reporter:
    """The main process's progress callback: every event to the app, waiting for its answer."""

    def __init__(self, link, folder: Path) -> None:
        self.link = link
        self.folder = folder

    def __call__(self, event: ProgressEvent | PreviewEvent) -> None:
        if isinstance(event, PreviewEvent):
            name = f"preview-{event.step:06d}.png"
            tmp = self.folder / f".{name}.tmp"
            event.image.save(tmp, format="PNG")
            tmp.replace(self.folder / name)
            self.link.send({"event": "preview", "step": event.step, "total": event.total, "file": name,
                            "image_index": event.image_index}, wait=True)
            return
        self.link.send({"event": "progress", "stage": event.stage, "step": event.step, "total": event.total,
                        "image_index": event.image_index, "image_count": event.image_count,
                        "message": event.message, "values": event.values}, wait=True)


def run_job(job: dict[str, Any], progress, cancel: CancelToken) -> dict[str, Any]:
    """The job's result document (the main process's is what the app receives)."""
    if job["kind"] == "train":
        from craftstudio.domain.training import train_request_from_dict
        from craftstudio.engine.training import train_here

        request = train_request_from_dict(job["request"])
        return train_here(request, progress=progress, cancel=cancel, resume=bool(job.get("resume"))).to_dict()
    if job["kind"] == "bench-train":
        from craftstudio.engine.training.bench_scaling import measure_here

        return measure_here(job["options"], progress=progress)
    raise ValueError(f"unknown job kind {job['kind']!r}")


def _leave_group() -> None:
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    folder = Path(job["folder"])
    rank = _rank()
    cancel = CancelToken()
    link = None
    if rank == 0:
        from craftstudio.engine.training.process_link import ParentLink

        link = ParentLink.connect(tuple(job["address"]), job["token"], cancel.cancel)
    try:
        result = run_job(job, _Reporter(link, folder) if link is not None else None, cancel)
    except Cancelled:
        _leave_group()
        if link is not None:
            link.send({"event": "cancelled"})
        return 0
    except BaseException as exc:
        user = isinstance(exc, UserError)
        error = {"event": "error", "type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
                 "user": user, "rank": rank}
        if not user:
            traceback.print_exc()
        (folder / f"error-{rank}.json").write_text(json.dumps(error))
        if link is not None:
            link.send(error)
        return 1
    finally:
        sys.stdout.flush()
    _leave_group()
    if link is not None:
        link.send({"event": "result", "result": result})
        link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
