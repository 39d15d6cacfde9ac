"""Rate limits shared by the workers of one ledger (``rate_budgets``): ``bot.platforms.base.RateStore``.

Why: each adapter's ``RateGate`` learns from its own answers (rate-limit headers, 429s); with N
workers on one ledger a 429 seen by one did not stop the others, and an app-wide cap (X: 10,000
``POST /2/tweets`` a day for all the app's accounts) was counted by nobody. Here, per (platform,
bucket):

- ``blocked_until``: the latest "stop until" any worker learned; every worker's gates honour it.
- ``window_start``, ``window_count``, ``previous_count``: a sliding-window count of uses (two fixed
  windows, the previous one weighted by how much of it still overlaps the sliding window). When the
  estimate reaches the cap less ``MARGIN``, the bucket is blocked until it falls below again.

Cheap: the gate asks ``blocked_until`` before every call, answered from a process-wide snapshot of
the blocked rows read at most every ``CACHE_SECONDS`` (one query for every bucket of every platform);
a worker's uses are counted locally and written every ``BATCH`` uses or ``FLUSH_SECONDS``. The price
of batching: each worker may hold up to ``BATCH`` uses not counted yet, so caps are enforced
``MARGIN`` short (eight workers' batches).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.ledger.schema import rate_budgets, workers
from bot.ledger.workers import DEAD_AFTER

CACHE_SECONDS = 2.0
"""How stale a worker's view of other workers' blocks may be (a 429 elsewhere stops us within this)."""

BATCH = 32
"""Uses of an app-wide bucket a worker counts before writing them (two statements per ``BATCH`` posts)."""

FLUSH_SECONDS = 5.0
"""Uses are written at least this often even when fewer than ``BATCH`` (a slow trickle still counts)."""

MARGIN = 8 * BATCH
"""A cap is enforced this many uses short: room for eight workers' uncounted batches."""


def _epoch(at: datetime | None) -> float:
    return 0.0 if at is None else at.timestamp()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RateBudgets:
    """The ``rate_budgets`` table of one ledger, as the rate store every adapter's gate shares; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        wall: Callable[[], float] = time.time,
        cache_seconds: float = CACHE_SECONDS,
        batch: int = BATCH,
        flush_seconds: float = FLUSH_SECONDS,
        margin: int = MARGIN,
    ) -> None:
        self.engine = engine
        self._wall = wall
        self.cache_seconds, self.batch, self.flush_seconds, self.margin = cache_seconds, batch, flush_seconds, margin
        self._blocked: dict[tuple[str, str], float] = {}
        self._workers = 1
        self._read_at = float("-inf")
        self._reading = threading.Lock()
        self._lock = threading.Lock()
        self._unsent: dict[tuple[str, str, int, float], int] = {}
        self._writing = threading.Lock()  # one thread of this worker writes counts at a time; the others count on
        self._ensured: set[tuple[str, str]] = set()  # buckets whose row is known to exist
        self._sent_at = wall()
        self.reads = 0  # queries of the blocked rows (tests and the benchmark check the cache works)
        self.writes = 0  # transactions writing counts or blocks

    # ---- RateStore ----

    def blocked_until(self, platform: str, bucket: str) -> float:
        """Epoch seconds until which ``bucket`` is blocked by any worker; from a snapshot at most ``cache_seconds`` old."""
        self._fresh()
        return self._blocked.get((platform, bucket), 0.0)

    def workers(self) -> int:
        """Live workers of this ledger (seen within ``DEAD_AFTER``), at least 1; from the same snapshot as the blocks."""
        self._fresh()
        return self._workers

    def block(self, platform: str, bucket: str, until: float) -> None:
        """Every worker stops using ``bucket`` until ``until`` (a later block already there is kept)."""
        with self.engine.begin() as conn:
            self._ensure(conn, platform, bucket)
            c = rate_budgets.c
            later = sa.case((sa.or_(c.blocked_until.is_(None), c.blocked_until < _at(until)), _at(until)))
            conn.execute(
                sa.update(rate_budgets)
                .where(c.platform == platform, c.bucket == bucket)
                .values(blocked_until=sa.func.coalesce(later, c.blocked_until))
            )
        self._ensured.add((platform, bucket))  # committed, and rows are never deleted
        self.writes += 1
        self._note(platform, bucket, until)

    def spend(self, platform: str, bucket: str, limit: int, window: float) -> None:
        """One use of ``bucket`` (``limit`` per ``window`` seconds, all workers); written in batches."""
        key = (platform, bucket, limit, window)
        now = self._wall()
        with self._lock:
            self._unsent[key] = self._unsent.get(key, 0) + 1
            if self._unsent[key] < self.batch and now - self._sent_at < self.flush_seconds:
                return
        if not self._writing.acquire(blocking=False):
            return  # another thread of this worker is writing: these uses go with the next batch
        try:
            with self._lock:
                unsent, self._unsent, self._sent_at = self._unsent, {}, now
            self._write(unsent, now)
        finally:
            self._writing.release()

    # ---- the rest ----

    def flush(self) -> None:
        """Write the uses counted so far (a worker's clean stop)."""
        with self._writing:
            with self._lock:
                unsent, self._unsent, self._sent_at = self._unsent, {}, self._wall()
            self._write(unsent, self._sent_at)

    def used(self, platform: str, bucket: str, window: float) -> float:
        """The sliding-window estimate of ``bucket``'s uses now (as written: a worker's unsent batch is not in it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(rate_budgets).where(rate_budgets.c.platform == platform, rate_budgets.c.bucket == bucket)
            ).first()
        if row is None or row.window_start is None:
            return 0.0
        start, count, previous = _rolled(
            _epoch(row.window_start), row.window_count, row.previous_count, window, self._wall()
        )
        return previous * (1 - (self._wall() - start) / window) + count

    def _write(self, unsent: dict[tuple[str, str, int, float], int], now: float) -> None:
        c = rate_budgets.c
        for (platform, bucket, limit, window), n in unsent.items():
            with self.engine.begin() as conn:
                self._ensure(conn, platform, bucket)
                row = conn.execute(
                    sa.select(rate_budgets).where(c.platform == platform, c.bucket == bucket).with_for_update()
                ).one()
                began = now if row.window_start is None else _epoch(row.window_start)
                start, count, previous = _rolled(began, row.window_count, row.previous_count, window, now)
                count += n
                until = _full_until(start, count, previous, window, now, limit - self.margin)
                blocked = max(_epoch(row.blocked_until), until)
                conn.execute(
                    sa.update(rate_budgets)
                    .where(c.platform == platform, c.bucket == bucket)
                    .values(
                        window_start=_at(start),
                        window_count=count,
                        previous_count=previous,
                        blocked_until=_at(blocked) if blocked else None,
                    )
                )
            self._ensured.add((platform, bucket))  # committed, and rows are never deleted
            self.writes += 1
            if until:
                self._note(platform, bucket, until)

    def _ensure(self, conn: Connection, platform: str, bucket: str) -> None:
        """The bucket's row exists (inserted by whichever worker comes first; once per bucket and process)."""
        if (platform, bucket) in self._ensured:
            return
        values = dict(platform=platform, bucket=bucket, window_count=0, previous_count=0)
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(rate_budgets).values(values).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(rate_budgets).values(values).on_conflict_do_nothing())

    def _fresh(self) -> None:
        """Read the snapshot again when it is ``cache_seconds`` old; one thread reads, the others use the old one."""
        now = self._wall()
        if now - self._read_at >= self.cache_seconds and self._reading.acquire(blocking=False):
            try:
                self._refresh(now)
            finally:
                self._reading.release()

    def _refresh(self, now: float) -> None:
        c = rate_budgets.c
        seen = workers.c.seen_at >= datetime.now(UTC) - DEAD_AFTER  # beats are real time, whatever the clock
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.platform, c.bucket, c.blocked_until).where(c.blocked_until > _at(now))
            ).all()
            live = conn.execute(sa.select(sa.func.count()).select_from(workers).where(seen)).scalar_one()
        self._workers = max(1, int(live))
        self.reads += 1
        fresh = {(p, b): _epoch(u) for p, b, u in rows}
        with self._lock:
            for key, until in self._blocked.items():  # a block written while we read is not lost
                if until > now and until > fresh.get(key, 0.0):
                    fresh[key] = until
            self._blocked, self._read_at = fresh, now

    def _note(self, platform: str, bucket: str, until: float) -> None:
        with self._lock:
            blocked = dict(self._blocked)
            blocked[(platform, bucket)] = max(blocked.get((platform, bucket), 0.0), until)
            self._blocked = blocked


def _rolled(start: float, count: int, previous: int, window: float, now: float) -> tuple[float, int, int]:
    """The two fixed windows moved on to the one holding ``now``: (its start, its count, the previous one's)."""
    if now < start + window:
        return start, count, previous
    if now < start + 2 * window:
        return start + window, 0, count
    return now, 0, 0


def _full_until(start: float, count: int, previous: int, window: float, now: float, cap: int) -> float:
    """Epoch until which the sliding estimate stays at ``cap`` or over; 0 when it is under now."""
    estimate = previous * (1 - (now - start) / window) + count
    if estimate < cap:
        return 0.0
    if count >= cap:
        return start + window  # then this window is the previous one, and decays
    # previous * (1 - e / window) + count < cap  once  e > window * (1 - (cap - count) / previous)
    return start + window * (1 - (cap - count) / previous)
