"""``bot status``: what was published (with URLs), what failed or was skipped and why, and what is next.

Reads the same ledger as the worker and ``bot plan``; ``--json`` prints the same for tools.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError
from bot.ledger.publications import Ledger
from bot.observability.redaction import redact
from bot.platforms.credentials import register_present


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for tools instead of text")
    parser.add_argument(
        "--limit", type=_positive, default=10, metavar="N", help="show at most N entries per section (default 10)"
    )
    parser.add_argument(
        "--days",
        type=_positive,
        default=14,
        metavar="D",
        help="look this many days ahead for what is next (default 14)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got: {value}")
    return value


def _row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "slot": row.slot_at.isoformat(),
        "updated": row.updated.isoformat(),
        "post": row.post,
        "account": row.account,
        "platform": row.platform,
        "target": row.target,
        "state": row.state,
        "reason": row.reason,
        # Stored redacted since the ledger redacts what it records; rows from before are redacted here too.
        "error": redact(row.last_error) if row.last_error else row.last_error,
        "attempts": row.attempts,
        "remote_id": row.remote_id,
        "url": row.url,
        "manual": bool(row.manual),
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
    }


def _redacted(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "error": redact(str(item.get("error") or "")) or None}


def upcoming(campaign: Any, ledger: Ledger, now: datetime, days: int, limit: int) -> list[dict[str, Any]]:
    """The next publications the schedules promise, per account, leaving out what the ledger already has."""
    from bot.schedule.occurrences import expand, occurrences

    end = now + timedelta(days=days)
    taken = ledger.keys_taken(campaign.name, now - timedelta(days=1), end)
    out: list[dict[str, Any]] = []
    for planned in expand(campaign, occurrences(campaign, now, end), ledger.used_posts):
        occ = planned.occurrence
        slot_at = occ.at.replace(microsecond=0)
        accounts = [a for a in planned.accounts if (slot_at, occ.target, a) not in taken]
        if not accounts:
            continue
        tz = next((s.timezone for s in campaign.schedules if s.name == occ.schedule), None)
        out.append(
            {
                "at": occ.at.isoformat(),
                "local": occ.at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if tz else None,
                "schedule": occ.schedule,
                "target": occ.target,
                "post": planned.post,
                "accounts": accounts,
            }
        )
        if len(out) >= limit:
            break
    return out


def collect(
    campaign: Any, ledger: Ledger, now: datetime, *, limit: int = 10, days: int = 14, campaign_name: str | None = None
) -> dict[str, Any]:
    """Everything ``bot status`` shows, as plain data. ``campaign`` may be None when its files are invalid."""
    name = campaign.name if campaign is not None else campaign_name
    return {
        "campaign": name,
        "now": now.isoformat(),
        "counts": ledger.counts(name),
        "skip_reasons": ledger.skip_reasons(name),
        "recent": [_row(r) for r in ledger.recent(limit, name)],
        "failures": [_row(r) for r in ledger.failures(limit, name)],
        "in_flight": [_row(r) for r in ledger.in_flight(name)][:limit],
        # Every one of them, not the latest few: each waits for a person until resolved.
        "needs_attention": [_row(r) for r in ledger.needing_attention(name)],
        "next": upcoming(campaign, ledger, now, days, limit) if campaign is not None else None,
        "reshares": reshares(ledger, name, limit),
    }


def reshares(ledger: Ledger, campaign: str | None, limit: int) -> dict[str, Any]:
    """Resharing at a glance: counts by status, reason and account; latest done, waiting for review, failed."""
    from bot.ledger.reshares import ReshareLedger

    summary = ReshareLedger(ledger.engine, campaign or "").summary(limit, every_campaign=campaign is None)

    def row(r: Any) -> dict[str, Any]:
        return {
            "id": r.id,
            "platform": r.platform,
            "account": r.account,
            "author": r.author,
            "url": r.url,
            "status": r.status,
            "reason": r.reason,
            "detail": r.detail or None,
            "reshare_url": r.reshare_url,
            "error": redact(r.error) if r.error else None,
            "decided": r.decided_at.isoformat(),
            "withdrawn_reason": r.withdrawn_reason,
            "withdrawn_detail": r.withdrawn_detail,
            "withdrawn": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
        }

    return {
        key: [row(r) for r in value] if key in ("done", "waiting_review", "failed", "withdrawn") else value
        for key, value in summary.items()
    }


def render(data: dict[str, Any]) -> str:
    """The status as text for people on call."""
    c = data["counts"]
    lines = [
        f"Campaign {data['campaign'] or '(all)'} at {_t(data['now'])}",
        f"Published {c['published']}, skipped {c['skipped']}, failed {c['failed']}, "
        f"in flight {c['claimed'] + c['retrying']}, needs attention {c.get('needs_attention', 0)}",
    ]
    if data.get("tokens_expiring"):
        lines += ["", "Tokens expiring (renew them; the worker refreshes the ones it can):"]
        lines += [
            f"  {t['account']:<20} ({t['platform']}) {'expired' if t['expired'] else 'expires'} {_t(t['at'])}"
            for t in data["tokens_expiring"]
        ]
    if data.get("needs_attention"):
        lines += ["", "NEEDS ATTENTION (nobody can tell whether these went out; they are not sent again):"]
        lines += [
            f"  #{r['id']}  {_t(r['slot'])}  {r['post'] or r['target']:<24} {r['account']:<20}"
            + (f"  ({r['error']})" if r["error"] else "")
            for r in data["needs_attention"]
        ]
        lines.append("  look at each account, then: bot attention resolve ID --published URL | --not-published")
    lines += ["", "Recent publications:"]
    lines += [
        f"  {_t(r['slot'])}  {r['post'] or '-':<24} {r['account']:<20} {r['url'] or ''}"
        + ("  (manual)" if r["manual"] else "")
        for r in data["recent"]
    ] or ["  none yet"]
    lines += ["", "Failures and skips:"]
    lines += [
        f"  {_t(r['slot'])}  {r['post'] or r['target']:<24} {r['account']:<20} {r['state']}: {r['reason']}"
        + (f"  ({r['error']})" if r["error"] else "")
        for r in data["failures"]
    ] or ["  none"]
    if data["in_flight"]:
        lines += ["", "In flight (claimed or waiting to retry):"]
        lines += [
            f"  {_t(r['slot'])}  {r['post'] or '-':<24} {r['account']:<20} {r['state']}"
            + (f", next try {_t(r['next_attempt_at'])}" if r["next_attempt_at"] else "")
            + (f"  (last error: {r['error']})" if r["error"] else "")
            for r in data["in_flight"]
        ]
    lines += _render_reshares(data["reshares"])
    if data.get("unrecorded"):
        lines += ["", "Failed, the ledger had no space (nothing was sent; retried when space returns):"]
        lines += [
            f"  {_t(u['slot'].replace('Z', '+00:00'))}  {u['target']:<24} {u['account']:<20} ({u['error']})"
            for u in data["unrecorded"]
        ]
        if data.get("unrecorded_more"):
            lines.append(f"  and {data['unrecorded_more']} more")
    lines += ["", "Next:"]
    if data["next"] is None:
        lines.append("  unknown: the campaign files have errors (run `bot check`)")
    else:
        lines += [
            f"  {n['local'] or _t(n['at'])}  {n['post'] or '(queue empty)':<24} "
            f"{', '.join(n['accounts'])}  [{n['target']}]"
            for n in data["next"]
        ] or ["  nothing scheduled"]
    return "\n".join(lines)


def _render_reshares(r: dict[str, Any]) -> list[str]:
    counts = r["counts"]
    if not counts:
        return ["", "Reshares: none decided yet"]
    lines = ["", "Reshares: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))]
    for account, by_status in r["by_account"].items():
        lines.append(f"  {account:<20} " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    why = [f"{reason} {n}" for reason, n in r["reasons"].items() if not reason.startswith("done:")]
    if why:
        lines.append("  not reshared, why: " + ", ".join(why))
    if r["waiting_review"]:
        lines.append("  waiting for review (`bot review`):")
        lines += [
            f"    #{x['id']:<5} {x['account']:<20} {x['author']:<20} {x['url']}  ({x['reason']})"
            for x in r["waiting_review"]
        ]
    if r.get("reviewed"):
        lines.append("  reviewed by staff:")
        lines += [
            f"    #{x['id']:<5} {x['action']:<8} by {x['reviewer']} at {_t(x['at'])} (waited for {x['waited_for']})"
            + (f": {x['note']}" if x["note"] else "")
            + f"  {x['url']}"
            for x in r["reviewed"]
        ]
    if r["failed"]:
        lines.append("  failed:")
        lines += [f"    {x['account']:<20} {x['url']}  {x['reason']}: {x['error'] or ''}" for x in r["failed"]]
    if r.get("withdrawn"):
        lines.append("  withdrawn (reshares taken back):")
        lines += [
            f"    {x['account']:<20} {x['url']}  {x['withdrawn_reason']}"
            + ("" if x["status"] == "withdrawn" else f" (still to do: {x['error'] or 'pending'})")
            for x in r["withdrawn"]
        ]
    if r["done"]:
        lines.append("  latest reshared:")
        lines += [f"    {x['account']:<20} {x['author']:<20} {x['reshare_url'] or x['url']}" for x in r["done"]]
    return lines


def _t(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def main(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.campaign import load
    from bot.ledger.db import LedgerUnavailable, default_url, open_engine
    from bot.ledger.publications import UNRECORDED, read_unrecorded

    campaign, problems = None, []
    try:
        campaign = load(args.campaign)
    except ConfigError as err:
        problems = err.problems
    for account in campaign.accounts.values() if campaign else ():
        register_present(account)
    try:
        engine = open_engine(default_url(args.campaign))
    except LedgerUnavailable as err:  # corrupt, unreadable or lost: one readable line, not a driver's traceback
        print(f"bot status: {err}", file=sys.stderr)
        return 2
    try:
        data = collect(campaign, Ledger(engine), (clock or SystemClock()).now(), limit=args.limit, days=args.days)
    finally:
        engine.dispose()
    unrecorded, more = read_unrecorded(args.campaign / "state" / UNRECORDED)
    data["unrecorded"] = [_redacted(item) for item in unrecorded]
    data["unrecorded_more"] = more
    from bot.ledger.token_expiry import read_token_expiry, token_window

    now = (clock or SystemClock()).now()
    data["tokens_expiring"] = [
        {**t, "at": t["at"].isoformat()} for t in read_token_expiry(args.campaign / "state", now, token_window())
    ]
    if problems:
        data["problems"] = problems
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(data))
        for problem in problems:
            print(problem, file=sys.stderr)
    return 0
