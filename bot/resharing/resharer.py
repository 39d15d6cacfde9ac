"""Resharing what the policy allowed: one at a time per account, spaced out, within the caps.

X forbids bulk or aggressive automated retweets, so a backlog never becomes a burst:
each call to ``drain`` reshares at most one post per account, and only once the
account's spacing, hourly and daily caps, the author cooldown and the author's daily cap allow it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import Clock
from bot.core.errors import AuthFailed, BotError, PermanentError, RetryableError
from bot.ledger.reshares import ReshareLedger, mention_from_json
from bot.platforms.base import Platform
from bot.resharing.policy import Rules

MAX_ATTEMPTS = 5
STALE_AFTER = timedelta(hours=24)  # a post still waiting after a day is no longer news
BACKOFF = timedelta(minutes=2)
AUTH_PAUSE = timedelta(hours=1)  # refused credentials: try again after this, staff may have fixed them


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Resharer:
    """Turns ``pending`` ledger rows into reshares (or, in dry-run, into ``would_have`` rows)."""

    def __init__(self, ledger: ReshareLedger, adapters: Mapping[str, Platform], clock: Clock, rules: Rules, log: Any):
        self.ledger = ledger
        self.adapters = adapters
        self.clock = clock
        self.rules = rules
        self.log = log
        self.next_due: dict[str, datetime] = {}  # account -> when a waiting reshare may go next
        self._auth_reported: set[str] = set()
        # Decisions whose platform call is running in this process (a stream's lane or the loop):
        # recover_stuck must not take a slow call for a dead worker's, whatever the clock says.
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()

    @property
    def dry_run(self) -> bool:
        return self.rules.mode == "dry-run"

    @property
    def acted_statuses(self) -> tuple[str, ...]:
        """Rows that count as reshares for the caps; a rehearsal's would-be reshares only count in dry-run."""
        return ("done", "would_have") if self.dry_run else ("done",)

    def recover_stuck(self, now: datetime, older_than: timedelta) -> None:
        """A reshare whose worker died mid-call may have happened: record it failed, never try twice."""
        for row in self.ledger.stuck():
            with self._in_flight_lock:
                if row.id in self._in_flight:
                    continue
            started = row.not_before if row.not_before.tzinfo else row.not_before.replace(tzinfo=now.tzinfo)
            if now - started < older_than:
                continue
            if self.ledger.transition(
                row.id,
                ["resharing"],
                status="failed",
                reason="uncertain_outcome",
                error="the worker stopped during the reshare call; not retried",
            ):
                self._log("reshare_failed", row, reason="uncertain_outcome", level="error")

    def drain(self, account: str) -> str | None:
        """Reshare the next waiting post of ``account`` if the caps allow it now; the resulting status."""
        rows = self.ledger.pending(account)
        self.next_due.pop(account, None)
        if not rows:
            return None
        now = self.clock.now()
        # Whatever happens below, look again once the spacing has passed, not only at the next poll.
        self.next_due[account] = now + self.rules.spacing
        acted = self.acted_statuses
        hour, day, last = self.ledger.counts(account, now, acted, reserved=False)
        if last is not None and now - last < self.rules.spacing:
            self.next_due[account] = last + self.rules.spacing
            return None
        if hour >= self.rules.max_per_hour or day >= self.rules.max_per_day:
            return None
        for row in rows:
            if row.not_before is not None and _aware(row.not_before, now) > now:
                continue
            if now - _aware(row.decided_at, now) > STALE_AFTER:
                if self.ledger.transition(
                    row.id, ["pending"], status="skipped", reason="stale", detail=f"still waiting after {STALE_AFTER}"
                ):
                    self._log("reshare_skipped", row, reason="stale")
                continue
            author = self.ledger.author_record(row.network, account, row.author_id, now, acted, acted)
            if author.last is not None and now - author.last < self.rules.author_cooldown:
                continue
            cap = self.rules.max_per_author_per_day
            if cap is not None and author.day >= cap:  # approved by staff or not, an author's day is capped
                continue
            return self._reshare(row, now)
        return None

    def _reshare(self, row: Any, now: datetime) -> str | None:
        if not self.ledger.transition(
            row.id, ["pending"], status="resharing", attempts=row.attempts + 1, not_before=now
        ):
            return None  # approved twice, or another worker took it
        if self.dry_run:
            self.ledger.transition(row.id, ["resharing"], status="would_have", acted_at=now)
            self._log("reshare_would_have", row)
            return "would_have"
        adapter = self.adapters.get(row.account)
        with self._in_flight_lock:
            self._in_flight.add(row.id)
        try:
            return self._call(adapter, row, now)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(row.id)

    def _call(self, adapter: Platform | None, row: Any, now: datetime) -> str:
        try:
            if adapter is None:
                raise PermanentError(f"no adapter for account {row.account} (missing secrets?)")
            receipt = adapter.reshare(mention_from_json(row.mention))
        except RetryableError as err:
            if row.attempts + 1 >= MAX_ATTEMPTS:
                return self._failed(row, err)
            delay = timedelta(seconds=err.retry_after) if err.retry_after else BACKOFF * (row.attempts + 1)
            self.ledger.transition(row.id, ["resharing"], status="pending", not_before=now + delay, error=str(err))
            self._log(
                "reshare_deferred",
                row,
                reason=_snake(type(err).__name__),
                error=str(err),
                retry_in=delay.total_seconds(),
                level="warning",
            )
            return "deferred"
        except AuthFailed as err:
            # Every reshare of this account would fail the same way until staff fix the credentials:
            # keep the post waiting (it goes stale after a day) and say so once, not once per post.
            self.ledger.transition(
                row.id,
                ["resharing"],
                status="pending",
                not_before=now + AUTH_PAUSE,
                attempts=row.attempts,
                error=str(err),
            )
            first = row.account not in self._auth_reported
            self._auth_reported.add(row.account)
            self._log(
                "reshare_deferred",
                row,
                reason="auth_failed",
                error=str(err),
                retry_in=AUTH_PAUSE.total_seconds(),
                level="error" if first else "debug",
            )
            return "deferred"
        except PermanentError as err:
            return self._failed(row, err)
        self._auth_reported.discard(row.account)
        # The platform took it, so the row says done even if a recovery marked it failed meanwhile:
        # the ledger records what happened, and the post is never reshared again either way.
        self.ledger.transition(
            row.id,
            ["resharing", "failed"],
            status="done",
            acted_at=self.clock.now(),
            reshare_id=receipt.remote_id,
            reshare_url=receipt.url,
            reason=row.reason,
            error=None,
        )
        self._log("reshare_done", row, reshare_url=receipt.url, reshare_id=receipt.remote_id)
        return "done"

    # ---- taking a reshare back ----

    def withdraw(self, row: Any, reason: str, detail: str = "") -> str | None:
        """Record that this standing reshare must go, then take it back now; the resulting status."""
        now = self.clock.now()
        if not mark_withdrawing(self.ledger, row, reason, detail, not_before=now + WITHDRAW_GRACE):
            return None  # withdrawn already, or another thread took it
        return self.finish_withdrawal(self.ledger.rows(ids=[row.id])[0])

    def withdraw_due(self, now: datetime) -> int:
        """Take back reshares recorded as to withdraw whose last try failed (or was never made); how many went."""
        gone = 0
        for row in self.ledger.rows(status=["withdrawing"]):
            if row.not_before is not None and _aware(row.not_before, now) > now:
                continue
            if self.finish_withdrawal(row) == "withdrawn":
                gone += 1
        return gone

    def finish_withdrawal(self, row: Any) -> str:
        return perform_withdrawal(self.ledger, self.adapters.get(row.account), row, self.clock, self._log)

    def _failed(self, row: Any, err: Exception) -> str:
        reason = _snake(type(err).__name__)
        self.ledger.transition(row.id, ["resharing"], status="failed", reason=reason, error=str(err))
        self._log("reshare_failed", row, reason=reason, error=str(err), level="error")
        return "failed"

    def _log(self, event: str, row: Any, *, level: str = "info", **extra: Any) -> None:
        fields = dict(
            platform=row.platform,
            account=row.account,
            remote_id=row.remote_id,
            author=row.author,
            reason=row.reason,
            url=row.url,
            decision_id=row.id,
        )
        fields.update(extra)
        getattr(self.log, level)(event, **fields)


WITHDRAW_GRACE = timedelta(minutes=2)  # a withdrawal just marked is its marker's to make; others retry after this


def mark_withdrawing(ledger: ReshareLedger, row: Any, reason: str, detail: str, *, not_before: datetime) -> bool:
    """Record the intent before the platform call, so a withdrawal survives a crash and is retried."""
    return ledger.transition(
        row.id,
        ["done", "withdrawing"] if row.status == "withdrawing" else ["done"],
        status="withdrawing",
        withdrawn_reason=reason,
        withdrawn_detail=detail,
        not_before=not_before,
    )


def perform_withdrawal(
    ledger: ReshareLedger, adapter: Platform | None, row: Any, clock: Clock, log: Callable[..., None]
) -> str:
    """Take back the reshare of a ``withdrawing`` row on its platform and record the outcome.

    ``log(event, row, level=..., **fields)``. A failure keeps the row ``withdrawing`` with its error,
    to be tried again after a pause: a reshare the campaign no longer stands behind must not stay up.
    """
    try:
        if adapter is None:
            raise PermanentError(f"no adapter for account {row.account} (missing secrets?)")
        adapter.withdraw_reshare(mention_from_json(row.mention), row.reshare_id)
    except BotError as err:
        now = clock.now()
        wait = getattr(err, "retry_after", None)
        delay = timedelta(seconds=wait) if wait else AUTH_PAUSE if isinstance(err, PermanentError) else BACKOFF
        ledger.transition(row.id, ["withdrawing"], not_before=now + delay, error=str(err))
        log(
            "reshare_withdraw_failed",
            row,
            level="error",
            reason=row.withdrawn_reason,
            error=str(err),
            retry_in=delay.total_seconds(),
        )
        return "withdrawing"
    ledger.transition(row.id, ["withdrawing"], status="withdrawn", withdrawn_at=clock.now(), error=None)
    log(
        "reshare_withdrawn",
        row,
        reason=row.withdrawn_reason,
        detail=row.withdrawn_detail or "",
        reshare_id=row.reshare_id,
    )
    return "withdrawn"


def _aware(value: datetime, like: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=like.tzinfo)
