"""`craftstudio gui` (the window; `--exit-after` for smoke tests of an install) and
`craftstudio screenshots` (a PNG of every area, for the README). Qt loads only when they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    gui = sub.add_parser("gui", help="open the desktop application")
    gui.add_argument("--exit-after", type=float, metavar="SECONDS",
                     help="close the window after this many seconds (for smoke tests of an install)")
    gui.set_defaults(func=_run_gui)
    shots = sub.add_parser("screenshots", help="save a PNG of every area of the window (offscreen)")
    shots.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    shots.set_defaults(func=_run_screenshots)


def _run_gui(args) -> int:
    from craftstudio.app import main as gui_main

    return gui_main([], exit_after=args.exit_after)


def _run_screenshots(args) -> int:
    from craftstudio.screenshots import main as screenshots_main

    return screenshots_main(args.out)
