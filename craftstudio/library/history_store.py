"""Generation history, training runs and curve presets.

Every generation is stored with its full request (JSON), so any past image can be made again;
`request()` turns a row back into a `GenerateRequest`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.library.database import Database

TRAINING_STATUSES = ("running", "finished", "failed", "cancelled")


@dataclass
class GenerationRecord:
    id: int
    created_at: float
    request: GenerateRequest
    outputs: list[str]
    seed: int
    timings: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "request": self.request.to_dict(),
                "outputs": self.outputs, "seed": self.seed, "timings": self.timings, "record": self.record}


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery shows: every field narrows it; empty fields match everything.

    `lora` matches the content or the style LoRA by file name (any part of the path);
    `curves` is a curve preset name as recorded in the request; dates are Unix times."""

    text: str = ""
    model: str = ""
    lora: str = ""
    mode: str = ""
    curves: str = ""
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition (after WHERE) and its arguments; "1" when nothing is filtered."""
        parts, args = [], []
        if self.text.strip():
            parts.append("prompt LIKE ?")
            args.append(f"%{self.text.strip()}%")
        if self.model.strip():
            parts.append("model LIKE ?")
            args.append(f"%{self.model.strip()}%")
        if self.lora.strip():
            parts.append("(json_extract(request, '$.content_lora.path') LIKE ? "
                         "OR json_extract(request, '$.style_lora.path') LIKE ?)")
            args += [f"%{self.lora.strip()}%"] * 2
        if self.mode:
            parts.append("mode = ?")
            args.append(self.mode)
        if self.curves:
            parts.append("json_extract(request, '$.curves.name') = ?")
            args.append(self.curves)
        if self.since is not None:
            parts.append("created_at >= ?")
            args.append(self.since)
        if self.until is not None:
            parts.append("created_at < ?")
            args.append(self.until)
        return (" AND ".join(parts) or "1"), args


@dataclass
class TrainingRun:
    id: int
    kind: str
    status: str
    request: dict[str, Any]
    output_path: str | None
    result: dict[str, Any]
    error: str | None
    started_at: float
    finished_at: float | None


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------- generations
    def add_generation(self, request: GenerateRequest, outputs: list[str], *, seed: int | None = None,
                       timings: dict[str, float] | None = None, record: dict[str, Any] | None = None,
                       content_lora_id: str | None = None, style_lora_id: str | None = None) -> int:
        """Record one generation; LoRA ids default to the requests' sha256 when the catalog has them."""
        def known(ref_id: str | None) -> str | None:
            return ref_id if ref_id and self.db.scalar("SELECT 1 FROM items WHERE id = ?", (ref_id,)) else None

        content = content_lora_id or (request.content_lora.sha256 if request.content_lora else None)
        style = style_lora_id or (request.style_lora.sha256 if request.style_lora else None)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO generations (created_at, model, prompt, seed, mode, request, outputs, timings, "
                "record, content_lora, style_lora) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), request.model, request.prompt, request.seed if seed is None else seed,
                 request.mode.value, json.dumps(request.to_dict(), ensure_ascii=False),
                 json.dumps([str(p) for p in outputs], ensure_ascii=False), json.dumps(timings or {}),
                 json.dumps(record or {}, ensure_ascii=False, default=str), known(content), known(style)))
            return int(cur.lastrowid or 0)

    def generations(self, *, limit: int = 100, search: str | None = None) -> list[GenerationRecord]:
        sql, args = "SELECT * FROM generations", []
        if search:
            sql += " WHERE prompt LIKE ?"
            args.append(f"%{search}%")
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(int(limit))
        return [self._generation(r) for r in self.db.execute(sql, args)]

    def page(self, where: GalleryFilter | None = None, *, offset: int = 0,
             limit: int = 200) -> list[GenerationRecord]:
        """One page of the gallery, newest first (created_at, then id, so ties keep an order)."""
        condition, args = (where or GalleryFilter()).where()
        rows = self.db.execute(f"SELECT * FROM generations WHERE {condition} "  # noqa: S608 (no user SQL)
                               "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                               [*args, int(limit), int(offset)])
        return [self._generation(r) for r in rows]

    def count(self, where: GalleryFilter | None = None) -> int:
        condition, args = (where or GalleryFilter()).where()
        return int(self.db.scalar(f"SELECT COUNT(*) FROM generations WHERE {condition}", args) or 0)  # noqa: S608

    def models(self) -> list[str]:
        """The base models that made the recorded images (for the gallery's filter)."""
        return [r["model"] for r in self.db.execute("SELECT DISTINCT model FROM generations ORDER BY model")]

    def loras(self) -> list[str]:
        """The LoRA files the recorded images used, by path (for the gallery's filter)."""
        rows = self.db.execute(
            "SELECT DISTINCT json_extract(request, '$.content_lora.path') AS p FROM generations "
            "UNION SELECT DISTINCT json_extract(request, '$.style_lora.path') FROM generations")
        return sorted(r["p"] for r in rows if r["p"])

    def delete_output(self, path: str, trash: Path) -> Path | None:
        """Move one image to `trash` and drop it from its generation (the generation too when
        it has no image left). Returns where the file went (None if it was already gone)."""
        record = self.generation_for_output(path)
        moved = None
        source = Path(path)
        if source.exists():
            trash.mkdir(parents=True, exist_ok=True)
            moved = trash / source.name
            counter = 2
            while moved.exists():
                moved = trash / f"{source.stem}-{counter}{source.suffix}"
                counter += 1
            shutil.move(source, moved)  # the trash may be on another disk
        if record is not None:
            left = [p for p in record.outputs if p != str(path)]
            with self.db.transaction() as conn:
                if left:
                    conn.execute("UPDATE generations SET outputs = ? WHERE id = ?",
                                 (json.dumps(left, ensure_ascii=False), record.id))
                else:
                    conn.execute("DELETE FROM generations WHERE id = ?", (record.id,))
        return moved

    def generation(self, generation_id: int) -> GenerationRecord:
        row = self.db.one("SELECT * FROM generations WHERE id = ?", (generation_id,))
        if row is None:
            raise UserError(f"No generation {generation_id} in the history.")
        return self._generation(row)

    def generation_for_output(self, path: str) -> GenerationRecord | None:
        row = self.db.one("SELECT g.* FROM generations g, json_each(g.outputs) o WHERE o.value = ?",
                          (str(path),))
        return self._generation(row) if row else None

    @staticmethod
    def _generation(row: Any) -> GenerationRecord:
        return GenerationRecord(row["id"], row["created_at"], GenerateRequest.from_dict(json.loads(row["request"])),
                                json.loads(row["outputs"]), row["seed"], json.loads(row["timings"]),
                                json.loads(row["record"]))

    # ---------- training runs
    def start_training_run(self, kind: str, request: dict[str, Any]) -> int:
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT INTO training_runs (kind, request, started_at) VALUES (?, ?, ?)",
                               (kind, json.dumps(request, ensure_ascii=False, default=str), time.time()))
            return int(cur.lastrowid or 0)

    def finish_training_run(self, run_id: int, status: str, *, output_path: str | None = None,
                            output_item: str | None = None, result: dict[str, Any] | None = None,
                            error: str | None = None) -> None:
        if status not in TRAINING_STATUSES:
            raise ValueError(status)
        with self.db.transaction() as conn:
            conn.execute("UPDATE training_runs SET status = ?, output_path = ?, output_item = ?, result = ?, "
                         "error = ?, finished_at = ? WHERE id = ?",
                         (status, output_path, output_item, json.dumps(result or {}, default=str), error,
                          time.time(), run_id))

    def training_runs(self, *, limit: int = 100) -> list[TrainingRun]:
        rows = self.db.execute("SELECT * FROM training_runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,))
        return [TrainingRun(r["id"], r["kind"], r["status"], json.loads(r["request"]), r["output_path"],
                            json.loads(r["result"]), r["error"], r["started_at"], r["finished_at"])
                for r in rows]

    # ---------- curve presets
    def save_curve_preset(self, name: str, data: dict[str, Any], *, builtin: bool = False) -> None:
        if not name.strip():
            raise UserError("A curve preset needs a name.")
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO curve_presets (name, data, builtin, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data, "
                         "updated_at = excluded.updated_at", (name.strip(), json.dumps(data), int(builtin), now, now))

    def curve_preset(self, name: str) -> dict[str, Any]:
        raw = self.db.scalar("SELECT data FROM curve_presets WHERE name = ?", (name,))
        if raw is None:
            raise UserError(f"No curve preset is called {name!r}.")
        return json.loads(raw)

    def curve_presets(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: json.loads(r["data"])
                for r in self.db.execute("SELECT name, data FROM curve_presets ORDER BY name")}

    def delete_curve_preset(self, name: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM curve_presets WHERE name = ?", (name,))
