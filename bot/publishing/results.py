"""What ``Publisher.fire`` returns, how it retries, and the slot it is given (see bot/publishing.py)."""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class Outcome(enum.Enum):
    published = "published"
    skipped = "skipped"
    failed = "failed"
    retry_later = "retry_later"  # Result.retry_at says when; any worker may take it then
    not_mine = "not_mine"  # claimed by another worker, already finished, or we are stopping
    needs_attention = "needs_attention"  # nobody can tell whether it went out: a person decides, never resent


@dataclass(frozen=True)
class Result:
    """The outcome of one ``fire`` plus what the worker may want to log or schedule."""

    outcome: Outcome
    publication_id: int | None = None
    post: str | None = None
    reason: str | None = None
    retry_at: datetime | None = None
    remote_id: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class SlotRef:
    """Duck-type twin of ``bot.schedule.occurrences.Occurrence`` for slots not from a schedule (manual, resumed)."""

    at: datetime
    schedule: str | None
    slot: int | None
    target: str
    post: str | None
    queue: str | None
    accounts: tuple[str, ...]
    grace: timedelta = timedelta(hours=1)
    manual: bool = False


def slot_ref_of(row: Any, schedules: Iterable[Any]) -> SlotRef:
    """The slot a ledger row stands for (a due retry, a dead worker's claim), with its schedule's grace.

    A manual row keeps a manual publication's grace; a row whose schedule is gone gets an hour.
    """
    post, queue = target_parts(row.target)
    fallback = MANUAL_GRACE if row.manual else timedelta(hours=1)
    grace = next((s.grace for s in schedules if s.name == row.schedule), fallback)
    return SlotRef(
        at=row.slot_at,
        schedule=row.schedule,
        slot=row.slot,
        target=row.target,
        post=post,
        queue=queue,
        accounts=(row.account,),
        grace=grace,
        manual=bool(row.manual),
    )


def target_parts(target: str) -> tuple[str | None, str | None]:
    """``"post:x"`` -> ("x", None); ``"queue:q"`` -> (None, "q")."""
    kind, _, name = target.partition(":")
    if kind == "post":
        return name, None
    if kind == "queue":
        return None, name
    raise ValueError(f"target must be post:<id> or queue:<name>, got: {target!r}")


MANUAL_GRACE = timedelta(days=1)
"""A manual publication may be retried until a day after its key's time (the end of its day, or a day after --again)."""


def manual_slot(post: str, account: str, now: datetime, *, again: bool = False) -> SlotRef:
    """A slot for ``bot publish``: one per post, account and (UTC) day, so running it twice publishes once.

    ``again`` (``bot publish --again``): keyed to the current second instead, a new publication on purpose.
    """
    now = now.astimezone(UTC).replace(microsecond=0)
    at = now if again else now.replace(hour=0, minute=0, second=0)
    return SlotRef(
        at=at,
        schedule="manual",
        slot=None,
        target=f"post:{post}",
        post=post,
        queue=None,
        accounts=(account,),
        grace=MANUAL_GRACE,
        manual=True,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, never sooner than the platform's ``retry_after``.

    A publication is given up (failed ``gave_up``) after ``max_attempts`` attempts, or when the
    next try would fall after slot time + max(``deadline``, the slot's grace).
    """

    max_attempts: int = 6
    base_delay: float = 30.0
    max_delay: float = 900.0
    deadline: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got: {self.max_attempts}")
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError(f"need 0 < base_delay <= max_delay, got: {self.base_delay}, {self.max_delay}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        # "Equal jitter": spreads workers that failed together without ever retrying at once.
        delay = backoff / 2 + rng.random() * backoff / 2
        if retry_after is not None and retry_after > 0:
            # The platform said when it opens again (Telegram's retry_after, X's reset): that, not our back-off,
            # is the wait; a little spread keeps workers that were refused together off its edge.
            delay = retry_after * (1 + 0.1 * rng.random()) + 1
        return float(delay)

    def deadline_for(self, slot_at: datetime, grace: timedelta) -> datetime:
        return slot_at + max(self.deadline, grace)
