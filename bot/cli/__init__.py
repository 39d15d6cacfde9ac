"""The command line: ``bot`` and ``python -m bot`` are the same program.

Each command lives in the module that owns its concern; that module provides
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only
when their command runs, so ``bot check`` does not pay for client libraries.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("bot.cli.check", "validate every campaign file and report all problems"),
    "plan": ("bot.cli.plan", "print the calendar of what will be published"),
    "run": ("bot.cli.run", "run the worker: publish on schedule, track and reshare"),
    "status": ("bot.cli.status", "recent publications, failures and what is next"),
    "publish": ("bot.cli.publish", "publish one post now, through the same claim and ledger"),
    "review": ("bot.cli.review", "list reshare candidates waiting for review; approve or reject them"),
    "attention": ("bot.cli.attention", "publications nobody can tell went out: list them, record what you found"),
    "reshare": ("bot.cli.reshare", "withdraw one reshare now, by the URL of the original post or of the reshare"),
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the ``selected`` command's module is imported for its arguments."""
    parser = argparse.ArgumentParser(prog="bot", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--campaign",
        type=Path,
        default=Path(os.environ.get("BOT_CAMPAIGN_DIR", ".")),
        help="campaign folder holding posts/, schedules/, config/ (default: $BOT_CAMPAIGN_DIR or .)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module)
        if name == selected:
            _module(module).add_arguments(command)
    return parser


def _module(name: str) -> Any:
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selected = next((word for word in argv if word in COMMANDS), None)
    if selected == "run":  # the long-lived worker: keep what JSON logs never use out of its memory
        from bot.observability.logs import import_structlog_for_json

        import_structlog_for_json()
    args = build_parser(selected).parse_args(argv)
    return int(_module(args._module).main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
