"""A slot's publications divided between workers on PostgreSQL: offered as ``pending`` rows, taken in batches.

Why: when several workers share a PostgreSQL ledger, each used to try every account of a slot and
let the claims decide; with N workers N - 1 of every N claims failed, and those failed claims were
most of the workers' CPU (3.1 ms per publication with one worker, 5.7 ms with four). Now the first
worker to fire a slot writes one ``pending`` row per account (``offer``, every worker does it, the
others insert nothing), and a worker with free threads takes a batch of them (``take``: ``SELECT ...
FOR UPDATE SKIP LOCKED``, so two workers never wait for, nor get, the same rows). A taken row is
still ``pending``, reserved for its taker (``owner``) until ``lease_until``; its taker then claims it
through the ordinary claim (``Ledger.claim_and_begin``), which alone decides who publishes: the
division saves work, it is not what makes a publication happen once.

A worker that dies with rows reserved: its heartbeats stop, ``Workers.release`` ends its
reservations (``owner`` NULL, lease ended), and ``free`` lists them for the live workers' next look
(within seconds). On SQLite (one worker) nothing is offered: each account is claimed as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from bot.ledger.db import side_engine
from bot.ledger.schema import publications

PENDING = "pending"
"""Offered to whichever worker takes it; not claimed yet, no attempt made."""

BATCH = 32
"""A worker's feeder takes rows once its pool has room for a quarter of this many (a round trip is worth it then),
and takes as many as the pool can hold (bot.worker.jobs.Fanout)."""


class Shares:
    """Offer a slot's publications as ``pending`` rows and take them in batches (PostgreSQL only)."""

    def __init__(self, engine: Engine) -> None:
        self.enabled = engine.dialect.name == "postgresql"
        # The feeding thread does not queue for the ledger's pool behind the publishing threads it feeds
        # (30 connections for 256 threads: it waited behind a hundred of them, and the pool ran dry):
        # connections of its own, one for the feeder and one for the takeover thread (two more when several
        # slots are fed at once).
        self.engine = side_engine(engine, 2)
        self._own = self.engine is not engine
        c = publications.c
        # Only the dialect in use is imported: PostgreSQL's weighs about 2.4 MB of an idle SQLite worker
        # (bench/footprint.py). SQLite's INSERT has the same ON CONFLICT DO NOTHING; nothing offers rows there.
        if self.enabled:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            offer: Any = pg_insert(publications)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            offer = sqlite_insert(publications)
        self._offer = offer.on_conflict_do_nothing(index_elements=[c.campaign, c.slot_at, c.target, c.account])
        free = (
            sa.select(c.id)
            .where(
                c.campaign == sa.bindparam("k_campaign"),
                c.slot_at == sa.bindparam("k_slot_at", type_=c.slot_at.type),
                c.target == sa.bindparam("k_target"),
                c.state == PENDING,
                c.lease_until <= sa.bindparam("k_now", type_=c.lease_until.type),
            )
            .order_by(c.id)
            .limit(sa.bindparam("k_limit", type_=sa.Integer))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        self._take = (
            sa.update(publications)
            .where(c.id.in_(free))
            .values(
                owner=sa.bindparam("v_owner"),
                lease_until=sa.bindparam("v_until", type_=c.lease_until.type),
                updated=sa.bindparam("k_now", type_=c.updated.type),
            )
            .returning(c.account)
        )

    def close(self) -> None:
        """Close the connections of its own."""
        if self._own:
            self.engine.dispose()

    def offer(
        self,
        campaign: str,
        slot_at: datetime,
        target: str,
        post: str | None,
        schedule: str | None,
        slot: int | None,
        platforms: dict[str, str | None],
        now: datetime,
    ) -> int:
        """One ``pending`` row per account of ``platforms`` (account -> platform) not in the ledger yet; rows written.

        Offered rows are free at once (their lease ended at ``now``): any worker may take them.
        """
        if not platforms:
            return 0
        rows = [
            dict(
                campaign=campaign,
                slot_at=slot_at,
                target=target,
                account=account,
                post=post,
                schedule=schedule,
                slot=slot,
                manual=False,
                platform=platform,
                state=PENDING,
                owner=None,
                lease_until=now,
                attempts=0,
                created=now,
                updated=now,
            )
            for account, platform in platforms.items()
        ]
        with self.engine.begin() as conn:
            return int(conn.execute(self._offer, rows).rowcount or 0)

    def take(
        self, campaign: str, slot_at: datetime, target: str, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[str]:
        """Reserve up to ``limit`` free ``pending`` rows of the slot for ``owner`` until ``until``; their accounts."""
        if limit <= 0:
            return []
        params = dict(
            k_campaign=campaign,
            k_slot_at=slot_at,
            k_target=target,
            k_now=now,
            k_limit=limit,
            v_owner=owner,
            v_until=until,
        )
        with self.engine.begin() as conn:
            return [account for (account,) in conn.execute(self._take, params)]

    def free(self, now: datetime) -> list[Row[Any]]:
        """One row per slot with free ``pending`` rows due by ``now`` (a dead or stopped worker's), oldest first.

        Each holds what ``bot.publishing.results.slot_ref_of`` reads (``account``: one of them).
        """
        c = publications.c
        slot = (c.campaign, c.slot_at, c.target, c.schedule, c.slot, c.manual)
        query = (
            sa.select(*slot, sa.func.min(c.account).label("account"))
            .where(c.state == PENDING, c.lease_until <= now, c.slot_at <= now)
            .group_by(*slot)
            .order_by(c.slot_at)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def counts(self, owners: Sequence[str] | None = None) -> int:
        """``pending`` rows (reserved by ``owners`` when given)."""
        c = publications.c
        query = sa.select(sa.func.count()).where(c.state == PENDING)
        if owners is not None:
            query = query.where(c.owner.in_(list(owners)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
