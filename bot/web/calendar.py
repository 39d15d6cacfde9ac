"""The status page's calendar: every slot from today to ``days`` ahead, per account, with what the ledger says.

A slot already past shows the post the ledger recorded for each account (published with its link, failed
with its reason); a slot still to come shows the post the queues will give it, as ``bot plan`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from bot.ledger.schema import publications
from bot.observability.redaction import redact
from bot.schedule.occurrences import expand, occurrences

PREVIEW = 140
"""Characters of a post's text shown in the calendar."""


@dataclass
class Cell:
    account: str
    platform: str
    state: str  # planned, due, claimed, retrying, published, skipped, failed
    post: str | None
    url: str | None = None
    reason: str | None = None


@dataclass
class Entry:
    at: datetime
    local: datetime
    target: str
    post: str | None
    preview: str
    media: list[str]
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Day:
    day: date
    entries: list[Entry]


def build(campaign: Any, ledger: Any, now: datetime, days: int = 7) -> list[Day]:
    """Today and the next ``days`` days in the first schedule's time zone, each with its slots."""
    if not campaign.schedules:
        return []
    tz = campaign.schedules[0].timezone
    first = now.astimezone(tz).date()
    start = datetime.combine(first, time(0), tz).astimezone(UTC)
    end = datetime.combine(first + timedelta(days=days + 1), time(0), tz).astimezone(UTC)
    rows = _rows(ledger.engine, campaign.name, start, end)
    occs = occurrences(campaign, start, end - timedelta(microseconds=1))
    past = [o for o in occs if o.at <= now]
    # Queue posts of slots to come follow what is used already, exactly as the worker will choose them.
    planned = {
        (p.occurrence.at, p.occurrence.target, a): p.post
        for p in expand(campaign, [o for o in occs if o.at > now], ledger.used_posts)
        for a in p.accounts
    }
    by_day: dict[date, list[Entry]] = {}
    for occ in [*past, *(o for o in occs if o.at > now)]:
        groups: dict[str | None, list[Cell]] = {}
        for account in occ.accounts:
            key = (occ.at.replace(microsecond=0), occ.target, account)
            row = rows.get(key)
            platform = getattr(campaign.accounts.get(account), "platform", "")
            if row is not None:
                cell = Cell(
                    account,
                    platform,
                    row.state,
                    row.post,
                    row.url,
                    row.reason and redact(row.reason),
                )
            elif occ.at <= now:
                cell = Cell(account, platform, "due", occ.post)
            else:
                cell = Cell(account, platform, "planned", planned.get((occ.at, occ.target, account), occ.post))
            groups.setdefault(cell.post, []).append(cell)
        local = occ.at.astimezone(tz)
        for post_id, cells in groups.items():
            post = campaign.posts.get(post_id) if post_id else None
            by_day.setdefault(local.date(), []).append(
                Entry(
                    occ.at,
                    local,
                    occ.target,
                    post_id,
                    _preview(post.text_for(cells[0].platform)) if post else "",
                    _media(post) if post else [],
                    cells,
                )
            )
    return [Day(first + timedelta(days=n), by_day.get(first + timedelta(days=n), [])) for n in range(days + 1)]


def _rows(engine: Any, campaign: str, start: datetime, end: datetime) -> dict[tuple[datetime, str, str], Any]:
    p = publications.c
    query = sa.select(p.slot_at, p.target, p.account, p.post, p.state, p.url, p.reason).where(
        p.campaign == campaign, p.slot_at >= start, p.slot_at < end
    )
    with engine.connect() as conn:
        return {(r.slot_at.astimezone(UTC), r.target, r.account): r for r in conn.execute(query)}


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def _media(post: Any) -> list[str]:
    names = [f"{m.file} ({m.alt})" if m.alt else m.file for m in post.media]
    if post.video is not None:
        names.append(f"video {post.video.file}")
    return names
