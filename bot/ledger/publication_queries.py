"""Read-side questions about publications: what the worker must resume, what ``bot status`` and the heartbeat show.

A mixin of ``bot.ledger.publications.Ledger``, kept apart so the claim logic reads on its own.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from bot.core.clock import Clock
from bot.ledger import publication_schema as pubs


class PublicationQueries:
    engine: Engine
    clock: Clock

    def pending_retries(self, now: datetime | None = None) -> list[Row]:
        """Rows waiting to be retried whose time has come, oldest first."""
        now = now or self.clock.now()
        c = pubs.publications.c
        return self._rows(
            sa.select(pubs.publications)
            .where(c.state == pubs.RETRYING, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at)
        )

    def expired_claims(self, now: datetime | None = None) -> list[Row]:
        """Claims whose owner stopped renewing (a dead worker): ready to be taken over."""
        now = now or self.clock.now()
        c = pubs.publications.c
        return self._rows(
            sa.select(pubs.publications).where(c.state == pubs.CLAIMED, c.lease_until <= now).order_by(c.slot_at)
        )

    def recent(self, limit: int = 20, campaign: str | None = None) -> list[Row]:
        """The latest publications that ended published, newest first."""
        return self._latest((pubs.PUBLISHED,), limit, campaign)

    def failures(self, limit: int = 20, campaign: str | None = None) -> list[Row]:
        """The latest failed and skipped publications with their reasons, newest first."""
        return self._latest((pubs.FAILED, pubs.SKIPPED), limit, campaign)

    def in_flight(self, campaign: str | None = None) -> list[Row]:
        """Claimed or retrying publications, by slot time."""
        c = pubs.publications.c
        query = sa.select(pubs.publications).where(c.state.in_(pubs.OPEN_STATES)).order_by(c.slot_at)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        return self._rows(query)

    def counts(self, campaign: str | None = None) -> dict[str, int]:
        """Number of publications per state (every state present, zero when none)."""
        c = pubs.publications.c
        query = sa.select(c.state, sa.func.count()).group_by(c.state)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        counts = dict.fromkeys((pubs.CLAIMED, pubs.RETRYING, pubs.PUBLISHED, pubs.SKIPPED, pubs.FAILED), 0)
        with self.engine.connect() as conn:
            counts.update({state: n for state, n in conn.execute(query)})
        return counts

    def skip_reasons(self, campaign: str | None = None) -> dict[str, int]:
        """How many publications were skipped or failed, per ``state:reason``."""
        c = pubs.publications.c
        query = (
            sa.select(c.state, c.reason, sa.func.count())
            .where(c.state.in_((pubs.SKIPPED, pubs.FAILED)))
            .group_by(c.state, c.reason)
        )
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        with self.engine.connect() as conn:
            return {f"{state}:{reason}": n for state, reason, n in conn.execute(query)}

    def attempts_of(self, pub_id: int) -> list[Row]:
        """Every attempt of one publication, in order."""
        a = pubs.attempts.c
        return self._rows(sa.select(pubs.attempts).where(a.publication_id == pub_id).order_by(a.n))

    def keys_taken(self, campaign: str, start: datetime, end: datetime) -> set[tuple[datetime, str, str]]:
        """(slot_at, target, account) of every publication in [start, end): lets status drop what is done."""
        c = pubs.publications.c
        query = sa.select(c.slot_at, c.target, c.account).where(
            c.campaign == campaign, c.slot_at >= start, c.slot_at < end
        )
        with self.engine.connect() as conn:
            return {tuple(row) for row in conn.execute(query)}

    def _latest(self, states: tuple[str, ...], limit: int, campaign: str | None) -> list[Row]:
        c = pubs.publications.c
        query = (
            sa.select(pubs.publications).where(c.state.in_(states)).order_by(c.updated.desc(), c.id.desc()).limit(limit)
        )
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        return self._rows(query)

    def _rows(self, query: sa.Select) -> list[Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))
