"""``bot check``: validate every campaign file and report all problems at once."""

from __future__ import annotations

import argparse
import sys

from bot.campaign import Inspection, inspect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-warnings", action="store_true", help="print errors only (warnings still never fail the check)"
    )
    parser.add_argument(
        "--explain-word",
        metavar="WORD",
        help='show what a blocked word (or phrase, or ="exact form") matches, with disguises it catches, and stop',
    )


def main(args: argparse.Namespace) -> int:
    """Exit 1 listing every problem when there are errors; 0 with a one-line summary otherwise."""
    if args.explain_word is not None:
        from bot.resharing.matching import explain, variants

        print("\n".join(explain(args.explain_word, variants(args.explain_word))))
        return 0
    result = inspect(args.campaign)
    errors, warnings = result.errors, ([] if args.no_warnings else result.warnings)
    for line in sorted(errors + warnings, key=_order):
        print(line)
    if errors:
        print(f"{len(errors)} error{_s(errors)}, {len(result.warnings)} warning{_s(result.warnings)}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0


def summary(result: Inspection) -> str:
    c = result.campaign
    assert c is not None  # a campaign without errors was built
    slots = sum(len(s.slots) for s in c.schedules)
    n_warn = len(result.warnings)
    return (
        f"campaign '{c.name}' is valid: {len(c.accounts)} accounts, {len(c.posts)} posts "
        f"({len(c.queues)} queues), {len(c.schedules)} schedules with {slots} slots; "
        f"{n_warn} warning{'' if n_warn == 1 else 's'}"
    )


def _order(line: str) -> tuple[str, int]:
    path, _, rest = line.partition(":")
    number = rest.partition(":")[0]
    return path, int(number) if number.isdigit() else 0


def _s(items: list[str]) -> str:
    return "" if len(items) == 1 else "s"
