"""``bot plan``: the calendar of what will be published, in each schedule's local time.

Queue slots are expanded per account: each account gets the next post of the
queue it has not used yet, counting what the ledger says is already published.
An account publishing in another language than the campaign's shows it: ``tg-by (be)``.
After the calendar, warnings where an account would publish more in 24 hours than its
platform allows (``Limits.posts_per_day``), and the X searches a month that the tracking
settings will cost (X bills reads): from the poll interval, the back-off cap and the daily
read budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.campaign import Campaign, load
from bot.campaign.quotas import Send, overruns, slot_lines
from bot.core.errors import ConfigError
from bot.schedule.occurrences import UsedPosts, expand, occurrences

WORDS = 8


@dataclass(frozen=True)
class Entry:
    local: datetime  # in the schedule's time zone
    schedule: str
    slot: int
    target: str
    post: str | None  # None: the queue has nothing left for these accounts
    accounts: tuple[str, ...]
    text: str  # first words of the post
    languages: tuple[str | None, ...] = ()  # of each account, in the order of ``accounts``


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=_days, default=14, help=f"how many days to show, 1 to {MOST_DAYS} (default 14)")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, help="first day, YYYY-MM-DD (default today)")
    parser.add_argument("--json", action="store_true", help="print JSON for tools")
    parser.add_argument(
        "--ics",
        type=Path,
        metavar="FILE",
        help="also write the calendar as iCalendar (one event per slot and platform)",
    )


MOST_DAYS = 3660
"""Ten years: a longer period is a typo (and a big enough one would pass the year 9999)."""


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MOST_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to {MOST_DAYS}")
    return days


def main(args: argparse.Namespace) -> int:
    try:
        campaign = load(args.campaign)
    except ConfigError as exc:
        print("\n".join(exc.problems))
        print("the campaign has errors: run `bot check`")
        return 1
    now = datetime.now(UTC)
    first = args.start or now.date()
    entries = build(campaign, first, args.days, now, _ledger_used(campaign))
    if args.ics:
        from bot.cli.ics import write_ics

        count = write_ics(campaign, entries, args.ics, now)
        print(f"wrote {count} events to {args.ics}")
    caps = quota_warnings(campaign, entries)
    if args.json:
        print(json.dumps([_as_json(e) for e in entries], indent=2))
        if caps:  # apart from the JSON, which tools read
            print("\n".join(caps), file=sys.stderr)
    else:
        print(render(entries, campaign.language) or f"nothing scheduled from {first} for {args.days} days")
        reads = x_reads(campaign)
        for lines in (caps, reads):
            if lines:
                print("\n".join(["", *lines]))
    return 0


def quota_warnings(campaign: Campaign, entries: list[Entry]) -> list[str]:
    """A warning for each 24 hours of the calendar in which an account would publish more than its platform allows."""
    posts = campaign.posts
    sends = [
        Send(e.local, a, e.schedule, e.slot, e.post in posts and posts[e.post].video is not None)
        for e in entries
        if e.post is not None
        for a in e.accounts
    ]
    found = overruns(campaign, sends)
    if not found:
        return []
    zones = {s.name: s.timezone for s in campaign.schedules}
    lines = []
    for overrun in found:
        shown = ", ".join(slot_lines(campaign, overrun.slots[:5]))
        more = " and more" if len(overrun.slots) > 5 else ""
        lines.append(f"  warning: {overrun.message(zones[overrun.slots[0][0]])}; from the slots at {shown}{more}")
    return ["Daily caps (posts a platform lets one account publish in 24 hours):", *lines]


def x_reads(campaign: Campaign) -> list[str]:
    """Lines estimating the X recent searches a month (30 days) of each tracked tag set, and the posts billed."""
    from bot.platforms.x.search import DEFAULT_MAX_GAP, PAGE_MAX, estimate_month, queries
    from bot.resharing.feeds import DEFAULT_INTERVALS

    lines = []
    for track in campaign.reshare.track if campaign.reshare else []:
        reader = next(
            (
                campaign.accounts[a]
                for a in track.accounts
                if a in campaign.accounts and campaign.accounts[a].platform == "x"
            ),
            None,
        )
        if reader is None:
            continue
        options = reader.options
        interval = track.interval or DEFAULT_INTERVALS["x"]
        max_gap = track.max_interval or float(options.get("search_backoff_max", DEFAULT_MAX_GAP))
        raw = track.daily_reads if track.daily_reads is not None else options.get("search_daily_reads")
        budget = int(raw) if raw else None
        count = len(queries(track.hashtags))
        guess = estimate_month(interval, queries=count, max_gap=max_gap, daily_reads=budget)
        tags = " ".join(f"#{t}" for t in track.hashtags)
        billed = (
            f"at most {guess['posts_at_most']:,} posts billed (daily_reads {budget:,})"
            if budget
            else f"up to {PAGE_MAX} posts billed a search (no daily_reads budget)"
        )
        lines.append(
            f"  {tags} via {reader.id}: every {_duration(interval)}, {count} quer{'y' if count == 1 else 'ies'} a poll: "
            f"{guess['searches_busy']:,} searches if every poll finds posts, {guess['searches_quiet']:,} when quiet "
            f"(back-off up to {_duration(max_gap)}); {billed}"
        )
    return ["X reads a month (estimated from the tracking settings):", *lines] if lines else []


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def build(campaign: Campaign, first: date, days: int, now: datetime, used: UsedPosts | None) -> list[Entry]:
    """Entries from ``first`` for ``days`` local days.

    Queues are consumed from ``now`` on when ``first`` is later (slots before it take
    posts too), otherwise from ``first``: a plan of a past period is a what-if view
    that only knows what the ledger (``used``) says was published.
    """
    zones = {s.name: s.timezone for s in campaign.schedules}
    if not zones:
        return []
    last = first + timedelta(days=days)
    start = min(datetime.combine(first, time(0), tz) for tz in zones.values())
    end = max(datetime.combine(last, time(0), tz) for tz in zones.values())
    entries = []
    for planned in expand(campaign, occurrences(campaign, min(start, now), end), used):
        occ, post = planned.occurrence, planned.post
        local = occ.at.astimezone(zones[occ.schedule])
        if not first <= local.date() < last:
            continue
        text = campaign.posts[post].text if post in campaign.posts else ""
        languages = tuple(campaign.accounts[a].language if a in campaign.accounts else None for a in planned.accounts)
        entries.append(
            Entry(local, occ.schedule, occ.slot, occ.target, post, planned.accounts, _first_words(text), languages)
        )
    entries.sort(key=lambda e: (e.local.astimezone(UTC), e.schedule, e.slot))
    return entries


def render(entries: list[Entry], language: str | None = None) -> str:
    """The calendar as text; an account whose language is not ``language`` (the campaign's) shows its own."""
    lines: list[str] = []
    day = None
    for e in entries:
        if e.local.date() != day:
            day = e.local.date()
            lines += [*([""] if lines else []), f"{day:%A %d %B %Y}"]
        what = e.post or f"({e.target} has nothing left)"
        accounts = ", ".join(
            f"{a} ({lang})" if lang and language and lang != language else a
            for a, lang in zip(e.accounts, e.languages or [None] * len(e.accounts), strict=True)
        )
        lines.append(f"  {e.local:%H:%M %Z}  {what:<28} {accounts:<40} {e.text}")
    return "\n".join(lines)


def _as_json(e: Entry) -> dict[str, Any]:
    return {
        "at": e.local.astimezone(UTC).isoformat(),
        "local": e.local.isoformat(),
        "timezone": str(e.local.tzinfo),
        "schedule": e.schedule,
        "slot": e.slot,
        "target": e.target,
        "post": e.post,
        "accounts": list(e.accounts),
        "languages": dict(zip(e.accounts, e.languages, strict=False)),
        "text": e.text,
    }


def _first_words(text: str) -> str:
    words = text.split()
    return " ".join(words[:WORDS]) + (" ..." if len(words) > WORDS else "")


def _ledger_used(campaign: Campaign) -> UsedPosts | None:
    """The ledger's record of used queue posts, when a ledger exists (plan never creates one)."""
    if not os.environ.get("BOT_DATABASE_URL") and not (campaign.root / "state" / "bot.db").exists():
        return None
    from bot.ledger.db import default_url, open_engine
    from bot.ledger.publications import Ledger

    ledger = Ledger(open_engine(default_url(campaign.root)))
    return ledger.used_posts
