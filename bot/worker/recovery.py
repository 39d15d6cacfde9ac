"""What a worker hands over at start and every sweep: slots missed while no worker ran, due retries
and claims whose worker died. The Publisher decides each one (publish late, or record ``missed``)."""

from __future__ import annotations

from collections.abc import Callable, Container
from datetime import datetime, timedelta
from typing import Any

from bot.schedule.occurrences import repeated_wall_time

LOOKBACK = timedelta(days=30)
"""How far back start-up looks for slots missed while the worker was down (older ones are not reported)."""

Submit = Callable[[Any, str], None]


def missed(campaign: Any, ledger: Any, now: datetime, submit: Submit) -> tuple[int, datetime]:
    """Submit every (slot, account) due since the last one the ledger knows and not taken; (count, since)."""
    from bot.schedule.occurrences import occurrences

    grace = max((s.grace for s in campaign.schedules), default=timedelta(hours=1))
    taken = ledger.keys_taken(campaign.name, now - LOOKBACK, now + timedelta(seconds=1))
    last = max((slot_at for slot_at, _, _ in taken), default=None)
    # Always look back a full grace: tasks queued but cancelled by a stop left no trace in the ledger.
    since = now - grace if last is None else min(last, now - grace)
    zones = {s.name: s.timezone for s in campaign.schedules}
    due = [
        o for o in occurrences(campaign, since, now) if o.at <= now and not repeated_wall_time(o.at, zones[o.schedule])
    ]
    handed = 0
    for occurrence in due:
        for account in occurrence.accounts:
            if (occurrence.at, occurrence.target, account) not in taken:
                submit(occurrence, account)
                handed += 1
    return handed, since


def resume(campaign: Any, ledger: Any, active: Container[tuple[Any, ...]], submit: Submit) -> None:
    """Submit the retries whose time has come and the claims whose lease ran out."""
    for row in [*ledger.pending_retries(), *ledger.expired_claims()]:
        # Our own publication still running (a clock jumped past its lease) is not a dead worker's.
        if (row.slot_at, row.target, row.account) not in active:
            submit(slot_ref(row, campaign), row.account)


def slot_ref(row: Any, campaign: Any) -> Any:
    """The occurrence a ledger row stands for (see ``bot.publishing.results.slot_ref_of``)."""
    from bot.publishing.results import slot_ref_of

    return slot_ref_of(row, campaign.schedules)
