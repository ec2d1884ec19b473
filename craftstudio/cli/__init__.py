"""Command line: `python -m craftstudio {gui, generate, train, merge, library, bench, screenshots}`.

One module per command group (`generate`, `train`, `merge`, `library`, `bench`, `gui`); `parsing` holds
what they share. User errors print one line on stderr and exit with status 2; heavy libraries
are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from craftstudio import __version__
from craftstudio.cli import bench, generate, gui, library, merge, train
from craftstudio.cli.parsing import EXIT_USER_ERROR, ArgumentParser
from craftstudio.domain.errors import UserError
from craftstudio.domain.terminal_text import one_line


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="craftstudio", description="CraftStudio: combine a content LoRA "
                                     "and a style LoRA with CRAFT-LoRA, offline.")
    parser.add_argument("--version", action="version", version=f"CraftStudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui.add_commands(sub)
    generate.add_command(sub)
    train.add_commands(sub)
    merge.add_commands(sub)
    library.add_commands(sub)
    bench.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.func(args)
    except UserError as exc:
        print(f"craftstudio: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("craftstudio: interrupted", file=sys.stderr)
        return 130
