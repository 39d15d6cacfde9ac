"""``bot publish POST --account ACCOUNT``: staff send one post now, through the same claim and ledger.

The publication is keyed to the post, the account and the (UTC) day, and marked manual: running
the command twice (a double click, a retried script) publishes once, and says where the first went.
``--again`` keys it to the current second instead, for a deliberate second publication that day.
``bot status`` lists manual publications with the rest.
Exit status: 0 published, 75 rate-limited or unavailable (recorded; a running worker retries it),
1 anything else (failed, skipped, unknown post or account, invalid campaign).
"""

from __future__ import annotations

import argparse
import difflib
import os
import socket
import sys
from typing import Any

from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError

EX_TEMPFAIL = 75


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("post", metavar="POST", help="post id: the file name under posts/ without .yaml")
    parser.add_argument("--account", required=True, metavar="ACCOUNT", help="account id from config/accounts.yaml")
    parser.add_argument(
        "--again",
        action="store_true",
        help="publish even if this post already went to this account today (a new publication, on purpose)",
    )


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(sorted(known)) or 'none'})"


def publish(
    campaign: Any,
    ledger: Any,
    post: str,
    account: str,
    *,
    clock: Clock,
    adapters: Any = None,
    owner: str | None = None,
    again: bool = False,
) -> Any:
    """Publish ``post`` to ``account`` now; the Publisher's Result."""
    from bot.publishing.publisher import AdapterPool, Publisher

    owner = owner or f"manual:{socket.gethostname()}:{os.getpid()}"
    if adapters is None:
        from bot.mediahost import from_settings

        # Bluesky sessions outlive the command; Instagram and Threads fetch media from the campaign's bucket.
        adapters = AdapterPool(state_dir=campaign.root / "state", media_host=from_settings(campaign.media_host))
    publisher = Publisher(campaign, ledger, adapters, clock, owner)
    try:
        return publisher.publish_now(post, account, again=again)
    finally:
        publisher.adapters.close()


def main(args: argparse.Namespace, clock: Clock | None = None, adapters: Any = None) -> int:
    from bot.campaign import load
    from bot.ledger.db import default_url, open_engine
    from bot.ledger.publications import Ledger
    from bot.observability import logs
    from bot.publishing.publisher import Outcome

    logs.configure()
    try:
        campaign = load(args.campaign)
    except ConfigError as err:
        print("\n".join(err.problems), file=sys.stderr)
        print("bot publish: fix the campaign files first (see `bot check`)", file=sys.stderr)
        return 1
    problems = []
    if args.post not in campaign.posts:
        problems.append(_unknown("post", args.post, list(campaign.posts)))
    if args.account not in campaign.accounts:
        problems.append(_unknown("account", args.account, list(campaign.accounts)))
    if problems:
        print("\n".join(f"bot publish: {p}" for p in problems), file=sys.stderr)
        return 1
    engine = open_engine(default_url(args.campaign))
    ledger = Ledger(engine, clock or SystemClock())
    try:
        result = publish(
            campaign, ledger, args.post, args.account, clock=clock or SystemClock(), adapters=adapters, again=args.again
        )
        earlier = None if result.outcome is not Outcome.not_mine else _todays(campaign, ledger, args, clock)
    except ConfigError as err:  # the media host's key variables unset: named, never their values
        print("\n".join(f"bot publish: {p}" for p in err.problems), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if result.outcome is Outcome.published:
        again = " again (a new publication, as --again asked)" if args.again else ""
        print(f"published {args.post} on {args.account}{again}: {result.url}")
        return 0
    if result.outcome is Outcome.retry_later:
        print(
            f"{args.account} is not taking posts right now ({result.reason}); recorded for a retry at "
            f"{result.retry_at:%Y-%m-%d %H:%M:%S} UTC, which a running worker will make",
            file=sys.stderr,
        )
        return EX_TEMPFAIL
    if result.outcome is Outcome.not_mine:
        if earlier is not None and earlier.state == "published":
            print(
                f"{args.post} was already published on {args.account} today: {earlier.url}; nothing done "
                "(use --again to publish it once more)"
            )
            return 0
        state = earlier.state if earlier is not None else "claimed"
        print(
            f"{args.post} on {args.account} is already under way today ({state}); nothing done "
            "(`bot status` shows it; use --again for a second publication)",
            file=sys.stderr,
        )
        return 1
    if result.outcome is Outcome.needs_attention:
        print(
            f"{args.post} on {args.account}: nobody can tell whether it went out ({result.reason}); it is not sent "
            f"again. Look at the account, then `bot attention resolve {result.publication_id} --published URL` "
            "or `--not-published`",
            file=sys.stderr,
        )
        return 1
    print(f"{args.post} was not published on {args.account}: {result.outcome.value} ({result.reason})", file=sys.stderr)
    return 1


def _todays(campaign: Any, ledger: Any, args: argparse.Namespace, clock: Clock | None) -> Any:
    """The ledger row of today's manual publication of the post on the account, if there is one."""
    from bot.ledger.publications import PublicationKey
    from bot.publishing.results import manual_slot

    slot = manual_slot(args.post, args.account, (clock or SystemClock()).now(), again=args.again)
    return ledger.get(PublicationKey(campaign.name, slot.at, slot.target, args.account))
