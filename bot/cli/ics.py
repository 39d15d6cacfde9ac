"""``bot plan --ics FILE``: the plan as an iCalendar file staff can import or subscribe to.

One VEVENT per slot and platform: its accounts, the text that platform gets and the media. Written with
the ``icalendar`` package rather than by hand: RFC 5545's escaping (commas, semicolons, newlines in post
texts), 75-octet line folding and CRLF endings are where hand-written calendars break in some clients.
A UID stable across runs (campaign, slot, target, platform) lets a calendar app update an event in place
when the file is written again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from icalendar import Calendar, Event

DURATION = timedelta(minutes=15)
"""How long an event lasts in the calendar app: a slot is an instant, this keeps it visible."""


def to_calendar(campaign: Any, entries: Sequence[Any], now: datetime) -> Calendar:
    """The iCalendar of ``entries`` (``bot.cli.plan.Entry``)."""
    cal = Calendar()
    cal.add("prodid", "-//campaign-bot//bot plan//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{campaign.name} (campaign-bot)")
    for entry in entries:
        by_platform: dict[str, list[str]] = {}
        for account in entry.accounts:
            platform = getattr(campaign.accounts.get(account), "platform", "") or "unknown"
            by_platform.setdefault(platform, []).append(account)
        at = entry.local.astimezone(UTC)
        post = campaign.posts.get(entry.post) if entry.post else None
        for platform, accounts in sorted(by_platform.items()):
            event = Event()
            key = "\x1f".join([campaign.name, at.isoformat(), entry.target, platform])
            event.add("uid", hashlib.sha256(key.encode()).hexdigest()[:32] + "@campaign-bot")
            event.add("dtstamp", now.astimezone(UTC))
            event.add("dtstart", at)
            event.add("dtend", at + DURATION)
            what = entry.post or f"{entry.target} has nothing left"
            event.add("summary", f"{what} on {platform} ({', '.join(accounts)})")
            lines = [f"Accounts: {', '.join(accounts)}", f"Schedule: {entry.schedule}, slot {entry.slot}", ""]
            if post is not None:
                lines.append(post.text_for(platform))
                media = [m.file for m in post.media] + ([post.video.file] if post.video else [])
                if media:
                    lines += ["", "Media: " + ", ".join(media)]
            event.add("description", "\n".join(lines))
            event.add("categories", [platform])
            cal.add_component(event)
    return cal


def write_ics(campaign: Any, entries: Sequence[Any], path: Path, now: datetime) -> int:
    """Write the calendar to ``path`` (replaced whole, so a subscriber never reads half a file); its event count."""
    cal = to_calendar(campaign, entries, now)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(cal.to_ical())
    tmp.replace(path)
    return len(cal.walk("VEVENT"))
