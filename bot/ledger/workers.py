"""Which workers are alive: heartbeats in the ledger, and the release of a dead worker's claims.

Every worker beats (``beat``) every two wall seconds, from a thread of its own that does nothing else,
over a connection of its own (PostgreSQL): a worker busy with 256 long uploads, its pool's connections
all taken, still beats on time. One not seen for ``DEAD_AFTER`` (three missed beats) is dead
(killed, its host gone): its claimed publications get a lease that ends now and its tracker lease
ends now, and the rows of a slot it had reserved (``bot.ledger.shares``) are free again, so a live worker takes them over at its next look (within seconds), instead of waiting
for the lease (ten minutes for a publication). Taking over is the lease protocol's ordinary path:
the new owner reconciles with the platform before it publishes, so a worker that was only slow,
not dead, cannot make a post go out twice. A worker that stops cleanly releases its own (``leave``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.ledger.db import side_engine
from bot.ledger.schema import CLAIMED, leases, publications, workers
from bot.ledger.shares import PENDING

DEAD_AFTER = timedelta(seconds=7)
"""A worker unseen this long is dead: three beats missed (``bot.worker.runtime.BEAT_EVERY``, 2 s) and a second's slack.

Hosts' clocks must agree within about a second (NTP); a worker only slow, not dead, is safe anyway: its
publications' new owners reconcile with the platform first, and its own next claim or record is refused.
"""


class Workers:
    """The ``workers`` table of one ledger."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Beats do not queue for the ledger's pool behind the publishing threads (PostgreSQL: 30 connections
        # for 256 threads, waited for up to 10 minutes): one connection of their own. SQLite: one worker.
        self._beats = side_engine(engine, 1)

    def close(self) -> None:
        """Close the beats' own connection."""
        if self._beats is not self.engine:
            self._beats.dispose()

    def beat(self, owner: str, wall: datetime) -> None:
        """``owner`` is alive at ``wall`` (real time)."""
        with self._beats.begin() as conn:
            seen = conn.execute(sa.update(workers).where(workers.c.owner == owner).values(seen_at=wall)).rowcount
            if not seen:
                conn.execute(sa.insert(workers).values(owner=owner, started_at=wall, seen_at=wall))

    def dead(self, wall: datetime, *, after: timedelta = DEAD_AFTER) -> list[str]:
        """Owners not seen since ``wall - after``."""
        with self._beats.connect() as conn:
            rows = conn.execute(sa.select(workers.c.owner).where(workers.c.seen_at < wall - after))
            return [owner for (owner,) in rows]

    def release(self, owners: Sequence[str], now: datetime) -> dict[str, int]:
        """End the leases of ``owners`` at ``now`` (the releasing worker's clock) and forget them; counts released."""
        if not owners:
            return {"claims": 0, "tracker_leases": 0}
        owned = list(owners)
        with self.engine.begin() as conn:
            claims = conn.execute(
                sa.update(publications)
                .where(publications.c.state == CLAIMED, publications.c.owner.in_(owned))
                .values(lease_until=now)
            ).rowcount
            # Rows of a slot it had reserved but not claimed yet (bot.ledger.shares): free for any worker now.
            claims += conn.execute(
                sa.update(publications)
                .where(publications.c.state == PENDING, publications.c.owner.in_(owned))
                .values(owner=None, lease_until=now)
            ).rowcount
            # A tracker lease is free once it ended before ``now`` (strictly): end it a second ago.
            ended = now - timedelta(seconds=1)
            tracker = conn.execute(sa.update(leases).where(leases.c.owner.in_(owned)).values(expires_at=ended)).rowcount
            conn.execute(sa.delete(workers).where(workers.c.owner.in_(owned)))
        return {"claims": claims, "tracker_leases": tracker}

    def leave(self, owner: str, now: datetime) -> dict[str, int]:
        """A clean stop: what ``owner`` still holds is released now, and it is no longer listed."""
        return self.release([owner], now)
