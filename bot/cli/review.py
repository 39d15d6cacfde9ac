"""``bot review``: reshare candidates waiting for staff, why each waits, and approving or rejecting them by ID.

Each candidate shows the rule that held it (mode review, new account, few followers, first-time
author, ...) and its text with the tracked hashtags and any blocked word highlighted (reverse video on
a terminal, ``[[word]]`` elsewhere). Approved posts are reshared by the running worker, within the
same caps and spacing as automatic ones; rejected posts are never reshared. Every decision is kept
in the ledger with who made it (``BOT_REVIEWER``, else the OS user), when, and an optional note.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime
from typing import Any

import regex
import structlog

from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError
from bot.ledger.db import default_url, open_engine
from bot.ledger.reshares import ReshareLedger, Review, _utc, mention_from_json

PAST = {"approve": "reshare_approved", "reject": "reshare_rejected"}
_CONTROL = regex.compile(r"[\p{Cc}\p{Cf}]+")  # posts are untrusted: no terminal escapes or bidi tricks
SHOWN = 500  # characters of a candidate's text shown in the list
# The rule that held a candidate, as staff read it.
WHY = {
    "awaiting_review": "mode: review",
    "new_account": "new account",
    "few_followers": "few followers",
    "unknown_account": "account age or followers unknown",
    "first_time_author": "first-time author",
}
BOLD_REVERSE, RESET = "\x1b[1;7m", "\x1b[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "approve", "reject"),
        default="list",
        help="list (default) the waiting candidates, or approve / reject some",
    )
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="candidate IDs as listed")
    parser.add_argument("--note", default="", help="why (kept in the ledger with the decision)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON for tools")


def clean(text: str, width: int | None = None) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def reviewer() -> str:
    """Who is deciding: ``BOT_REVIEWER``, else the OS user."""
    named = clean(os.environ.get("BOT_REVIEWER", ""))
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def highlights(text: str, tags: list[str], blocked: tuple[str, ...]) -> list[dict[str, Any]]:
    """Where the tracked hashtags and blocked words are in ``text``: start, end, kind (tag | blocked), term."""
    from bot.resharing.matching import matcher

    found: list[dict[str, Any]] = []
    for tag in tags:
        for m in regex.finditer(rf"#{regex.escape(tag)}(?![\p{{L}}\p{{N}}_])", text, flags=regex.IGNORECASE):
            found.append({"start": m.start(), "end": m.end(), "kind": "tag", "term": f"#{tag}"})
    for start, end, term in matcher(blocked).locate(text):
        found.append({"start": start, "end": end, "kind": "blocked", "term": term.written})
    found.sort(key=lambda h: (h["start"], -h["end"]))
    kept: list[dict[str, Any]] = []
    for h in found:
        if not kept or h["start"] >= kept[-1]["end"]:
            kept.append(h)
    return kept


def marked(text: str, spans: list[dict[str, Any]], terminal: bool) -> str:
    """``text`` with each span in bold reverse video (``terminal``) or between ``[[`` and ``]]``."""
    out, last = [], 0
    for h in spans:
        word = text[h["start"] : h["end"]]
        out += [text[last : h["start"]], f"{BOLD_REVERSE}{word}{RESET}" if terminal else f"[[{word}]]"]
        last = h["end"]
    return "".join(out + [text[last:]])


def waiting(
    ledger: ReshareLedger, every_campaign: bool = False, tags: list[str] | None = None, blocked: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The candidates waiting for review, each with why it waits and where its text matched."""
    items = []
    for r in ledger.rows(status=["queued"], every_campaign=every_campaign):
        mention = mention_from_json(r.mention)
        text = clean(mention.text)
        spans = highlights(text, tags or [], blocked)
        # A blocked word added after the post was queued, in a part other than the text, is named too.
        elsewhere = [
            f"{where}: {h['term']!r}"
            for where, value in (
                ("content warning", mention.spoiler_text),
                ("alt text", " ".join(mention.alt_texts)),
                ("link card", mention.card_title),
                ("quoted post", mention.quoted_text),
                ("display name", mention.author_name),
                ("handle", mention.author_handle),
            )
            if value
            for h in highlights(clean(value), [], blocked)[:1]
        ]
        items.append(
            {
                "id": r.id,
                "campaign": r.campaign,
                "platform": r.platform,
                "account": r.account,
                "author": r.author,
                "url": r.url,
                "text": text,
                "queued_at": _utc(r.decided_at).isoformat(),
                "waiting_for": r.reason,
                "why": WHY.get(r.reason, r.reason),
                "detail": clean(r.detail or ""),
                "highlights": spans,
                "blocked_now": [h["term"] for h in spans if h["kind"] == "blocked"] + elsewhere,
            }
        )
    return items


def render(items: list[dict[str, Any]], now: datetime, terminal: bool = False) -> str:
    if not items:
        return "No reshare candidates are waiting for review."
    lines = [f"{len(items)} reshare candidate(s) waiting for review:"]
    for item in items:
        age = now - datetime.fromisoformat(item["queued_at"])
        hours = int(age.total_seconds() // 3600)
        why = item.get("why") or item.get("waiting_for") or "review"
        detail = f" ({clean(item['detail'], 120)})" if item.get("detail") else ""
        lines.append(f"  {item['id']:>5}  {hours:>3}h ago  {item['account']} <- @{clean(item['author'], 40)}")
        lines.append(f"         waiting: {why}{detail}")
        text, spans = item["text"], item.get("highlights", [])
        shown = [h for h in spans if h["end"] <= SHOWN]
        body = marked(text[:SHOWN], shown, terminal) + ("…" if len(text) > SHOWN else "")
        lines.append(f"         {body}")
        if item.get("blocked_now"):
            lines.append(f"         ! now matches blocked words: {', '.join(item['blocked_now'])}")
        lines.append(f"         {clean(item['url'])}")
    lines.append("Approve with `bot review approve ID...`, reject with `bot review reject ID...` (--note WHY).")
    return "\n".join(lines)


def decide(
    ledger: ReshareLedger,
    action: str,
    ids: list[int],
    now: datetime,
    every_campaign: bool = False,
    *,
    who: str | None = None,
    note: str = "",
) -> list[str]:
    """Approve or reject each queued ID, recorded with who and why; one problem message per ID that could not be."""
    log = structlog.get_logger("bot.cli.review")
    who = who or reviewer()
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
        done = ledger.review(Review(row_id, PAST[action].removeprefix("reshare_"), who, note), now, **values)
        if not done:
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
            waited_for=row.reason,
            reviewer=who,
            note=note or None,
            url=row.url,
            decision_id=row_id,
        )
    return problems


def main(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.campaign import load

    now = (clock or SystemClock()).now()
    tags: list[str] = []
    blocked: tuple[str, ...] = ()
    try:
        campaign = load(args.campaign)
        name, every = campaign.name, False
        if campaign.reshare is not None:
            tags = [tag for track in campaign.reshare.track for tag in track.hashtags]
            blocked = tuple(campaign.reshare.policy.blocked_words)
    except ConfigError:
        name, every = "", True  # files mid-edit must not stop staff from reviewing
    engine = open_engine(default_url(args.campaign))
    try:
        ledger = ReshareLedger(engine, name)
        if args.action == "list":
            if args.ids:
                print("review: list takes no IDs (did you mean `bot review approve ID...`?)")
                return 2
            items = waiting(ledger, every, tags, blocked)
            terminal = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
            print(json.dumps(items, ensure_ascii=False, indent=2) if args.json else render(items, now, terminal))
            return 0
        if not args.ids:
            print(f"review: {args.action} needs at least one ID (run `bot review` for the list)")
            return 2
        note = clean(getattr(args, "note", "") or "")
        problems = decide(ledger, args.action, args.ids, now, every, note=note)
        done = len(args.ids) - len(problems)
        for problem in problems:
            print(problem)
        print(
            f"{PAST[args.action].removeprefix('reshare_')} {done} candidate(s) as {reviewer()}"
            + (" (the worker reshares approved ones within the caps)" if args.action == "approve" and done else "")
        )
        return 1 if problems else 0
    finally:
        engine.dispose()
