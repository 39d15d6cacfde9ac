"""``bot review``: reshare candidates waiting for staff (mode: review); approve or reject them by ID.

Approved posts are reshared by the running worker, within the same caps and spacing
as automatic ones; rejected posts are never reshared.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

import regex
import structlog

from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError
from bot.ledger.db import default_url, open_engine
from bot.ledger.reshares import ReshareLedger, _utc

PAST = {"approve": "reshare_approved", "reject": "reshare_rejected"}
_CONTROL = regex.compile(r"[\p{Cc}\p{Cf}]+")  # posts are untrusted: no terminal escapes or bidi tricks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "approve", "reject"),
        default="list",
        help="list (default) the waiting candidates, or approve / reject some",
    )
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="candidate IDs as listed")
    parser.add_argument("--json", action="store_true", help="print the list as JSON for tools")


def clean(text: str, width: int | None = None) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def waiting(ledger: ReshareLedger, every_campaign: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "campaign": r.campaign,
            "platform": r.platform,
            "account": r.account,
            "author": r.author,
            "url": r.url,
            "text": clean(r.text),
            "queued_at": _utc(r.decided_at).isoformat(),
        }
        for r in ledger.rows(status=["queued"], every_campaign=every_campaign)
    ]


def render(items: list[dict[str, Any]], now: datetime) -> str:
    if not items:
        return "No reshare candidates are waiting for review."
    lines = [f"{len(items)} reshare candidate(s) waiting for review:"]
    for item in items:
        age = now - datetime.fromisoformat(item["queued_at"])
        hours = int(age.total_seconds() // 3600)
        lines.append(
            f"  {item['id']:>5}  {hours:>3}h ago  {item['account']} <- @{clean(item['author'], 40)}: "
            f"{clean(item['text'], 70)}"
        )
        lines.append(f"         {clean(item['url'])}")
    lines.append("Approve with `bot review approve ID...`, reject with `bot review reject ID...`.")
    return "\n".join(lines)


def decide(
    ledger: ReshareLedger, action: str, ids: list[int], now: datetime, every_campaign: bool = False
) -> list[str]:
    """Approve or reject each queued ID; one problem message per ID that could not be."""
    log = structlog.get_logger("bot.cli.review")
    found = {r.id: r for r in ledger.rows(ids=ids, every_campaign=every_campaign)}
    problems = []
    for row_id in ids:
        row = found.get(row_id)
        if row is None:
            problems.append(f"review: ID {row_id}: no such reshare candidate (run `bot review` for the list)")
            continue
        if action == "approve":
            values = dict(status="pending", decision="allow", reason="approved", decided_at=now, not_before=None)
        else:
            values = dict(status="rejected", decision="skip", reason="rejected_by_staff", acted_at=now)
        if not ledger.transition(row_id, ["queued"], **values):
            problems.append(f"review: ID {row_id}: not waiting for review (status: {row.status})")
            continue
        log.info(
            PAST[action],
            campaign=row.campaign,
            platform=row.platform,
            account=row.account,
            remote_id=row.remote_id,
            author=row.author,
            reason=values["reason"],
            url=row.url,
            decision_id=row_id,
        )
    return problems


def main(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.campaign import load

    now = (clock or SystemClock()).now()
    try:
        name, every = load(args.campaign).name, False
    except ConfigError:
        name, every = "", True  # files mid-edit must not stop staff from reviewing
    engine = open_engine(default_url(args.campaign))
    try:
        ledger = ReshareLedger(engine, name)
        if args.action == "list":
            if args.ids:
                print("review: list takes no IDs (did you mean `bot review approve ID...`?)")
                return 2
            items = waiting(ledger, every)
            print(json.dumps(items, ensure_ascii=False, indent=2) if args.json else render(items, now))
            return 0
        if not args.ids:
            print(f"review: {args.action} needs at least one ID (run `bot review` for the list)")
            return 2
        problems = decide(ledger, args.action, args.ids, now, every)
        done = len(args.ids) - len(problems)
        for problem in problems:
            print(problem)
        print(
            f"{PAST[args.action].removeprefix('reshare_')} {done} candidate(s)"
            + (" (the worker reshares approved ones within the caps)" if args.action == "approve" and done else "")
        )
        return 1 if problems else 0
    finally:
        engine.dispose()
