"""What a worker hands over at start and every sweep: slots missed while no worker ran, due retries
and claims whose worker died. The Publisher decides each one (publish late, or record ``missed``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.schedule.occurrences import repeated_wall_time

LOOKBACK = timedelta(days=30)
"""How far back start-up looks for slots missed while the worker was down (older ones are not reported)."""

Submit = Callable[[Any, str], None]


SPACING = 120.0
"""Clock seconds between two catch-up publications of one account (``BOT_CATCH_UP_SPACING``)."""

LIMIT = 10
"""Catch-up publications per platform at one start (``BOT_CATCH_UP_LIMIT``); older missed slots are recorded ``missed``."""


def spacing_seconds() -> float:
    return float(os.environ.get("BOT_CATCH_UP_SPACING") or SPACING)


def limit_per_platform() -> int:
    return int(os.environ.get("BOT_CATCH_UP_LIMIT") or LIMIT)


@dataclass
class CatchUp:
    """Slots missed while no worker ran: when each is handed over, and those left ``missed`` over the limit."""

    since: datetime
    runs: list[tuple[datetime, Any, str]] = field(default_factory=list)  # (when, occurrence, account), by when
    dropped: list[tuple[Any, str]] = field(default_factory=list)  # (occurrence, account) past grace or over the limit

    def counts(self, campaign: Any) -> dict[str, Any]:
        """Per platform: how many go out and how many are dropped; and when the last goes out."""

        def per_platform(pairs: list[tuple[Any, str]]) -> dict[str, int]:
            counted: dict[str, int] = {}
            for _, account in pairs:
                platform = _platform(campaign, account)
                counted[platform] = counted.get(platform, 0) + 1
            return counted

        return dict(
            count=len(self.runs),
            per_platform=per_platform([(occ, account) for _, occ, account in self.runs]),
            dropped=per_platform(self.dropped),
            last_at=self.runs[-1][0].isoformat() if self.runs else None,
        )


def _platform(campaign: Any, account: str) -> str:
    found = campaign.accounts.get(account)
    return str(found.platform) if found is not None else "unknown"


def plan_catch_up(
    campaign: Any, ledger: Any, now: datetime, *, spacing: float | None = None, limit: int | None = None
) -> CatchUp:
    """What start-up hands over: every (slot, account) due since the last one the ledger knows and not taken.

    Those past their grace are recorded missed at once; of the others, the newest ``limit`` slots per platform
    go out (to all their accounts), one account's ``spacing`` clock seconds apart (the first at once), oldest
    first: never a burst after an outage. The Publisher still skips any past its grace.
    """
    from bot.schedule.occurrences import occurrences

    spacing = spacing_seconds() if spacing is None else spacing
    limit = limit_per_platform() if limit is None else limit
    grace = max((s.grace for s in campaign.schedules), default=timedelta(hours=1))
    taken = ledger.keys_taken(campaign.name, now - LOOKBACK, now + timedelta(seconds=1))
    last = max((slot_at for slot_at, _, _ in taken), default=None)
    # Always look back a full grace: tasks queued but cancelled by a stop left no trace in the ledger.
    since = now - grace if last is None else min(last, now - grace)
    zones = {s.name: s.timezone for s in campaign.schedules}
    due = [
        (o, account)
        for o in occurrences(campaign, since, now)
        if o.at <= now and not repeated_wall_time(o.at, zones[o.schedule])
        for account in o.accounts
        if (o.at, o.target, account) not in taken
    ]
    plan = CatchUp(since)
    # The limit counts slots, not publications: one slot to 500 accounts is one slot to catch up (a worker
    # restarted at a fan-out's minute must not record 490 of its accounts missed).
    kept: dict[str, set[tuple[Any, ...]]] = {}
    chosen: list[tuple[Any, str]] = []
    for occurrence, account in reversed(due):  # the newest first: they are the ones still worth sending
        slots = kept.setdefault(_platform(campaign, account), set())
        slot = (occurrence.at, occurrence.schedule, occurrence.slot)
        if now > occurrence.at + occurrence.grace or (slot not in slots and len(slots) >= limit):
            # Past its grace already (the Publisher records it missed), or over the limit: neither waits a turn.
            plan.dropped.append((occurrence, account))
        else:
            slots.add(slot)
            chosen.append((occurrence, account))
    plan.dropped.reverse()
    turns: dict[str, int] = {}
    for occurrence, account in reversed(chosen):
        turn = turns.get(account, 0)
        turns[account] = turn + 1
        plan.runs.append((now + timedelta(seconds=spacing * turn), occurrence, account))
    plan.runs.sort(key=lambda run: run[0])
    return plan


def resume(campaign: Any, ledger: Any, active: Container[tuple[Any, ...]], submit: Submit) -> None:
    """Submit the retries whose time has come and the claims whose lease ran out."""
    for row in [*ledger.pending_retries(), *ledger.expired_claims()]:
        # Our own publication still running (a clock jumped past its lease) is not a dead worker's.
        if (row.slot_at, row.target, row.account) not in active:
            submit(slot_ref(row, campaign), row.account)


def resume_shares(campaign: Any, fanout: Any, now: datetime) -> int:
    """Feed ``fanout`` from this campaign's slots whose ``pending`` rows nobody holds (bot.ledger.shares); slots fed."""
    fed = 0
    for row in fanout.shares.free(now):
        if row.campaign == campaign.name and fanout.feed(slot_ref(row, campaign), campaign.name):
            fed += 1
    return fed


def slot_ref(row: Any, campaign: Any) -> Any:
    """The occurrence a ledger row stands for (see ``bot.publishing.results.slot_ref_of``)."""
    from bot.publishing.results import slot_ref_of

    return slot_ref_of(row, campaign.schedules)
