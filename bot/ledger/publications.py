"""The publication ledger: one row per (campaign, slot, target, account), claimed before any platform call.

A row is claimed atomically (a new INSERT, or an UPDATE that takes over a lease that ran out) and
ends published, skipped or failed; every call to a platform is an ``attempts`` row. Queue slots
choose their post inside the claim transaction, serialised per account (PostgreSQL advisory lock,
SQLite ``BEGIN IMMEDIATE``), so two workers never pick the same queue post for two slots.

Read top to bottom: the key, the statements, claims, attempts and outcomes, then the read side
(what the worker resumes, what ``bot status`` and the heartbeat show). The tables and states
are in ``bot.ledger.schema``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import bindparam as bp
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from bot.core.clock import Clock, SystemClock
from bot.ledger.db import FileGuard, LedgerFull, is_disk_full, sqlite_file
from bot.ledger.group_commit import GroupCommit
from bot.ledger.schema import (
    CLAIMED,
    FAILED,
    NEEDS_ATTENTION,
    OPEN_STATES,
    PUBLISHED,
    RETRYING,
    SKIPPED,
    STATES,
    USED_FAILURES,
    UTCDateTime,
    attempts,
    publications,
)
from bot.ledger.shares import PENDING
from bot.observability.redaction import redact

T = TypeVar("T")

REMEMBERED = 10_000  # attempts' start times kept in memory (a few hundred are open at once)

Chooser = Callable[[set[str]], str | None]
"""Given the post ids already used on the account, the queue post to publish (None: queue empty)."""


@dataclass(frozen=True)
class PublicationKey:
    """What makes a publication unique. The post's text is not part of it: editing a post never republishes."""

    campaign: str
    slot_at: datetime
    target: str  # "post:<id>" or "queue:<name>"
    account: str

    def __post_init__(self) -> None:
        if self.slot_at.tzinfo is None:
            raise ValueError(f"slot_at must be timezone-aware, got: {self.slot_at!r}")
        # Sub-second parts would make equal slots differ between databases.
        object.__setattr__(self, "slot_at", self.slot_at.astimezone(UTC).replace(microsecond=0))

    @property
    def slot_iso(self) -> str:
        return self.slot_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def token(self) -> str:
        """``pub1-`` + 32 hex digits of SHA-256 over the four key fields (see bot/publishing.py)."""
        raw = "\x1f".join((self.campaign, self.slot_iso, self.target, self.account))
        return "pub1-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def params(self) -> dict[str, Any]:
        """Its bound values for the statements that find a row by key."""
        return {
            "k_campaign": self.campaign,
            "k_slot_at": self.slot_at,
            "k_target": self.target,
            "k_account": self.account,
        }


# ---- statements ----
#
# The hot statements are built once per Ledger with bound parameters and run with
# ``Connection.execute``. Built once, a statement keeps its memoized cache key, so SQLAlchemy's
# compiled cache (on by default) finds its compiled form without building or hashing anything:
# building ``sa.update(...).where(...).values(...)`` at each call cost about 5 ms of CPU per
# publication (cProfile, 500 publications on SQLite). Time parameters carry the ledger's UTC type
# explicitly: an untyped bind would hand an aware datetime to the driver as is.

UTC_TIME = UTCDateTime()
ONE = sa.literal_column("1", sa.Integer)

CLAIM_RETURNS = ("id", "slot_at", "post", "attempts")
"""What ``claim_and_begin`` hands back: what its caller needs, each returned column costing a result conversion."""


def _t(name: str) -> sa.BindParameter[datetime]:
    return bp(name, type_=UTC_TIME)


def _is_open(state: ColumnElement[str]) -> ColumnElement[bool]:
    """``state IN ('claimed', 'retrying')`` with the states written in the SQL.

    Why: an IN over bound values is an "expanding" parameter that SQLAlchemy renders again at
    every execution (about 0.1 ms per statement on SQLite).
    """
    return state.in_([sa.literal_column(f"'{name}'") for name in OPEN_STATES])


def _claimable(c: Any, now: ColumnElement[datetime], owner: ColumnElement[str]) -> ColumnElement[bool]:
    """A row a claim may take: open or ``pending`` with its lease ended, or ``pending`` reserved for ``owner``.

    ``pending`` rows are a slot's publications offered to the workers of a PostgreSQL ledger and
    reserved in batches (``bot.ledger.shares``); the claim still decides, as for any row.
    """
    pending = c.state == sa.literal_column(f"'{PENDING}'")
    return sa.or_(sa.and_(sa.or_(_is_open(c.state), pending), c.lease_until <= now), sa.and_(pending, c.owner == owner))


def _may_take(row: Row[Any], owner: str, now: datetime) -> bool:
    """``_claimable`` of a row already read."""
    if row.state == PENDING and row.owner == owner:
        return True
    return row.state in (*OPEN_STATES, PENDING) and row.lease_until is not None and row.lease_until <= now


def _upsert_insert(pg: bool) -> Any:
    """The dialect's INSERT with ON CONFLICT; only the dialect in use is imported (the other weighs ~2 MB)."""
    if pg:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class _Statements:
    """The Core statements of claims, attempts and outcomes, for one dialect."""

    def __init__(self, pg: bool) -> None:
        c, a = publications.c, attempts.c
        self.pg = pg
        key = (
            c.campaign == bp("k_campaign", type_=sa.String),
            c.slot_at == _t("k_slot_at"),
            c.target == bp("k_target", type_=sa.String),
            c.account == bp("k_account", type_=sa.String),
        )
        self.by_key = sa.select(publications).where(*key)
        insert = _upsert_insert(pg)
        self.insert_claim = insert(publications).on_conflict_do_nothing().returning(*publications.c)
        self.claim_begin = self._claim_begin(insert)
        self.take_over = (
            sa.update(publications)
            .where(*key, _claimable(c, _t("k_now"), bp("v_owner", type_=sa.String)))
            .values(
                state=bp("v_state", type_=sa.String),
                owner=bp("v_owner", type_=sa.String),
                lease_until=_t("v_until"),
                next_attempt_at=None,
                updated=_t("v_updated"),
            )
            .returning(*publications.c)
        )
        self.count_attempt = (
            sa.update(publications)
            .where(c.id == bp("k_id", type_=sa.Integer))
            .values(attempts=c.attempts + ONE, updated=_t("v_updated"))
            .returning(c.attempts)
        )
        self.insert_attempt = (
            sa.insert(attempts)
            .inline()
            .values(
                publication_id=bp("k_id", type_=sa.Integer),
                n=bp("k_n", type_=sa.Integer),
                owner=bp("v_owner", type_=sa.String),
                started=_t("v_started"),
            )
        )
        uncertain = (
            a.publication_id == bp("k_id", type_=sa.Integer),
            sa.or_(a.outcome.is_(None), a.outcome == sa.literal_column("'uncertain'")),
        )
        self.uncertain_attempts = sa.select(sa.func.count()).where(*uncertain)
        self.uncertain_before = sa.select(sa.func.count()).where(*uncertain, a.n < bp("k_n", type_=sa.Integer))
        self.attempt_started = sa.select(a.started).where(
            a.publication_id == bp("k_id", type_=sa.Integer), a.n == bp("k_n", type_=sa.Integer)
        )
        self.end_attempt = (
            sa.update(attempts)
            .where(a.publication_id == bp("k_id", type_=sa.Integer), a.n == bp("k_n", type_=sa.Integer))
            .values(
                ended=_t("v_ended"),
                outcome=bp("v_outcome", type_=sa.String),
                error=bp("v_error", type_=sa.Text),
                duration_ms=bp("v_duration", type_=sa.Integer),
            )
        )
        self._finish: dict[tuple[Any, ...], sa.Executable] = {}

    def _claim_begin(self, insert: Any) -> sa.Executable:
        """Claim a key (a new row, or a take-over of an open row whose lease ran out) counting one more attempt.

        One upsert instead of a look-up, an insert and an update: a fresh row is inserted with
        ``attempts = 1``; a conflicting row is taken over only where ``take_over`` would have,
        and nothing comes back otherwise (finished, or another owner's live lease). The row
        returned is the row as claimed, ``attempts`` being those before this one. On PostgreSQL the
        attempt's own row is inserted by the same statement (one round trip); SQLite, in process,
        inserts it next.
        """
        c = publications.c
        # Each bound value once (``v_now`` is the creation, update and lease-check time): every bound
        # value costs type processing at every execution.
        values: dict[str, Any] = {
            name: bp("i_" + name, type_=c[name].type)
            for name in ("campaign", "slot_at", "target", "account", "post", "schedule", "slot", "manual", "platform")
        }
        values.update(
            state=bp("v_state", type_=sa.String),
            owner=bp("v_owner", type_=sa.String),
            lease_until=_t("v_until"),
            attempts=ONE,
            created=_t("v_now"),
            updated=_t("v_now"),
        )
        returned = [(c.attempts - ONE).label("attempts") if name == "attempts" else c[name] for name in CLAIM_RETURNS]
        upsert: Any = (
            insert(publications)
            .values(values)
            .on_conflict_do_update(
                index_elements=[c.campaign, c.slot_at, c.target, c.account],
                set_=dict(
                    state=values["state"],
                    owner=values["owner"],
                    lease_until=values["lease_until"],
                    next_attempt_at=sa.null(),
                    updated=values["updated"],
                    attempts=c.attempts + ONE,
                ),
                where=_claimable(c, values["updated"], values["owner"]),
            )
            .returning(*returned)
        )
        if not self.pg:
            stmt: sa.Executable = upsert
            return stmt
        claimed = upsert.cte("claimed")
        began = (
            sa.insert(attempts)
            .from_select(
                ["publication_id", "n", "owner", "started"],
                sa.select(claimed.c.id, claimed.c.attempts + ONE, values["owner"], values["updated"]),
            )
            .cte("began")
        )
        return sa.select(claimed).add_cte(began)

    def finish(self, columns: tuple[str, ...], only_open: bool, by_owner: bool, *, attempt: bool) -> sa.Executable:
        """UPDATE publications SET <columns> WHERE id = :k_id [AND open] [AND owner = :k_owner].

        ``attempt`` (PostgreSQL only): the same statement ends attempt ``:k_n`` as ``end_attempt``
        does, and returns how many publication rows it updated (one round trip instead of two).
        """
        shape = (columns, only_open, by_owner, attempt)
        stmt = self._finish.get(shape)
        if stmt is not None:
            return stmt
        c = publications.c
        where = [c.id == bp("k_id", type_=sa.Integer)]
        if only_open:
            where.append(_is_open(c.state))
        if by_owner:
            where.append(c.owner == bp("k_owner", type_=sa.String))
        update = (
            publications.update()
            .where(*where)
            .values({name: bp(f"v_{name}", type_=publications.c[name].type) for name in columns})
        )
        if attempt:
            if not self.pg:
                raise ValueError("ending the attempt in the same statement needs PostgreSQL")
            finished = update.returning(c.id).cte("finished")
            stmt = sa.select(sa.func.count()).select_from(finished).add_cte(self.end_attempt.cte("ended"))
        else:
            stmt = update
        self._finish[shape] = stmt  # a handful of shapes: one per outcome and owner check
        return stmt


# ---- the ledger ----


class Ledger:
    """Claims and outcomes of publications; every time comes from the injected clock."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._pg = engine.dialect.name == "postgresql"
        # Our threads' writes are queued and committed in batches (see group_commit): on SQLite,
        # which lets one writer in at a time, and on PostgreSQL, where it halves the CPU a write costs.
        self._group = GroupCommit(engine)
        self._sql = _Statements(self._pg)
        # When each attempt we began started, so that ending it needs no look-up; a miss (an attempt
        # begun by another process, or forgotten below) reads the attempt's row instead.
        self._started: dict[tuple[int, int], datetime] = {}
        file = sqlite_file(engine.url)
        # Checked before every claim: no publication starts once the SQLite file is deleted or replaced.
        self.guard = FileGuard(file) if file is not None and file.exists() else None
        self.unrecorded: Unrecorded | None = None  # set by the worker: what a full disk kept out of the ledger

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a write transaction, shared with other threads' (on SQLite, with the write lock taken up front)."""
        try:
            return self._group.run(work)
        except sa.exc.OperationalError as exc:
            if is_disk_full(exc):
                raise LedgerFull(f"the ledger is full: {str(exc.orig).strip()}") from exc
            raise

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
    ) -> Row[Any] | None:
        """Claim ``key`` for ``owner``: the row, or None when another owner holds it or it is finished.

        For a queue slot pass ``choose``: it runs inside the claim, under a per-account lock, with
        the posts already used on the account, so the post is chosen exactly once per slot.
        """
        if self.guard is not None:
            self.guard.check()
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
    ) -> tuple[Row[Any], int, bool] | None:
        """``claim`` of a fixed post and ``begin_attempt`` at once: (row as claimed, attempt, reconcile).

        The row holds ``CLAIM_RETURNS`` only. For a caller that checked everything an attempt
        needs before claiming: one write before the platform call instead of two (the punctuality
        path). On PostgreSQL the claim (an upsert) and its attempt's row are one statement; on
        SQLite, the upsert and the attempt's insert in one transaction. A take-over then asks
        whether an earlier attempt calls for a reconcile.
        """
        if self.guard is not None:
            self.guard.check()
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

        def work(conn: Connection) -> tuple[Row[Any], int, bool] | None:
            row = conn.execute(sql.claim_begin, params).first()
            if row is None:
                return None
            n: int = row.attempts + 1
            if not self._pg:  # PostgreSQL's claim_begin inserted the attempt itself
                conn.execute(sql.insert_attempt, dict(k_id=row.id, k_n=n, v_owner=owner, v_started=now))
            reconcile = row.attempts > 0 and conn.execute(sql.uncertain_before, {"k_id": row.id, "k_n": n}).scalar()
            return row, n, bool(reconcile)

        claimed = self._write(work)
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
        extra: dict[str, Any],
    ) -> Row[Any] | None:
        sql = self._sql
        if choose is not None and self._pg:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("pub:" + key.account))))
        existing = conn.execute(sql.by_key, key.params()).first()
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
        elif not _may_take(existing, owner, now):
            # Finished, or another worker's live lease: the take-over's UPDATE could match nothing.
            # Saying so here spares it, for every account another worker already has.
            return None
        return self._take_over(conn, key, owner, now, until, choose)

    def _take_over(
        self, conn: Connection, key: PublicationKey, owner: str, now: datetime, until: datetime, choose: Chooser | None
    ) -> Row[Any] | None:
        c = publications.c
        row = conn.execute(
            self._sql.take_over,
            dict(key.params(), k_now=now, v_state=CLAIMED, v_owner=owner, v_until=until, v_updated=now),
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
        return self._write(lambda conn: conn.execute(renew).rowcount == 1)

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
        reconcile = prior > 0 and conn.execute(sql.uncertain_attempts, {"k_id": pub_id}).scalar_one() > 0
        n: int = conn.execute(sql.count_attempt, {"k_id": pub_id, "v_updated": now}).scalar_one()
        conn.execute(sql.insert_attempt, dict(k_id=pub_id, k_n=n, v_owner=owner, v_started=now))
        return n, reconcile

    def _remember(self, pub_id: int, n: int, started: datetime) -> None:
        if len(self._started) >= REMEMBERED:
            # Attempts never ended here (the worker lost them) would pile up; a miss only costs a read.
            self._started.clear()
        self._started[(pub_id, n)] = started

    def needs_reconcile(self, pub_id: int) -> bool:
        """True when an earlier attempt may have reached the platform (uncertain, or its worker died)."""
        with self.engine.connect() as conn:
            uncertain: int = conn.execute(self._sql.uncertain_attempts, {"k_id": pub_id}).scalar_one()
            return uncertain > 0

    def record_published(
        self, pub_id: int, remote_id: str, url: str, *, attempt: int | None = None, post: str | None = None
    ) -> None:
        """The platform holds the post: recorded whoever owns the row, because it is the truth."""
        values: dict[str, Any] = dict(
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
        error = None if error is None else redact(error)  # a server may echo a token: never stored, never shown
        return self._finish(
            pub_id,
            dict(state=FAILED, reason=reason, last_error=error, owner=None, lease_until=None, next_attempt_at=None),
            attempt,
            attempt_outcome,
            error,
            owner=owner,
        )

    def record_needs_attention(
        self, pub_id: int, error: str, *, attempt: int | None = None, owner: str | None = None
    ) -> bool:
        """Nobody can tell whether the post went out: the row leaves the open states, so no worker sends it
        again, and waits for a person (``resolve``)."""
        error = redact(error)
        return self._finish(
            pub_id,
            dict(
                state=NEEDS_ATTENTION,
                reason="outcome_unknown",
                last_error=error,
                owner=None,
                lease_until=None,
                next_attempt_at=None,
            ),
            attempt,
            "uncertain",
            error,
            owner=owner,
        )

    def resolve(
        self, pub_id: int, *, published: bool, by: str, url: str | None = None, remote_id: str | None = None
    ) -> Row[Any] | None:
        """A person looked: the post is live (``published``, with its address when known) or it is not.

        Only a publication waiting for attention (or an old ``gave_up_uncertain`` failure) can be resolved;
        returns the row as it is now, or None when there is nothing to resolve with that id.
        """
        c = publications.c
        now = self.clock.now()
        values: dict[str, Any] = dict(resolved_by=by, resolved_at=now, updated=now)
        if published:
            values.update(state=PUBLISHED, reason="confirmed_by_hand", url=url, remote_id=remote_id)
        else:
            # Not a used failure: a queue may choose the post again, and ``bot publish --again`` sends it now.
            values.update(state=FAILED, reason="not_published")
        waiting = sa.or_(c.state == NEEDS_ATTENTION, sa.and_(c.state == FAILED, c.reason == "gave_up_uncertain"))
        stmt = publications.update().where(c.id == pub_id, waiting).values(values)

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).rowcount)

        if self._write(work) != 1:
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.select(publications).where(c.id == pub_id)).first()

    # ---- notes: an adapter's durable scratchpad for one publication ----

    def notes_of(self, pub_id: int) -> dict[str, str]:
        c = publications.c
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(c.notes).where(c.id == pub_id)).scalar_one_or_none()
        return dict(json.loads(raw)) if raw else {}

    def put_note(self, pub_id: int, key: str, value: str) -> None:
        """Store one note; returns once it is committed (adapters write it before the call it protects)."""
        c = publications.c
        lock = sa.select(c.notes).where(c.id == pub_id)
        if self._pg:
            lock = lock.with_for_update()

        def work(conn: Connection) -> None:
            raw = conn.execute(lock).scalar_one_or_none()
            notes = dict(json.loads(raw)) if raw else {}
            notes[key] = value
            conn.execute(publications.update().where(c.id == pub_id).values(notes=json.dumps(notes, sort_keys=True)))

        self._write(work)

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
        error = redact(error)
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
        values: dict[str, Any],
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
                return conn.execute(stmt, params).rowcount == 1
            began = started
            if began is None:
                began = conn.execute(sql.attempt_started, params).scalar_one_or_none()
            params["v_duration"] = None if began is None else round((now - began).total_seconds() * 1000)
            if one_statement:
                return conn.execute(stmt, params).scalar() == 1
            mine = conn.execute(stmt, params).rowcount == 1
            conn.execute(sql.end_attempt, params)
            return mine

        return self._write(work)

    # ---- lookups the publisher and the worker need ----

    def get(self, key: PublicationKey) -> Row[Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(self._sql.by_key, key.params()).first()

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
            sa.or_(
                c.state.in_((PUBLISHED, NEEDS_ATTENTION, *OPEN_STATES)),
                sa.and_(c.state == FAILED, c.reason.in_(USED_FAILURES)),
            ),
        )
        return {post for (post,) in conn.execute(query) if post is not None}

    def pending_retries(self, now: datetime | None = None) -> list[Row[Any]]:
        """Rows waiting to be retried whose time has come, oldest first."""
        now = now or self.clock.now()
        c = publications.c
        return self._rows(
            sa.select(publications).where(c.state == RETRYING, c.next_attempt_at <= now).order_by(c.next_attempt_at)
        )

    def expired_claims(self, now: datetime | None = None) -> list[Row[Any]]:
        """Claims whose owner stopped renewing (a dead worker): ready to be taken over."""
        now = now or self.clock.now()
        c = publications.c
        return self._rows(sa.select(publications).where(c.state == CLAIMED, c.lease_until <= now).order_by(c.slot_at))

    # ---- what `bot status` and the heartbeat show ----

    def recent(self, limit: int = 20, campaign: str | None = None) -> list[Row[Any]]:
        """The latest publications that ended published, newest first."""
        return self._latest((PUBLISHED,), limit, campaign)

    def failures(self, limit: int = 20, campaign: str | None = None) -> list[Row[Any]]:
        """The latest failed and skipped publications with their reasons, newest first."""
        return self._latest((FAILED, SKIPPED), limit, campaign)

    def needing_attention(self, campaign: str | None = None) -> list[Row[Any]]:
        """Publications nobody can tell went out, by slot time: shown until a person resolves them."""
        c = publications.c
        query = sa.select(publications).where(c.state == NEEDS_ATTENTION).order_by(c.slot_at, c.id)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        return self._rows(query)

    def in_flight(self, campaign: str | None = None) -> list[Row[Any]]:
        """Claimed or retrying publications, by slot time."""
        c = publications.c
        query = sa.select(publications).where(c.state.in_(OPEN_STATES)).order_by(c.slot_at)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        return self._rows(query)

    def counts(self, campaign: str | None = None) -> dict[str, int]:
        """Number of publications per state (every state present, zero when none)."""
        c = publications.c
        query = sa.select(c.state, sa.func.count()).group_by(c.state)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        counts = dict.fromkeys(STATES, 0)
        with self.engine.connect() as conn:
            counts.update({state: n for state, n in conn.execute(query)})
        return counts

    def skip_reasons(self, campaign: str | None = None) -> dict[str, int]:
        """How many publications were skipped or failed, per ``state:reason``."""
        c = publications.c
        query = (
            sa.select(c.state, c.reason, sa.func.count())
            .where(c.state.in_((SKIPPED, FAILED)))
            .group_by(c.state, c.reason)
        )
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        with self.engine.connect() as conn:
            return {f"{state}:{reason}": n for state, reason, n in conn.execute(query)}

    def attempts_of(self, pub_id: int) -> list[Row[Any]]:
        """Every attempt of one publication, in order."""
        a = attempts.c
        return self._rows(sa.select(attempts).where(a.publication_id == pub_id).order_by(a.n))

    def keys_taken(self, campaign: str, start: datetime, end: datetime) -> set[tuple[datetime, str, str]]:
        """(slot_at, target, account) of every publication in [start, end): lets status drop what is done."""
        c = publications.c
        query = sa.select(c.slot_at, c.target, c.account).where(
            c.campaign == campaign, c.slot_at >= start, c.slot_at < end
        )
        with self.engine.connect() as conn:
            return {(slot_at, target, account) for slot_at, target, account in conn.execute(query)}

    def _latest(self, states: tuple[str, ...], limit: int, campaign: str | None) -> list[Row[Any]]:
        c = publications.c
        query = sa.select(publications).where(c.state.in_(states)).order_by(c.updated.desc(), c.id.desc()).limit(limit)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        return self._rows(query)

    def _rows(self, query: sa.Select[Any]) -> list[Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))


class LedgerNotes:
    """``Outgoing.notes`` of one publication row: read once on first use, every ``put`` committed at once.

    ``fresh``: the row's first attempt, so there is nothing to read (a fan-out of 500 accounts pays no query).
    """

    def __init__(self, ledger: Ledger, pub_id: int, *, fresh: bool) -> None:
        self._ledger = ledger
        self._pub_id = pub_id
        self._values: dict[str, str] | None = {} if fresh else None
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            if self._values is None:
                self._values = self._ledger.notes_of(self._pub_id)
            return self._values.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._ledger.put_note(self._pub_id, key, value)
            if self._values is not None:
                self._values[key] = value


UNRECORDED = "ledger-unrecorded.json"
"""In the campaign's state/: publications a full ledger could not take, for ``bot status`` (``Unrecorded``)."""


class Unrecorded:
    """Publications a full disk kept out of the ledger, in a small file ``bot status`` reads.

    The file is allocated once, at its full size, when the worker starts, and then overwritten in
    place: writing it needs no new blocks, so it works on the full disk whose lack of space it reports.
    """

    SIZE = 64 * 1024

    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: dict[tuple[str, str, str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, self.SIZE)
        except OSError:
            os.close(fd)
            return
        self._fd = fd
        self._write()

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, key: PublicationKey, error: str) -> bool:
        """Note ``key`` as failed for lack of space; True when it is new."""
        ident = (key.campaign, key.slot_iso, key.target, key.account)
        with self._lock:
            if ident in self._items:
                return False
            self._items[ident] = dict(
                campaign=key.campaign, slot=key.slot_iso, target=key.target, account=key.account, error=redact(error)
            )
            self._write()
            return True

    def discard(self, key: PublicationKey) -> None:
        """``key`` is in the ledger now (claimed or recorded)."""
        ident = (key.campaign, key.slot_iso, key.target, key.account)
        with self._lock:
            if self._items.pop(ident, None) is not None:
                self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        items = list(self._items.values())
        while True:
            data = json.dumps({"unrecorded": items, "more": len(self._items) - len(items)}).encode()
            if len(data) <= self.SIZE or not items:
                break
            items = items[: len(items) // 2]
        try:
            os.pwrite(self._fd, data.ljust(self.SIZE), 0)
        except OSError:
            pass  # status then shows the last list written; the worker's log has every failure

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_unrecorded(path: Path) -> tuple[list[dict[str, str]], int]:
    """What ``Unrecorded`` last wrote at ``path``: (publications, how many more did not fit); empty when none."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        data = json.loads(text) if text else {}
    except (OSError, ValueError):
        return [], 0
    return list(data.get("unrecorded", [])), int(data.get("more", 0))
