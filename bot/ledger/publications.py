"""The publication ledger: one row per (campaign, slot, target, account), claimed before any platform call.

A row is claimed atomically (a new INSERT, or an UPDATE that takes over a lease that ran out) and
ends published, skipped or failed; every call to a platform is an ``attempts`` row. Queue slots
choose their post inside the claim transaction, serialised per account (PostgreSQL advisory lock,
SQLite ``BEGIN IMMEDIATE``), so two workers never pick the same queue post for two slots.
Read-side queries for ``bot status`` and the heartbeat live in ``bot.ledger.publication_queries``, the
tables, states and ``PublicationKey`` in ``bot.ledger.publication_schema``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from bot.core.clock import Clock, SystemClock
from bot.ledger.group_commit import GroupCommit
from bot.ledger.publication_queries import PublicationQueries
from bot.ledger.publication_schema import (
    CLAIMED,
    FAILED,
    OPEN_STATES,
    PUBLISHED,
    RETRYING,
    SKIPPED,
    USED_FAILURES,
    PublicationKey,
    UTCDateTime,
    attempts,
    publications,
)
from bot.ledger.publications_sql import Statements, key_params

T = TypeVar("T")

REMEMBERED = 10_000  # attempts' start times kept in memory (a few hundred are open at once)

Chooser = Callable[[set[str]], str | None]
"""Given the post ids already used on the account, the queue post to publish (None: queue empty)."""


class Ledger(PublicationQueries):
    """Claims and outcomes of publications; every time comes from the injected clock."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._pg = engine.dialect.name == "postgresql"
        # SQLite lets one writer in at a time: our threads' writes are queued and committed in
        # batches (see group_commit). PostgreSQL runs them side by side, each in its own transaction.
        self._group = None if self._pg else GroupCommit(engine)
        # A statement on its own commits without BEGIN and COMMIT round trips (see _write).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._pg else None
        self._sql = Statements(publications, attempts, OPEN_STATES, engine.dialect, UTCDateTime())
        # When each attempt we began started, so that ending it needs no look-up; a miss (an attempt
        # begun by another process, or forgotten below) reads the attempt's row instead.
        self._started: dict[tuple[int, int], datetime] = {}

    def _write(self, work: Callable[[Connection], T], *, each_atomic: bool = False) -> T:
        """``work(conn)`` in a write transaction (on SQLite, with the write lock taken up front).

        ``each_atomic``: every statement of ``work`` is right on its own, as a transaction of its
        own would run it under PostgreSQL's READ COMMITTED (which is what the statements of one
        transaction see anyway); PostgreSQL then runs them in autocommit mode, two round trips fewer.
        """
        if self._group is not None:
            return self._group.run(work)
        if each_atomic:
            with self._autocommit.connect() as conn:
                return work(conn)
        with self.engine.begin() as conn:
            return work(conn)

    # ---- claiming ----

    def claim(
        self,
        key: PublicationKey,
        owner: str,
        lease: timedelta,
        *,
        post: str | None = None,
        choose: Chooser | None = None,
        schedule: str | None = None,
        slot: int | None = None,
        platform: str | None = None,
        manual: bool = False,
    ) -> Row | None:
        """Claim ``key`` for ``owner``: the row, or None when another owner holds it or it is finished.

        For a queue slot pass ``choose``: it runs inside the claim, under a per-account lock, with
        the posts already used on the account, so the post is chosen exactly once per slot.
        """
        now = self.clock.now()
        extra = dict(schedule=schedule, slot=slot, platform=platform, manual=manual)
        return self._write(lambda conn: self._claim_in(conn, key, owner, now, now + lease, post, choose, extra))

    def claim_and_begin(
        self,
        key: PublicationKey,
        owner: str,
        lease: timedelta,
        *,
        post: str,
        schedule: str | None,
        slot: int | None,
        platform: str | None,
        manual: bool = False,
    ) -> tuple[Row, int, bool] | None:
        """``claim`` of a fixed post and ``begin_attempt`` at once: (row as claimed, attempt, reconcile).

        For a caller that checked everything an attempt needs before claiming: one write before
        the platform call instead of two (the punctuality path). On PostgreSQL the claim (an upsert)
        and its attempt's row are one statement; on SQLite, the upsert and the attempt's insert in
        one transaction. A take-over then asks whether an earlier attempt calls for a reconcile.
        """
        now = self.clock.now()
        sql = self._sql
        params = dict(
            i_campaign=key.campaign,
            i_slot_at=key.slot_at,
            i_target=key.target,
            i_account=key.account,
            i_post=post,
            i_schedule=schedule,
            i_slot=slot,
            i_manual=manual,
            i_platform=platform,
            v_state=CLAIMED,
            v_owner=owner,
            v_until=now + lease,
            v_now=now,
        )

        def work(conn: Connection) -> tuple[Row, int, bool] | None:
            row = sql.claim_begin.first(conn, params)
            if row is None:
                return None
            n = row.attempts + 1
            if not self._pg:  # PostgreSQL's claim_begin inserted the attempt itself
                sql.insert_attempt.rowcount(conn, dict(k_id=row.id, k_n=n, v_owner=owner, v_started=now))
            reconcile = row.attempts > 0 and sql.uncertain_before.scalar(conn, {"k_id": row.id, "k_n": n}) > 0
            return row, n, reconcile

        claimed = self._write(work, each_atomic=True)
        if claimed is not None:
            self._remember(claimed[0].id, claimed[1], now)
        return claimed

    def _claim_in(
        self,
        conn: Connection,
        key: PublicationKey,
        owner: str,
        now: datetime,
        until: datetime,
        post: str | None,
        choose: Chooser | None,
        extra: dict,
    ) -> Row | None:
        sql = self._sql
        if choose is not None and self._pg:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("pub:" + key.account))))
        existing = conn.execute(sql.by_key, key_params(key)).first()
        if existing is None:
            chosen = post if choose is None else choose(self._used(conn, key.account))
            values = dict(
                campaign=key.campaign,
                slot_at=key.slot_at,
                target=key.target,
                account=key.account,
                post=chosen,
                state=CLAIMED,
                owner=owner,
                lease_until=until,
                attempts=0,
                created=now,
                updated=now,
                **extra,
            )
            row = conn.execute(sql.insert_claim, values).first()
            if row is not None:
                return row
        elif existing.state not in OPEN_STATES or existing.lease_until is None or existing.lease_until > now:
            # Finished, or another worker's live lease: the take-over's UPDATE could match nothing.
            # Saying so here spares it, for every account another worker already has.
            return None
        return self._take_over(conn, key, owner, now, until, choose)

    def _take_over(
        self, conn: Connection, key: PublicationKey, owner: str, now: datetime, until: datetime, choose: Chooser | None
    ) -> Row | None:
        c = publications.c
        row = conn.execute(
            self._sql.take_over,
            dict(key_params(key), k_now=now, v_state=CLAIMED, v_owner=owner, v_until=until, v_updated=now),
        ).first()
        if row is not None and row.post is None and choose is not None:
            # The previous owner died before choosing (it claimed to record a skip): choose now.
            chosen = choose(self._used(conn, key.account))
            conn.execute(sa.update(publications).where(c.id == row.id).values(post=chosen))
            row = conn.execute(sa.select(publications).where(c.id == row.id)).first()
        return row

    def renew_lease(self, pub_id: int, owner: str, lease: timedelta) -> bool:
        """Extend ``owner``'s lease; False when the row is no longer ``owner``'s claim."""
        now = self.clock.now()
        c = publications.c
        renew = (
            sa.update(publications)
            .where(c.id == pub_id, c.owner == owner, c.state == CLAIMED)
            .values(lease_until=now + lease, updated=now)
        )
        return self._write(lambda conn: conn.execute(renew).rowcount == 1, each_atomic=True)

    # ---- attempts and outcomes ----

    def start_attempt(self, pub_id: int, owner: str) -> int:
        """Record that ``owner`` is about to call the platform; the attempt's number."""
        return self.begin_attempt(pub_id, owner, prior=0)[0]

    def begin_attempt(self, pub_id: int, owner: str, *, prior: int) -> tuple[int, bool]:
        """Record an attempt about to start: (its number, whether an earlier one may have reached the platform).

        ``prior`` is the claimed row's ``attempts``: with none before there is nothing to reconcile,
        so the look-up is skipped; otherwise it runs in the same transaction as the new attempt.
        """
        now = self.clock.now()
        n, reconcile = self._write(lambda conn: self._begin_in(conn, pub_id, owner, prior, now))
        self._remember(pub_id, n, now)
        return n, reconcile

    def _begin_in(self, conn: Connection, pub_id: int, owner: str, prior: int, now: datetime) -> tuple[int, bool]:
        sql = self._sql
        reconcile = prior > 0 and sql.uncertain_attempts.scalar(conn, {"k_id": pub_id}) > 0
        n = sql.count_attempt.scalar(conn, {"k_id": pub_id, "v_updated": now})
        sql.insert_attempt.rowcount(conn, dict(k_id=pub_id, k_n=n, v_owner=owner, v_started=now))
        return n, reconcile

    def _remember(self, pub_id: int, n: int, started: datetime) -> None:
        if len(self._started) >= REMEMBERED:
            # Attempts never ended here (the worker lost them) would pile up; a miss only costs a read.
            self._started.clear()
        self._started[(pub_id, n)] = started

    def needs_reconcile(self, pub_id: int) -> bool:
        """True when an earlier attempt may have reached the platform (uncertain, or its worker died)."""
        with self.engine.connect() as conn:
            return self._sql.uncertain_attempts.scalar(conn, {"k_id": pub_id}) > 0

    def record_published(
        self, pub_id: int, remote_id: str, url: str, *, attempt: int | None = None, post: str | None = None
    ) -> None:
        """The platform holds the post: recorded whoever owns the row, because it is the truth."""
        values = dict(
            state=PUBLISHED,
            remote_id=remote_id,
            url=url,
            reason=None,
            owner=None,
            lease_until=None,
            next_attempt_at=None,
        )
        if post is not None:
            values["post"] = post
        self._finish(pub_id, values, attempt, "published", None, only_open=False)

    # The records below take ``owner``: when given, a worker whose claim was taken over (its lease ran
    # out) cannot overwrite the new owner's row; they return whether the row was theirs to record.

    def record_skipped(self, pub_id: int, reason: str, *, attempt: int | None = None, owner: str | None = None) -> bool:
        return self._finish(
            pub_id,
            dict(state=SKIPPED, reason=reason, owner=None, lease_until=None, next_attempt_at=None),
            attempt,
            "skipped",
            None,
            owner=owner,
        )

    def record_failed(
        self,
        pub_id: int,
        reason: str,
        error: str | None,
        *,
        attempt: int | None = None,
        attempt_outcome: str = "failed",
        owner: str | None = None,
    ) -> bool:
        return self._finish(
            pub_id,
            dict(state=FAILED, reason=reason, last_error=error, owner=None, lease_until=None, next_attempt_at=None),
            attempt,
            attempt_outcome,
            error,
            owner=owner,
        )

    def record_retry(
        self,
        pub_id: int,
        next_attempt_at: datetime,
        error: str,
        *,
        attempt: int | None = None,
        uncertain: bool = False,
        owner: str | None = None,
    ) -> bool:
        """Give the row back until ``next_attempt_at``; whoever claims it then (any worker) retries."""
        return self._finish(
            pub_id,
            dict(
                state=RETRYING,
                next_attempt_at=next_attempt_at,
                lease_until=next_attempt_at,
                owner=None,
                last_error=error,
            ),
            attempt,
            "uncertain" if uncertain else "retry",
            error,
            owner=owner,
        )

    def _finish(
        self,
        pub_id: int,
        values: dict,
        attempt: int | None,
        outcome: str,
        error: str | None,
        *,
        only_open: bool = True,
        owner: str | None = None,
    ) -> bool:
        now = self.clock.now()
        sql = self._sql
        values = dict(values, updated=now)
        one_statement = self._pg and attempt is not None  # the publication's row and the attempt's at once
        stmt = sql.finish(tuple(values), only_open, owner is not None, attempt=one_statement)
        params = {f"v_{name}": value for name, value in values.items()}
        params["k_id"] = pub_id
        if owner is not None:
            params["k_owner"] = owner

        started = None if attempt is None else self._started.pop((pub_id, attempt), None)
        if attempt is not None:
            params.update(k_n=attempt, v_ended=now, v_outcome=outcome, v_error=error)

        def work(conn: Connection) -> bool:
            if attempt is None:
                return stmt.rowcount(conn, params) == 1
            began = started
            if began is None:
                began = conn.execute(sql.attempt_started, params).scalar_one_or_none()
            params["v_duration"] = None if began is None else round((now - began).total_seconds() * 1000)
            if one_statement:
                return stmt.scalar(conn, params) == 1
            mine = stmt.rowcount(conn, params) == 1
            sql.end_attempt.rowcount(conn, params)
            return mine

        return self._write(work, each_atomic=True)

    # ---- lookups the publisher and the worker need ----

    def get(self, key: PublicationKey) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(self._sql.by_key, key_params(key)).first()

    def used_posts(self, account: str, queue: str | None = None) -> set[str]:
        """Post ids published, being published or refused for content on ``account``.

        ``queue`` is accepted for readability; every target counts, because post ids are unique
        across folders and a post moved to another queue must not be published twice.
        """
        with self.engine.connect() as conn:
            return self._used(conn, account)

    @staticmethod
    def _used(conn: Connection, account: str) -> set[str]:
        c = publications.c
        query = sa.select(c.post).where(
            c.account == account,
            c.post.is_not(None),
            sa.or_(c.state.in_((PUBLISHED, *OPEN_STATES)), sa.and_(c.state == FAILED, c.reason.in_(USED_FAILURES))),
        )
        return {post for (post,) in conn.execute(query)}
