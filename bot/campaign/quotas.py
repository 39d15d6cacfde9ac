"""Platforms' daily publishing caps (``Limits.posts_per_day``, and ``Limits.videos_per_day`` for video posts: Reels)
against what the schedules send each account.

Platforms count their caps over any 24 hours, not calendar days, so the posts of each account are counted
in a window that slides over its publications. ``bot plan`` warns from the calendar it prints; ``bot check``
warns from the slots (``check``), enumerating only accounts whose slots could pass their cap at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from bot.campaign.problems import WARNING, Problems
from bot.campaign.yamlsrc import Source
from bot.core.model import Account, Campaign, Schedule, Slot
from bot.platforms import REGISTRY

DAY = timedelta(hours=24)
CHECKED_DAYS = 8
"""The period ``bot check`` counts, from the windows' first day (or today, for a schedule without one): a week and
the day after, as each fire time costs APScheduler about a millisecond. ``bot plan`` counts the days it shows,
so ``bot plan --from DAY`` checks any other period."""


@dataclass(frozen=True)
class Send:
    """One publication on one account: when (aware), and the slot that makes it."""

    at: datetime
    account: str
    schedule: str
    slot: int
    video: bool = False  # a video post: counted against ``videos_per_day`` too


@dataclass(frozen=True)
class Overrun:
    """The first 24 hours, from ``start``, in which ``account`` would publish more than its platform allows."""

    account: str
    platform: str
    cap: int
    count: int
    start: datetime
    slots: tuple[tuple[str, int], ...]  # (schedule, slot index) publishing in those 24 hours, in time order
    videos: bool = False  # counted against ``videos_per_day`` (video posts only)

    def message(self, tz: tzinfo | None = None) -> str:
        start = self.start.astimezone(tz)
        what = "video posts (Reels)" if self.videos else "posts"
        fewer = "fewer video posts or slots" if self.videos else "fewer slots"
        return (
            f"{self.account} would publish {self.count} {what} in the 24 hours from {start:%a %d %b %Y %H:%M %Z}, "
            f"more than {self.platform} allows (expected at most {self.cap} in 24 hours: {fewer} for this account)"
        )


def cap_of(account: Account) -> int | None:
    """Posts ``account``'s platform lets it publish in 24 hours (None: no published cap)."""
    cls = REGISTRY.get(account.platform)
    return None if cls is None else cls.limits.posts_per_day


def video_cap_of(account: Account) -> int | None:
    """Video posts (Reels) ``account``'s platform lets it publish in 24 hours (None: no published cap)."""
    cls = REGISTRY.get(account.platform)
    return None if cls is None else cls.limits.videos_per_day


def lowest_cap(account: Account) -> int | None:
    """The smaller of the account's caps: a day of fewer posts than this passes none of them."""
    caps = [cap for cap in (cap_of(account), video_cap_of(account)) if cap is not None]
    return min(caps) if caps else None


def overruns(campaign: Campaign, sends: Iterable[Send]) -> list[Overrun]:
    """Each stretch of 24 hours in which an account would pass one of its platform's caps, once per stretch: all its
    posts against ``posts_per_day``, its video posts against ``videos_per_day``."""
    sends = list(sends)
    out = _overruns(campaign, sends, cap_of, videos=False)
    out += _overruns(campaign, [s for s in sends if s.video], video_cap_of, videos=True)
    out.sort(key=lambda o: (o.start, o.account, o.videos))
    return out


def _overruns(
    campaign: Campaign, sends: list[Send], cap_for: Callable[[Account], int | None], *, videos: bool
) -> list[Overrun]:
    by_account: dict[str, list[Send]] = defaultdict(list)
    caps = {a.id: cap for a in campaign.accounts.values() if (cap := cap_for(a)) is not None}
    for send in sends:
        if send.account in caps:
            by_account[send.account].append(send)
    out = []
    for account_id, mine in by_account.items():
        cap = caps[account_id]
        if len(mine) <= cap:
            continue
        mine.sort(key=lambda s: s.at)
        first, end = 0, 0
        while first < len(mine):
            while end < len(mine) and mine[end].at < mine[first].at + DAY:
                end += 1
            if end - first > cap:
                slots = tuple(dict.fromkeys((s.schedule, s.slot) for s in mine[first:end]))
                platform = campaign.accounts[account_id].platform
                out.append(Overrun(account_id, platform, cap, end - first, mine[first].at, slots, videos))
                first = end  # the next warning is about publications after these 24 hours
                continue
            first += 1
    return out


def check(campaign: Campaign, sources: dict[str, Source], problems: Problems, today: date | None = None) -> None:
    """A warning at the first slot of each 24 hours in which an account would pass its platform's cap."""
    capped = {a.id: cap for a in campaign.accounts.values() if (cap := lowest_cap(a)) is not None}
    suspects = {account for account, cap in capped.items() if _most_a_day(campaign, account) > cap}
    if not suspects:
        return  # nearly every campaign: its slots cannot reach any cap, and nothing is enumerated
    from bot import schedule as sched

    bounds = [sched.window_bounds(s) for s in campaign.schedules]
    starts = [start for start, _ in bounds if start is not None]
    first = min(starts) if len(starts) == len(bounds) else datetime.combine(today or date.today(), datetime.min.time())
    if first.tzinfo is None:
        first = first.replace(tzinfo=campaign.schedules[0].timezone)
    ends = [end for _, end in bounds if end is not None]
    last = first + timedelta(days=CHECKED_DAYS)
    if len(ends) == len(bounds):
        last = min(last, max(ends))
    occurrences = sched.occurrences(campaign, first, last, only=lambda slot: bool(suspects & set(slot.accounts)))
    sends = [
        Send(p.occurrence.at, account, p.occurrence.schedule, p.occurrence.slot, _is_video(campaign, p.post))
        for p in sched.expand(campaign, occurrences)
        if p.post is not None
        for account in p.accounts
        if account in suspects
    ]
    for overrun in overruns(campaign, sends):
        schedule, index = overrun.slots[0]
        others = ", ".join(slot_lines(campaign, overrun.slots[1:4]))
        more = f" (with the slots at {others}{' and more' if len(overrun.slots) > 4 else ''})" if others else ""
        message = overrun.message(next(s.timezone for s in campaign.schedules if s.name == schedule))
        problems.add(sources[schedule], ("slots", index), f"{message}{more}", WARNING)


def _is_video(campaign: Campaign, post_id: str | None) -> bool:
    post = campaign.posts.get(post_id) if post_id is not None else None
    return post is not None and post.video is not None


def slot_lines(campaign: Campaign, slots: Iterable[tuple[str, int]]) -> list[str]:
    """``schedules/weekly.yaml:12`` for each (schedule, slot index)."""
    lines = {
        (s.name, slot.index): f"schedules/{s.path.name}:{slot.line}" for s in campaign.schedules for slot in s.slots
    }
    return [lines.get(key, f"schedules/{key[0]}") for key in slots]


def _most_a_day(campaign: Campaign, account: str) -> float:
    """An upper bound of the posts ``account``'s slots make in a day (infinite where not cheap to bound)."""
    most = 0.0
    at_days: dict[date, int] = defaultdict(int)
    for schedule in campaign.schedules:
        for slot in schedule.slots:
            if account in slot.accounts:
                most += _a_day(schedule, slot, at_days)
    # Slots at a fixed time count on their day only; any 24 hours spans two days.
    busiest = sorted(at_days.values(), reverse=True)[:2]
    return most + sum(busiest)


def _a_day(schedule: Schedule, slot: Slot, at_days: dict[date, int]) -> float:
    if slot.kind == "at" and slot.at is not None:
        at_days[slot.at.date()] += 1
        return 0
    if slot.kind == "every":
        return 2 * len(slot.times)  # any 24 hours spans parts of two days
    return float("inf")  # cron: counted by enumerating
