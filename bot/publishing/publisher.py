"""Publish one occurrence to one account exactly once: the unit of work the worker and ``bot publish`` run.

Interface (the worker codes against it; changes are noted here):
- ``Publisher(campaign, ledger, adapters, clock, owner, *, retry=RetryPolicy(), lease=10 min, stop=None,
  rng=None, on_progress=None)``. ``publisher.campaign`` may be replaced after a reload.
- ``fire(occurrence, account_id) -> Result``; ``Result.outcome`` is an ``Outcome``: published, skipped,
  failed, retry_later (``Result.retry_at``: fire the same occurrence again then), not_mine, needs_attention
  (nobody can tell whether the post went out: the adapter raised ``OutcomeUnknown``, or the last attempt
  was uncertain and no look-up found the post; never sent again, a person resolves it).
  ``occurrence`` is a ``bot.schedule.occurrences.Occurrence`` or a ``SlotRef``; never raises for platform errors.
- ``resume(row) -> Result`` fires a ledger row again (``ledger.pending_retries()``/``expired_claims()``).
- ``publish_now(post_id, account_id) -> Result`` for ``bot publish`` (target ``post:<id>``, manual).
- ``paused_accounts``: account id -> actionable message, for accounts whose credentials failed.
- ``AdapterPool(build=None, *, timeout=30, wall=time.time)`` builds each account's adapter once.
- ``Result``: outcome, publication_id, post, reason (skip/failure reason, or the retryable error's
  class name), retry_at, remote_id, url. Skip reasons: missed, outside_window, queue_empty,
  account_paused, unknown_account, post_missing. Failure reasons: auth, rejected, duplicate,
  not_found, permanent, gave_up, config_changed, internal_error.
- ``stop``: a ``threading.Event`` the worker sets on SIGTERM; ``fire`` then claims nothing new, but a
  publication already past its claim is finished and recorded.

Outgoing.key is ``PublicationKey.token()``: ``pub1-`` + the first 32 hex digits of SHA-256 over
campaign, slot (``YYYY-MM-DDTHH:MM:SSZ``), target and account joined by U+001F. ASCII, 37 characters,
stable across restarts and text edits: Mastodon sends it as ``Idempotency-Key``, Bluesky derives the
record key from it, and every adapter's ``find_published`` may use it to reconcile.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import structlog

from bot.core.clock import Clock
from bot.core.errors import (
    AuthFailed,
    ConfigError,
    ContentRejected,
    DuplicateContent,
    LeaseLost,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    UncertainOutcome,
)
from bot.core.values import Outgoing, Receipt
from bot.ledger.db import LedgerFull
from bot.ledger.publications import Ledger, LedgerNotes, PublicationKey
from bot.platforms.base import Platform
from bot.publishing import release
from bot.publishing.adapters import AdapterPool, auth_message
from bot.publishing.results import (
    Outcome,
    Result,
    RetryPolicy,
    SlotRef,
    manual_slot,
    slot_ref_of,
)

__all__ = ["AdapterPool", "Outcome", "Publisher", "Result", "RetryPolicy", "SlotRef"]

log = structlog.get_logger("bot.publishing.publisher")

LEDGER_FULL_RETRY = timedelta(seconds=30)
"""How often a publication the ledger had no space to claim is tried again (nothing is sent until it is claimed)."""

FAILURE_REASONS: list[tuple[type[PermanentError], str]] = [
    (AuthFailed, "auth"),
    (DuplicateContent, "duplicate"),
    (ContentRejected, "rejected"),
    (NotFound, "not_found"),
]


class Publisher:
    """Claims, publishes and records one (slot, account) at a time; safe to share between threads."""

    def __init__(
        self,
        campaign: Any,
        ledger: Ledger,
        adapters: AdapterPool,
        clock: Clock,
        owner: str,
        *,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=10),
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        on_progress: Callable[[dict[str, Any], int, int], None] | None = None,
    ) -> None:
        self.campaign = campaign
        self.ledger = ledger
        self.adapters = adapters
        self.clock = clock
        self.owner = owner
        self.retry = retry or RetryPolicy()
        self.lease = lease
        self.stop = stop or threading.Event()
        self.rng = rng or random.Random()
        self.on_progress = on_progress
        self._schedule_index: tuple[Any, dict[str, Any]] | None = None

    @property
    def paused_accounts(self) -> dict[str, str]:
        return dict(self.adapters.paused)

    def publish_now(self, post_id: str, account_id: str, *, again: bool = False) -> Result:
        """``bot publish``: once per post, account and day; ``again`` makes a new publication on purpose."""
        return self.fire(manual_slot(post_id, account_id, self.clock.now(), again=again), account_id)

    def resume(self, row: Any) -> Result:
        """Fire a ledger row again (a due retry, or a claim whose worker died)."""
        return self.fire(slot_ref_of(row, getattr(self.campaign, "schedules", [])), row.account)

    def fire(self, occ: Any, account_id: str) -> Result:
        """Publish ``occ`` to ``account_id`` unless another worker has it or it is already done."""
        if self.stop.is_set():
            return Result(Outcome.not_mine, reason="stopping")
        campaign = self.campaign
        account = campaign.accounts.get(account_id)
        key = PublicationKey(campaign.name, occ.at, occ.target, account_id)
        ctx = dict(
            campaign=campaign.name,
            account=account_id,
            platform=getattr(account, "platform", None),
            slot=key.slot_iso,
            target=occ.target,
        )
        manual = bool(getattr(occ, "manual", False))
        skip = self._skip_reason(occ, account_id, manual)
        queue = getattr(occ, "queue", None)
        choose = None
        if queue and skip is None:
            order = list(campaign.queues.get(queue, []))
            choose = lambda used: next((p for p in order if p not in used), None)
        ready = None if skip is not None or choose is not None else self._ready(account, occ.post, key)
        slot_of: dict[str, Any] = dict(
            post=occ.post, schedule=occ.schedule, slot=occ.slot, platform=ctx["platform"], manual=manual
        )
        if ready is not None:
            # Everything the attempt needs is known: claim and record the attempt in one transaction.
            try:
                claimed = self.ledger.claim_and_begin(key, self.owner, self.lease, **slot_of)
            except LedgerFull as err:
                return self._ledger_full(key, occ, err, ctx)
            if claimed is None:
                return Result(Outcome.not_mine)
            if self.ledger.unrecorded:
                self.ledger.unrecorded.discard(key)
            begun, n, reconcile = claimed
            ctx["post"] = begun.post
            return release.settled(self._run(begun, n, reconcile, *ready, account, occ, ctx), ready[0], ready[1].key)
        try:
            row = self.ledger.claim(key, self.owner, self.lease, choose=choose, **slot_of)
        except LedgerFull as err:
            return self._ledger_full(key, occ, err, ctx)
        if row is None:
            return Result(Outcome.not_mine)
        if self.ledger.unrecorded:
            self.ledger.unrecorded.discard(key)
        ctx["post"] = row.post
        if row.attempts == 0:
            skip = skip or (None if row.post else "queue_empty")
            if skip is None and row.post not in campaign.posts:
                skip = "post_missing"  # deleted by a reload after it was chosen
            if skip is not None:
                return self._skipped(row.id, skip, ctx)
        elif account is None or row.post not in campaign.posts:
            return self._failed(row.id, None, "config_changed", "account or post no longer in the campaign", ctx)
        elif account_id in self.adapters.paused:
            return self._failed(row.id, None, "auth", self.adapters.paused[account_id], ctx, quiet=True)
        return self._attempt(row, key, account, occ, ctx)

    def _ledger_full(self, key: PublicationKey, occ: Any, err: LedgerFull, ctx: dict[str, Any]) -> Result:
        """Nothing was claimed nor sent: try again until the ledger has space (``bot status`` lists it meanwhile)."""
        first = self.ledger.unrecorded.add(key, str(err)) if self.ledger.unrecorded is not None else True
        when = self.clock.now() + LEDGER_FULL_RETRY
        # Once per publication at error level, not at every retry while the disk stays full.
        _emit(
            log.error if first else log.info,
            "publish_failed",
            ctx,
            outcome="retry_later",
            reason="ledger_full",
            error=str(err),
            retry_at=when.isoformat(),
        )
        return Result(Outcome.retry_later, None, occ.post, "ledger_full", retry_at=when)

    def _skip_reason(self, occ: Any, account_id: str, manual: bool) -> str | None:
        if account_id not in self.campaign.accounts:
            return "unknown_account"
        if not manual and not self._in_window(occ):
            return "outside_window"
        if not manual and self.clock.now() > occ.at + occ.grace:
            return "missed"  # never a burst of stale posts after an outage
        if account_id in self.adapters.paused:
            return "account_paused"
        return None

    def _in_window(self, occ: Any) -> bool:
        schedule = self._schedule(occ.schedule)
        if schedule is None:
            return True
        day: date = occ.at.astimezone(schedule.timezone).date()
        start, end = schedule.window_start, schedule.window_end
        return (start is None or day >= start) and (end is None or day <= end)

    def _schedule(self, name: str | None) -> Any:
        campaign = self.campaign  # replaced whole by a reload: the index is rebuilt for the new one
        index = self._schedule_index
        if index is None or index[0] is not campaign:
            index = self._schedule_index = (campaign, {s.name: s for s in getattr(campaign, "schedules", [])})
        return index[1].get(name) if name is not None else None

    def _attempt(self, row: Any, key: PublicationKey, account: Any, occ: Any, ctx: dict[str, Any]) -> Result:
        try:
            adapter = self.adapters.get(account)
        except ConfigError as err:  # a credential variable is unset: same remedy as refused credentials
            return self._auth_failed(row.id, None, account, "; ".join(err.problems), ctx)
        try:
            out = self.campaign.posts[row.post].outgoing(account.platform, key.token(), account.language)
        except Exception as exc:  # nothing was sent: record it rather than leave a claim to expire and repeat
            log.exception("publish_crashed", **ctx)
            return self._failed(row.id, None, "internal_error", f"{type(exc).__name__}: {exc}", ctx)
        n, reconcile = self.ledger.begin_attempt(row.id, self.owner, prior=row.attempts)
        return release.settled(self._run(row, n, reconcile, adapter, out, account, occ, ctx), adapter, out.key)

    def _ready(self, account: Any, post_id: str | None, key: PublicationKey) -> tuple[Any, Any] | None:
        """(adapter, outgoing) when a fixed-post publication can be attempted as soon as it is claimed."""
        if account is None or post_id not in self.campaign.posts or account.id in self.adapters.paused:
            return None
        try:
            return self.adapters.get(account), self.campaign.posts[post_id].outgoing(
                account.platform, key.token(), account.language
            )
        except Exception:  # noqa: BLE001  (the claim-first path records it with its reason)
            return None

    def _run(
        self, row: Any, n: int, reconcile: bool, adapter: Any, out: Any, account: Any, occ: Any, ctx: dict[str, Any]
    ) -> Result:
        ctx["attempt"] = n
        started = time.monotonic()
        # What the adapter must remember across a crash (a container id) goes to this row; the first
        # attempt has nothing to read back.
        out = dataclasses.replace(out, notes=LedgerNotes(self.ledger, row.id, fresh=n == 1))
        try:
            receipt = adapter.find_published(out) if reconcile else None
            if receipt is not None:
                ctx["reconciled"] = True
            elif row.attempts > 0 and self.clock.now() > self.retry.deadline_for(row.slot_at, occ.grace):
                return self._failed(row.id, n, "gave_up", "retry deadline passed", ctx, started=started)
            else:
                receipt = self._send(adapter, out, row.id, reconcile, ctx)
        except LeaseLost as err:
            return self._abandoned(row.id, n, err, ctx, started)
        except OutcomeUnknown as err:
            return self._needs_attention(row.id, n, f"{type(err).__name__}: {err}", ctx, started)
        except RetryableError as err:
            return self._retry(row, n, err, occ, ctx, started)
        except AuthFailed as err:
            return self._auth_failed(row.id, n, account, str(err), ctx, started=started)
        except PermanentError as err:
            reason = next((r for cls, r in FAILURE_REASONS if isinstance(err, cls)), "permanent")
            return self._failed(row.id, n, reason, f"{type(err).__name__}: {err}", ctx, started=started)
        except Exception as exc:  # a bug must not leave the row claimed forever, nor be retried into a duplicate
            log.exception("publish_crashed", **ctx)
            return self._failed(row.id, n, "internal_error", f"{type(exc).__name__}: {exc}", ctx, started=started)
        return self._published(row.id, n, receipt, ctx, started)

    def _send(self, adapter: Platform, out: Outgoing, pub_id: int, reconcile: bool, ctx: dict[str, Any]) -> Receipt:
        try:
            return adapter.publish(out, self._progress(pub_id, ctx))
        except DuplicateContent:
            if not reconcile:
                raise
            # A dead or timed-out attempt's request can land after our look-up, and X then refuses
            # this one as a duplicate: the post that is live is ours, so record it.
            found = adapter.find_published(out)
            if found is None:
                raise
            ctx["reconciled"] = True
            return found

    def _progress(self, pub_id: int, ctx: dict[str, Any]) -> Callable[[int, int], None]:
        last = [self.clock.now()]

        def progress(sent: int, total: int) -> None:
            # A long upload must not look like a dead worker: renew the lease as it goes.
            now = self.clock.now()
            if now - last[0] >= self.lease / 3:
                last[0] = now
                if not self.ledger.renew_lease(pub_id, self.owner, self.lease):
                    # Stalled past the lease, and another worker took the row over: posting now
                    # could double its post (X has no idempotency key), so stop the upload here.
                    raise LeaseLost(f"publication {pub_id} was taken over by another worker during the upload")
            if self.on_progress is not None:
                self.on_progress(ctx, sent, total)

        return progress

    def _retry(self, row: Any, n: int, err: RetryableError, occ: Any, ctx: dict[str, Any], started: float) -> Result:
        error = f"{type(err).__name__}: {err}"
        when = self.clock.now() + timedelta(seconds=self.retry.delay(n, err.retry_after, self.rng))
        uncertain = isinstance(err, UncertainOutcome)
        if n >= self.retry.max_attempts or when > self.retry.deadline_for(row.slot_at, occ.grace):
            if uncertain:
                # The last attempt may have reached the platform and no look-up found the post: the bot
                # does not guess (a duplicate is worse than a post a person re-sends by hand).
                return self._needs_attention(row.id, n, f"gave up after an uncertain attempt: {error}", ctx, started)
            return self._failed(row.id, n, "gave_up", error, ctx, started=started)
        self.ledger.record_retry(row.id, when, error, attempt=n, uncertain=uncertain, owner=self.owner)
        _emit(
            log.warning,
            "publish_retried",
            ctx,
            outcome="retry_later",
            reason=type(err).__name__,
            error=error,
            retry_at=when.isoformat(),
            retry_after=err.retry_after,
            duration_ms=_ms(started),
        )
        return Result(Outcome.retry_later, row.id, ctx["post"], type(err).__name__, retry_at=when)

    def _abandoned(self, pub_id: int, n: int, err: LeaseLost, ctx: dict[str, Any], started: float) -> Result:
        # The row is the new owner's now: only our attempt is closed (the owner guard leaves the row alone).
        self.ledger.record_failed(
            pub_id, "lease_lost", str(err), attempt=n, attempt_outcome="abandoned", owner=self.owner
        )
        _emit(
            log.warning,
            "publish_abandoned",
            ctx,
            outcome="abandoned",
            reason="lease_lost",
            error=str(err),
            duration_ms=_ms(started),
        )
        return Result(Outcome.not_mine, pub_id, ctx.get("post"), "lease_lost")

    def _auth_failed(
        self,
        pub_id: int,
        n: int | None,
        account: Any,
        detail: str,
        ctx: dict[str, Any],
        *,
        started: float | None = None,
    ) -> Result:
        message = auth_message(account, detail)
        first = self.adapters.pause(account.id, message)
        return self._failed(pub_id, n, "auth", message, ctx, started=started, quiet=not first)

    def _failed(
        self,
        pub_id: int,
        n: int | None,
        reason: str,
        error: str | None,
        ctx: dict[str, Any],
        *,
        started: float | None = None,
        quiet: bool = False,
        attempt_outcome: str = "failed",
    ) -> Result:
        self.ledger.record_failed(pub_id, reason, error, attempt=n, attempt_outcome=attempt_outcome, owner=self.owner)
        # An account's broken credentials are reported once at error level, not once per slot.
        _emit(
            log.info if quiet else log.error,
            "publish_failed",
            ctx,
            outcome="failed",
            reason=reason,
            error=error,
            duration_ms=_ms(started) if started else None,
        )
        return Result(Outcome.failed, pub_id, ctx.get("post"), reason)

    def _needs_attention(self, pub_id: int, n: int, error: str, ctx: dict[str, Any], started: float) -> Result:
        self.ledger.record_needs_attention(pub_id, error, attempt=n, owner=self.owner)
        _emit(
            log.error,
            "publication_needs_attention",
            ctx,
            outcome="needs_attention",
            reason="outcome_unknown",
            error=error,
            duration_ms=_ms(started),
            resolve=f"bot attention resolve {pub_id} --published URL | --not-published",
        )
        return Result(Outcome.needs_attention, pub_id, ctx.get("post"), "outcome_unknown")

    def _skipped(self, pub_id: int, reason: str, ctx: dict[str, Any]) -> Result:
        self.ledger.record_skipped(pub_id, reason, owner=self.owner)
        _emit(
            log.warning if reason in ("missed", "post_missing") else log.info,
            "publish_skipped",
            ctx,
            outcome="skipped",
            reason=reason,
        )
        return Result(Outcome.skipped, pub_id, ctx.get("post"), reason)

    def _published(self, pub_id: int, n: int, receipt: Receipt, ctx: dict[str, Any], started: float) -> Result:
        try:
            self.ledger.record_published(pub_id, receipt.remote_id, receipt.url, attempt=n)
        except LedgerFull as err:
            # The post is live; the row stays claimed with its attempt open, so once the lease runs out
            # a sweep takes it over and reconciles it with the platform instead of sending it again.
            log.error("ledger_write_failed", **ctx, remote_id=receipt.remote_id, error=str(err))
        _emit(
            log.info,
            "post_published",
            ctx,
            outcome="published",
            remote_id=receipt.remote_id,
            url=receipt.url,
            duration_ms=_ms(started),
        )
        return Result(Outcome.published, pub_id, ctx.get("post"), remote_id=receipt.remote_id, url=receipt.url)


CANONICAL = (
    "campaign",
    "post",
    "account",
    "platform",
    "slot",
    "target",
    "attempt",
    "outcome",
    "remote_id",
    "url",
    "duration_ms",
    "reason",
)


def _emit(method: Callable[..., Any], event: str, ctx: dict[str, Any], **fields: Any) -> None:
    """The one canonical line per attempt: every field present, so log queries need no special cases."""
    line = dict.fromkeys(CANONICAL)
    line.update(ctx)
    line.update(fields)
    method(event, **line)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
