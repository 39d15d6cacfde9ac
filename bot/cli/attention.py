"""``bot attention``: publications nobody can tell went out, and how a person settles each one.

A platform with no idempotency key and no way to read a post back (Telegram channels; Facebook, LinkedIn
when the read-back finds nothing certain; X after an uncertain last attempt) leaves the bot unable to
know whether a timed-out or crashed attempt reached it. The bot never guesses: the publication waits in
``needs_attention``, is alerted and shown by ``bot status`` and the status page, until someone looks at
the account and runs one of::

    bot attention                                   # what waits, with what is known of each
    bot attention resolve 42 --published URL        # it is live: recorded as published, never sent again
    bot attention resolve 42 --not-published        # it is not there: recorded; `bot publish ... --again` sends it
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from bot.core.clock import Clock, SystemClock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "resolve"), default="list")
    parser.add_argument("id", nargs="?", type=int, help="the publication's number, as `bot attention` lists it")
    found = parser.add_mutually_exclusive_group()
    found.add_argument("--published", metavar="URL", nargs="?", const="", help="the post is live (its URL, if known)")
    found.add_argument("--not-published", action="store_true", help="the post is not on the account")
    parser.add_argument("--by", default=None, help="who looked (default: $BOT_OPERATOR or the login name)")


def describe(row: Any) -> str:
    """One publication waiting for a person, with what the ledger knows of it."""
    slot = f"{row.slot_at:%Y-%m-%d %H:%M} UTC"
    lines = [
        f"#{row.id}  {row.post or row.target} on {row.account} ({row.platform or '?'}), slot {slot}, "
        f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}",
        f"      why: {row.last_error or row.reason or 'outcome unknown'}",
        f"      look at {row.account}, then: bot attention resolve {row.id} --published URL   "
        f"or   bot attention resolve {row.id} --not-published",
    ]
    return "\n".join(lines)


def operator(by: str | None) -> str:
    if by:
        return by
    try:
        return os.environ.get("BOT_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):  # no login name in a container
        return "staff"


def main(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.ledger.db import default_url, open_engine
    from bot.ledger.publications import Ledger
    from bot.observability import logs

    logs.configure()
    engine = open_engine(default_url(args.campaign))
    try:
        ledger = Ledger(engine, clock or SystemClock())
        if args.action == "list":
            rows = ledger.needing_attention()
            if not rows:
                print("nothing needs attention: every publication's outcome is known")
                return 0
            print(
                f"{len(rows)} publication{'s' if len(rows) != 1 else ''} need{'s' if len(rows) == 1 else ''} attention:"
            )
            print("\n".join(describe(row) for row in rows))
            return 0
        if args.id is None or (args.published is None and not args.not_published):
            print(
                "bot attention resolve: give the publication's number and what you found: "
                "--published URL (it is live) or --not-published",
                file=sys.stderr,
            )
            return 2
        published = args.published is not None
        row = ledger.resolve(args.id, published=published, by=operator(args.by), url=args.published or None)
    finally:
        engine.dispose()
    if row is None:
        print(
            f"bot attention: publication #{args.id} is not waiting for attention (see `bot attention`)", file=sys.stderr
        )
        return 1
    import structlog

    structlog.get_logger("bot.cli.attention").info(
        "publication_resolved",
        publication=row.id,
        account=row.account,
        post=row.post,
        found="published" if published else "not_published",
        url=row.url,
        by=row.resolved_by,
    )
    if published:
        print(f"#{row.id} recorded as published on {row.account}{': ' + row.url if row.url else ''}")
    else:
        print(
            f"#{row.id} recorded as not published on {row.account}; to send it now: "
            f"bot publish {row.post} {row.account} --again"
        )
    return 0
