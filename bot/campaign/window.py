"""Slots against their schedule's window: slots outside it, and queues that run dry inside it."""

from __future__ import annotations

from collections import Counter

from bot.campaign.problems import WARNING, Problems
from bot.campaign.yamlsrc import Source
from bot.core.model import Campaign, Schedule, Slot


def check(campaign: Campaign, sources: dict[str, Source], problems: Problems, warnings: bool) -> None:
    from bot import schedule as sched

    for schedule in campaign.schedules:
        src = sources[schedule.name]
        start, end = sched.window_bounds(schedule)
        if start and end and end < start:
            continue  # already reported; every slot would look outside it
        shown = f"{schedule.window_start or '...'} to {schedule.window_end or '...'}"
        for slot in schedule.slots:
            if slot.kind == "at" and slot.at is not None:
                day = slot.at.date()
                if (schedule.window_start and day < schedule.window_start) or (
                    schedule.window_end and day > schedule.window_end
                ):
                    problems.add(
                        src,
                        ("slots", slot.index, "at"),
                        f"{slot.at:%Y-%m-%dT%H:%M} is outside the window (expected a time from {shown})",
                    )
            elif start is not None:
                trigger = sched.trigger_for(schedule, slot)
                if trigger.get_next_fire_time(None, start) is None:
                    problems.add(src, ("slots", slot.index), f"never happens inside the window {shown}")
    if warnings:
        _dry_queues(campaign, sources, problems)


def _most_fires(schedule: Schedule, slot: Slot) -> int | None:
    """An upper bound of the slot's occurrences in its window (None: unbounded or not cheap to bound)."""
    if slot.kind == "at":
        return 1
    if slot.kind == "cron" or not (schedule.window_start and schedule.window_end):
        return None
    return ((schedule.window_end - schedule.window_start).days + 1) * len(slot.times)


def _may_run_dry(campaign: Campaign) -> set[str]:
    """Queues that some account might use more often than they have posts.

    Enumerating every fire time costs APScheduler about a millisecond each; most
    queues are plainly big enough, so only the doubtful ones are enumerated.
    An unknown queue is already an error: saying it runs dry would only be noise.
    """
    need: dict[tuple[str, str], int | None] = {}
    for schedule in campaign.schedules:
        for slot in schedule.slots:
            if slot.queue not in campaign.queues:
                continue
            most = _most_fires(schedule, slot)
            for account in slot.accounts:
                key = (account, slot.queue)
                before = need.get(key, 0)
                need[key] = None if before is None or most is None else before + most
    return {q for (_, q), n in need.items() if n is None or n > len(campaign.queues[q])}


def _dry_queues(campaign: Campaign, sources: dict[str, Source], problems: Problems) -> None:
    """Warn once per (queue, account) when the window holds more slots than the queue has posts."""
    from bot import schedule as sched

    bounded = [
        (start, end)
        for start, end in (sched.window_bounds(s) for s in campaign.schedules)
        if start is not None and end is not None and start <= end
    ]
    if not bounded:
        return
    start, end = min(b[0] for b in bounded), max(b[1] for b in bounded)
    suspects = _may_run_dry(campaign)
    if not suspects:
        return
    occurrences = sched.occurrences(campaign, start, end, only=lambda slot: slot.queue in suspects)
    needed = Counter((account, o.queue) for o in occurrences for account in o.accounts)
    warned: set[tuple[str, str]] = set()
    for planned in sched.expand(campaign, occurrences):
        occ = planned.occurrence
        if planned.post is not None or occ.queue is None:
            continue
        fresh = [a for a in planned.accounts if (a, occ.queue) not in warned]
        if not fresh:
            continue
        warned.update((a, occ.queue) for a in fresh)
        schedule = next(s for s in campaign.schedules if s.name == occ.schedule)
        local = occ.at.astimezone(schedule.timezone)
        size = len(campaign.queues.get(occ.queue, []))
        counts = ", ".join(f"{needed[(a, occ.queue)]} for {a}" for a in fresh)
        problems.add(
            sources[occ.schedule],
            ("slots", occ.slot),
            f"queue '{occ.queue}' runs dry on {local:%Y-%m-%d %H:%M} (it has {size} posts; the windows hold {counts})",
            WARNING,
        )
