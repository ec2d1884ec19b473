"""`craftstudio library …`: scan, list, import, info, tag, edit, remove, restore, params.

`add_commands(subparsers)` adds the `library` command to the main parser; every leaf sets
`func(args) -> int`. Output is a readable table, or JSON with `--json` (before or after the
sub-command). `--home DIR` picks the library folder (default: CRAFTSTUDIO_HOME or the
platform's user data folder). User errors are raised as `UserError` for the main to print.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from craftstudio.cli.parsing import help_command
from craftstudio.domain.errors import UserError
from craftstudio.domain.family import Family
from craftstudio.domain.progress import ProgressEvent
from craftstudio.domain.terminal_text import one_line, printable
from craftstudio.library.catalog import Catalog
from craftstudio.library.header import UnreadableFile, read_header
from craftstudio.library.identify import KINDS, ROLES, NotRecognised, identify
from craftstudio.library.image_params import read_image_params
from craftstudio.library.item_store import NotInLibrary
from craftstudio.library.records import Item

FAMILIES = [f.value for f in Family]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, max_width: int = 48) -> str:
    """A plain-text table with aligned columns (long cells are shortened with …)."""
    def cell(v: Any) -> str:
        s = "" if v is None else one_line(str(v))
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    # Names and prompts come from files: escape sequences and stray bytes are shown, not obeyed.
    if getattr(args, "json", False):
        print(printable(json.dumps(data, ensure_ascii=False, indent=2, default=str)))
    else:
        print(printable(text))


def _open(args: argparse.Namespace) -> Catalog:
    return Catalog.open(getattr(args, "home", None))


def _item_rows(items: list[Item]) -> list[list[Any]]:
    return [[i.short_id, i.name, i.kind, i.family, i.role if i.kind == "lora" else "", i.rank or "",
             i.format, ", ".join(i.tags), ("missing " if i.missing else "") + ", ".join(i.triggers[:3])]
            for i in items]


ITEM_HEADERS = ("ID", "NAME", "KIND", "FAMILY", "ROLE", "RANK", "FORMAT", "TAGS", "TRIGGERS")


def _describe(item: Item) -> str:
    fields = [("id", item.id), ("name", item.name), ("title", item.title), ("kind", item.kind),
              ("family", Family(item.family).label), ("role", item.role if item.kind == "lora" else None),
              ("rank", item.rank), ("format", item.format), ("path", item.path),
              ("registered", "in place (your file)" if item.in_place else "copied into the library"),
              ("size", f"{item.size:,} bytes"), ("triggers", ", ".join(item.triggers)),
              ("tags", ", ".join(item.tags)), ("description", item.description), ("preview", item.preview),
              ("A1111 hash", item.addnet_hash[:12] if item.addnet_hash else None),
              ("base model", item.base_model_hash), ("family from", item.meta.get("family_evidence")),
              ("status", "in the trash" if item.trashed else "missing: file not found" if item.missing else "ok"),
              ("updated", time.strftime("%Y-%m-%d %H:%M", time.localtime(item.updated_at)))]
    return "\n".join(f"{k + ':':<13}{one_line(str(v))}" for k, v in fields if v not in (None, ""))


# ---------- commands
def cmd_scan(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        last = [0.0]
        tty = sys.stderr.isatty() and not args.json

        def progress(event: ProgressEvent) -> None:
            now = time.monotonic()
            if tty and (now - last[0] > 0.2 or event.step == event.total):
                last[0] = now
                print(f"\rscanning {event.step}/{event.total}", end="", file=sys.stderr, flush=True)

        if args.folders:
            report = cat.scan(args.folders, progress=progress)
        else:
            report = cat.resume_scan(progress=progress)
            if report is None:
                raise UserError("Name one or more folders to scan (no interrupted scan to resume).")
        if tty:
            print(file=sys.stderr)
    problems = [(p, r) for p, r in report.unreadable] + [(p, f"skipped: {r}") for p, r in report.other]
    text = (f"Scanned {report.total} files in {report.seconds:.2f} s: {report.added} added, "
            f"{report.updated} updated, {report.unchanged} unchanged, {len(report.unreadable)} unreadable, "
            f"{len(report.other)} not LoRAs or models, {len(report.vanished)} vanished, "
            f"{report.forgotten} gone since the last scan.")
    if problems:
        text += "\n\n" + table(problems, ("FILE", "PROBLEM"), max_width=90)
    _emit(args, report.to_dict(), text)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        if args.unreadable:
            entries = [e for e in cat.files() if e.status != "ok"]
            _emit(args, [e.to_dict() for e in entries],
                  table([(e.path, e.status, e.reason) for e in entries], ("FILE", "STATUS", "REASON"), max_width=90)
                  if entries else "No unreadable files.")
            return 0
        if args.duplicates:
            dups = cat.items.duplicates(None if args.kind == "all" else args.kind)
            rows = [(item.short_id, item.name, path) for item, paths in dups for path in paths]
            _emit(args, [{"item": i.to_dict(), "paths": p} for i, p in dups],
                  table(rows, ("ID", "NAME", "FILE"), max_width=90) if rows else "No duplicates.")
            return 0
        kind = None if args.kind == "all" else args.kind
        if args.usable_with:
            items = cat.items.usable_with(args.usable_with, kind=kind or "lora")
        else:
            items = cat.items.search(kind=kind, family=args.family, role=args.role, text=args.search,
                                     tag=args.tag, trigger=args.trigger, trashed=args.trash)
    _emit(args, [i.to_dict() for i in items],
          table(_item_rows(items), ITEM_HEADERS) + f"\n{len(items)} item(s)" if items else "Nothing found.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        result = cat.import_file(args.file, in_place=args.in_place)
    item = result.item
    assert item is not None
    how = "registered where it is" if item.in_place else f"copied to {item.path}"
    verb = "Added" if result.created else "Already in the library:"
    _emit(args, {"created": result.created, "item": item.to_dict()},
          f"{verb} {item.short_id} {item.name} ({item.kind}, {Family(item.family).label}, {item.role}); {how}.")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        try:
            item = cat.items.find(args.ref)
        except NotInLibrary:
            path = Path(args.ref)
            if not path.is_file():
                raise
            try:
                ident = identify(read_header(path), path)
            except UnreadableFile as exc:
                raise UserError(f"{path} is not readable: {exc.reason}.") from exc
            except NotRecognised as exc:
                raise UserError(f"{path}: {exc.reason}.") from exc
            data = {"in_library": False, "path": str(path), "kind": ident.kind, "family": ident.family.value,
                    "format": ident.format, "rank": ident.rank, "role": ident.role, "title": ident.title,
                    "triggers": ident.triggers, "family_evidence": ident.meta.get("family_evidence")}
            _emit(args, data, "\n".join(f"{k + ':':<16}{v}" for k, v in data.items() if v not in (None, "", []))
                  + "\n(not in the library: `craftstudio library import` adds it)")
            return 0
    _emit(args, item.to_dict(), _describe(item))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    changes = [c for c in args.changes if c != "--json"]
    if "--json" in args.changes:
        args.json = True
    if not changes:
        raise UserError("Give tags to add (+tag) or remove (-tag), e.g. `library tag ID +ink -draft`.")
    with _open(args) as cat:
        item = cat.items.find(args.ref)
        with cat.db.transaction():
            for change in changes:  # in the order given: `+a -a` ends without a
                if change.startswith("-"):
                    item = cat.items.change_tags(item.id, remove=[change[1:]])
                else:
                    item = cat.items.change_tags(item.id, add=[change.removeprefix("+")])
    _emit(args, item.to_dict(), f"{item.short_id} {item.name}: tags {', '.join(item.tags) or '(none)'}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        item = cat.items.find(args.ref)
        if args.name is not None:
            item = cat.rename(item.id, args.name)
        changes: dict[str, Any] = {}
        for key in ("title", "role", "description"):
            if getattr(args, key) is not None:
                changes[key] = getattr(args, key)
        if args.triggers is not None:
            changes["triggers"] = [t.strip() for t in args.triggers.split(",")]
        if changes:
            item = cat.items.edit(item.id, **changes)
    _emit(args, item.to_dict(), _describe(item))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        item = cat.remove(args.ref)
    text = (f"Moved {item.name} to {item.trash_path}" if item.trash_path else
            f"Removed {item.name} from the library; your file {item.path} was left where it is")
    _emit(args, item.to_dict(), f"{text} (undo: craftstudio library restore {item.short_id}).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        item = cat.restore(args.ref)
    _emit(args, item.to_dict(), f"Restored {item.short_id} {item.name} at {item.path}.")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    with _open(args) as cat:
        params = read_image_params(args.image, cat.items)
    if params.request is None:
        _emit(args, params.to_dict(), params.notes[0])
        return 1
    r = params.request
    lines = [f"source:       {params.source}", f"prompt:       {r.prompt}"]
    if r.negative_prompt:
        lines.append(f"negative:     {r.negative_prompt}")
    lines += [f"model:        {r.model or '(none)'}", f"size:         {r.width}x{r.height}",
              f"steps:        {r.steps}", f"cfg scale:    {r.cfg_scale:g}", f"seed:         {r.seed}",
              f"scheduler:    {r.scheduler}"]
    for slot, ref in (("content LoRA", r.content_lora), ("style LoRA", r.style_lora)):
        if ref:
            lines.append(f"{slot + ':':<14}{ref.path} @ {ref.weight:g}")
    if params.loras:
        lines += ["", table([(m.name, f"{m.weight:g}", m.short_hash or "", m.item_id[:12] if m.item_id else
                              "not in library", m.role or "", m.placed or "")
                             for m in params.loras], ("LORA", "WEIGHT", "HASH", "ID", "ROLE", "USED AS"))]
    if params.ignored_settings:
        lines.append("\nnot used: " + ", ".join(params.ignored_settings))
    lines += [f"note: {n}" for n in params.notes]
    _emit(args, params.to_dict(), "\n".join(lines))
    return 0


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `library` and its sub-commands to the main parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help="library folder (default: CRAFTSTUDIO_HOME or the user data folder)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    lib = subparsers.add_parser("library", help="the catalog of models, LoRAs and backbones",
                                description="The catalog of base models, LoRAs and backbones.")
    lib.add_argument("--home", metavar="DIR", default=None,
                     help="library folder (default: CRAFTSTUDIO_HOME or the user data folder)")
    lib.add_argument("--json", action="store_true", default=False, help="print JSON for scripts")
    lib.set_defaults(func=help_command(lib))
    sub = lib.add_subparsers(dest="library_command", metavar="COMMAND")

    p = sub.add_parser("scan", parents=[common], help="scan folders for LoRAs and models (incremental)")
    p.add_argument("folders", nargs="*", metavar="DIR", help="folders to scan; none: resume an interrupted scan")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("list", parents=[common], help="list and search the catalog")
    p.add_argument("--kind", choices=[*KINDS, "all"], default="lora")
    p.add_argument("--family", choices=FAMILIES)
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--search", metavar="TEXT", help="words in names, titles, triggers, tags, descriptions")
    p.add_argument("--tag")
    p.add_argument("--trigger")
    p.add_argument("--usable-with", metavar="MODEL", help="LoRAs made for this base model's family")
    p.add_argument("--duplicates", action="store_true", help="items found at more than one path")
    p.add_argument("--unreadable", action="store_true", help="files that could not be read, with reasons")
    p.add_argument("--trash", action="store_true", help="items in the trash")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", parents=[common], help="copy a file into the library (or register it in place)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--in-place", action="store_true", help="register the file where it is, without copying")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", parents=[common], help="everything known about a file or library item")
    p.add_argument("ref", metavar="FILE|ID")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("tag", parents=[common], help="add (+tag) and remove (-tag) tags",
                       usage="%(prog)s ID +tag -tag ...")
    p.add_argument("ref", metavar="ID")
    p.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("edit", parents=[common], help="edit title, role, trigger phrases, description, name")
    p.add_argument("ref", metavar="ID")
    p.add_argument("--title")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--triggers", metavar="'A, B'", help="comma-separated trigger phrases (replaces them)")
    p.add_argument("--description")
    p.add_argument("--name", help="rename (a file the library owns is renamed on disk too)")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("remove", parents=[common], help="move an item to the library's trash")
    p.add_argument("ref", metavar="ID")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("restore", parents=[common], help="bring an item back from the trash")
    p.add_argument("ref", metavar="ID")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("params", parents=[common], help="the generation parameters of an image")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(func=cmd_params)
    return lib
