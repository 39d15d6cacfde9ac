"""When slots happen: APScheduler 3.11 triggers are the single source of time math.

Each slot becomes a trigger in its schedule's time zone, bounded by the
schedule's window (end day inclusive). ``occurrences`` lists what happens in a
period; ``expand`` turns queue slots into the post each account gets next.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.core.model import Campaign, Schedule, Slot

_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DAYS = re.compile(r"^(\*|\d)(?:-(\d))?(?:/(\d+))?$")

UsedPosts = Callable[[str, str], set[str]]
"""(account, queue) -> ids of the queue's posts already published (or claimed) on that account."""


@dataclass(frozen=True)
class Occurrence:
    at: datetime  # UTC
    schedule: str
    slot: int
    target: str  # "post:<id>" or "queue:<name>"
    post: str | None
    queue: str | None
    accounts: tuple[str, ...]
    grace: timedelta


@dataclass(frozen=True)
class Planned:
    """One occurrence for a group of accounts that get the same post (None: the queue ran dry)."""

    occurrence: Occurrence
    post: str | None
    accounts: tuple[str, ...]


def crontab_days(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3 terms.

    Crontab counts 0 (and 7) as Sunday, APScheduler 3 counts 0 as Monday, so
    numbers are rewritten as day names; names pass through unchanged.
    """
    out = []
    for token in field.split(","):
        match = _NUMERIC_DAYS.match(token.strip())
        if not match or (match.group(1) == "*" and not match.group(3)):
            out.append(token)
            continue
        first = 0 if match.group(1) == "*" else int(match.group(1))
        last = 6 if match.group(1) == "*" else int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if first > 7 or last > 7 or first > last or step == 0:
            raise ValueError(f"invalid day of week '{token}' (expected 0-7 or mon-sun)")
        numbers = range(first, last + 1, step) if (match.group(2) or match.group(3)) else [first]
        out.extend(_CRONTAB_DAYS[n] for n in numbers)
    return ",".join(dict.fromkeys(out))


def window_bounds(schedule: Schedule) -> tuple[datetime | None, datetime | None]:
    """The window as aware datetimes: from the start day's midnight to the end day's last second."""
    tz = schedule.timezone
    start = datetime.combine(schedule.window_start, time(0), tz) if schedule.window_start else None
    end = datetime.combine(schedule.window_end, time(23, 59, 59), tz) if schedule.window_end else None
    return start, end


def crontab_trigger(expr: str, tz: ZoneInfo, start: datetime | None = None, end: datetime | None = None) -> CronTrigger:
    """A CronTrigger from a 5-field crontab line (ValueError when it is not one)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"got {len(fields)} fields, expected 5")
    minute, hour, day, month, dow = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_days(dow),
        start_date=start,
        end_date=end,
        timezone=tz,
    )


def trigger_for(schedule: Schedule, slot: Slot) -> BaseTrigger:
    """The slot's trigger in the schedule's time zone, bounded by its window."""
    tz = schedule.timezone
    start, end = window_bounds(schedule)
    if slot.kind == "at":
        assert slot.at is not None  # the loader gives every "at" slot its time
        return DateTrigger(run_date=slot.at.replace(tzinfo=tz), timezone=tz)
    if slot.kind == "cron":
        return crontab_trigger(slot.cron or "", tz, start, end)
    days = ",".join(slot.days) or "*"
    triggers = [
        CronTrigger(hour=t.hour, minute=t.minute, day_of_week=days, start_date=start, end_date=end, timezone=tz)
        for t in slot.times
    ]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> Iterable[datetime]:
    """Every fire time of ``trigger`` from ``start`` to ``end`` (both inclusive), aware.

    When clocks go back, APScheduler 3.11 fires a wall-clock time twice (01:30 BST,
    then 01:30 GMT); staff mean it once, so a repeated local wall time is dropped.
    """
    previous = None
    now = start
    seen: set[datetime] = set()
    while True:
        when = trigger.get_next_fire_time(previous, now)
        if when is None or when > end:
            return
        wall = when.replace(tzinfo=None)
        if when >= start and wall not in seen:
            yield when
        seen.add(wall)
        previous = now = when


def repeated_wall_time(at: datetime, tz: Any) -> bool:
    """True for the second of two instants showing the same wall time (the hour repeated when clocks go back)."""
    naive = at.astimezone(tz).replace(tzinfo=None)
    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall time and ignore ``fold``.
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return first < second and at.astimezone(UTC) == second


class OncePerWallTime(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type information
    """Wraps a wall-clock trigger so the hour repeated at the end of summer time fires once, not twice.

    APScheduler 3's CronTrigger fires 01:30 twice on a fall-back night; campaign staff mean one post.
    """

    def __init__(self, trigger: Any, tz: Any) -> None:
        self.trigger = trigger
        self.tz = tz

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        following: datetime | None = self.trigger.get_next_fire_time(previous_fire_time, now)
        while following is not None and repeated_wall_time(following, self.tz):
            following = self.trigger.get_next_fire_time(following, following)
        return following

    def __str__(self) -> str:
        return str(self.trigger)


def occurrence_of(schedule: Schedule, slot: Slot, at: datetime) -> Occurrence:
    """The occurrence of ``slot`` (of ``schedule``) that fires at ``at``."""
    return Occurrence(
        at=at.astimezone(UTC),
        schedule=schedule.name,
        slot=slot.index,
        target=slot.target,
        post=slot.post,
        queue=slot.queue,
        accounts=tuple(slot.accounts),
        grace=schedule.grace,
    )


def occurrences(
    campaign: Campaign, start: datetime, end: datetime, only: Callable[[Slot], bool] | None = None
) -> list[Occurrence]:
    """Every slot occurrence between ``start`` and ``end`` (aware, inclusive), sorted by time.

    ``only`` limits the work to the slots it accepts.
    """
    out = []
    for schedule in campaign.schedules:
        w_start, w_end = window_bounds(schedule)
        for slot in schedule.slots:
            if only is not None and not only(slot):
                continue
            trigger = trigger_for(schedule, slot)
            for when in fire_times(trigger, start, end):
                if (w_start and when < w_start) or (w_end and when > w_end):
                    continue  # a date slot outside its window never happens
                out.append(occurrence_of(schedule, slot, when))
    out.sort(key=lambda o: (o.at, o.schedule, o.slot))
    return out


def expand(campaign: Campaign, occurrences: Iterable[Occurrence], used: UsedPosts | None = None) -> list[Planned]:
    """Who publishes what: each account takes the next post of a queue it has not used yet."""
    remaining: dict[tuple[str, str], list[str]] = {}
    planned = []
    for occ in occurrences:
        if occ.post is not None:
            planned.append(Planned(occ, occ.post, occ.accounts))
            continue
        groups: dict[str | None, list[str]] = {}
        for account in occ.accounts:
            key = (account, occ.queue or "")
            if key not in remaining:
                done = used(account, occ.queue or "") if used else set()
                remaining[key] = [p for p in campaign.queues.get(occ.queue or "", []) if p not in done]
            post = remaining[key].pop(0) if remaining[key] else None
            groups.setdefault(post, []).append(account)
        planned.extend(Planned(occ, post, tuple(accounts)) for post, accounts in groups.items())
    return planned
