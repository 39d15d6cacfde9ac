"""Slots against their schedule's window: slots outside it, and queues that run dry inside it."""

from __future__ import annotations

from collections import Counter

from bot.campaign.model import Campaign
from bot.campaign.problems import WARNING, Problems
from bot.campaign.yamlsrc import Source


def check(campaign: Campaign, sources: dict[str, Source], problems: Problems, warnings: bool) -> None:
    from bot import schedules as sched

    for schedule in campaign.schedules:
        src = sources[schedule.name]
        start, end = sched.window_bounds(schedule)
        if start and end and end < start:
            continue  # already reported; every slot would look outside it
        shown = f"{schedule.window_start or '...'} to {schedule.window_end or '...'}"
        for slot in schedule.slots:
            if slot.kind == "at":
                day = slot.at.date()
                if (schedule.window_start and day < schedule.window_start) or (
                    schedule.window_end and day > schedule.window_end
                ):
                    problems.add(
                        src, ("slots", slot.index, "at"),
                        f"{slot.at:%Y-%m-%dT%H:%M} is outside the window (expected a time from {shown})",
                    )
            elif start is not None:
                trigger = sched.trigger_for(schedule, slot)
                if trigger.get_next_fire_time(None, start) is None:
                    problems.add(src, ("slots", slot.index), f"never happens inside the window {shown}")
    if warnings:
        _dry_queues(campaign, sources, problems)


def _dry_queues(campaign: Campaign, sources: dict[str, Source], problems: Problems) -> None:
    """Warn once per (queue, account) when the window holds more slots than the queue has posts."""
    from bot import schedules as sched

    bounded = [
        sched.window_bounds(s) for s in campaign.schedules
        if s.window_start and s.window_end and s.window_start <= s.window_end
    ]
    if not bounded:
        return
    start, end = min(b[0] for b in bounded), max(b[1] for b in bounded)
    # An unknown queue is already an error; saying it runs dry too would only be noise.
    occurrences = [o for o in sched.occurrences(campaign, start, end) if o.queue in campaign.queues]
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
            sources[occ.schedule], ("slots", occ.slot),
            f"queue '{occ.queue}' runs dry on {local:%Y-%m-%d %H:%M} "
            f"(it has {size} posts; the windows hold {counts})",
            WARNING,
        )
