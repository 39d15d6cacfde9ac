"""``bot reshare withdraw URL``: take back one reshare now, named by the URL of the original post or of our reshare.

The withdrawal is recorded in the ledger before the platform is asked, so a failure (or a crash) leaves
it ``withdrawing`` for the running worker to finish; ``bot status`` lists withdrawn reshares with why.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import structlog

from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, ConfigError

STAFF = "staff"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("withdraw",), help="withdraw: take back the reshare of one post")
    parser.add_argument("url", metavar="URL", help="the original post's URL (or at:// URI), or our reshare's URL")
    parser.add_argument("--reason", default="", help="why, for the ledger and the log (optional)")


def _candidates(url: str) -> list[str]:
    bare = url.strip()
    return list(dict.fromkeys([bare, bare.rstrip("/"), bare.rstrip("/") + "/"]))


def withdraw(campaign: Any, engine: Any, url: str, detail: str, clock: Clock, adapters: Any = None) -> list[str]:
    """Withdraw every standing reshare of the post at ``url``; one line per reshare saying what happened."""
    from bot.ledger.reshares import ReshareLedger
    from bot.publishing.adapters import AdapterPool
    from bot.resharing.resharer import WITHDRAW_GRACE, mark_withdrawing, perform_withdrawal

    ledger = ReshareLedger(engine, campaign.name)
    rows = next((found for u in _candidates(url) if (found := ledger.standing(url=u))), [])
    if not rows:
        return []
    pool = adapters or AdapterPool(state_dir=campaign.root / "state")
    log = structlog.get_logger("bot.cli.reshare").bind(campaign=campaign.name)

    def emit(event: str, row: Any, *, level: str = "info", **fields: Any) -> None:
        getattr(log, level)(
            event, platform=row.platform, account=row.account, url=row.url, decision_id=row.id, **fields
        )

    lines = []
    for row in rows:
        now = clock.now()
        # Held off the worker for a while: this command makes the call itself.
        if not mark_withdrawing(ledger, row, STAFF, detail, not_before=now + WITHDRAW_GRACE):
            lines.append(f"{row.account}: {row.url} was being withdrawn by someone else")
            continue
        fresh = ledger.rows(ids=[row.id])[0]
        account = campaign.accounts.get(row.account)
        try:
            adapter = pool.get(account) if account is not None else None
        except BotError as err:  # MissingSecret names the variable, never its value
            adapter = None
            lines.append(f"{row.account}: {err}")
        outcome = perform_withdrawal(ledger, adapter, fresh, clock, emit)
        if outcome == "withdrawn":
            lines.append(f"{row.account}: withdrew the reshare of {row.url}")
        else:
            error = ledger.rows(ids=[row.id])[0].error or ""
            lines.append(f"{row.account}: could not withdraw yet ({error}); the worker tries again")
    if adapters is None:
        pool.close()
    return lines


def main(args: argparse.Namespace, clock: Clock | None = None, adapters: Any = None) -> int:
    from bot.campaign import load
    from bot.ledger.db import default_url, open_engine
    from bot.observability import logs

    logs.configure()
    try:
        campaign = load(args.campaign)
    except ConfigError as err:
        print("\n".join(err.problems), file=sys.stderr)
        print("bot reshare: fix the campaign files first (see `bot check`)", file=sys.stderr)
        return 1
    engine = open_engine(default_url(args.campaign))
    try:
        lines = withdraw(
            campaign, engine, args.url, args.reason or "withdrawn by staff", clock or SystemClock(), adapters
        )
    finally:
        engine.dispose()
    if not lines:
        print(f"bot reshare: no standing reshare of {args.url} in this campaign's ledger (see `bot status`)")
        return 1
    print("\n".join(lines))
    return 0 if all("withdrew" in line for line in lines) else 1
