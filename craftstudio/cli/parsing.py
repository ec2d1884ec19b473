"""What every command of the command line shares: the parser class that shows defaults in
--help, the exit status of a user error, and the help of a command group called bare."""

from __future__ import annotations

import argparse
import copy

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default after its help, except where there is nothing to show (None,
    a flag's False/True) or the help text already says what the default is."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _shows_default(action):  # argparse skips options without help
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not _shows_default(action) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def _shows_default(action: argparse.Action) -> bool:
    default = action.default
    return (bool(action.option_strings) and default not in (None, "", argparse.SUPPRESS)
            and not isinstance(default, bool))


class ArgumentParser(argparse.ArgumentParser):
    """Every (sub)command's parser shows defaults in --help; sub-parsers inherit this class."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def help_command(parser: argparse.ArgumentParser):  # noqa: ANN202
    """The action of a command group called without a sub-command: its help, exit status 2."""
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return show
