"""Group commit: write transactions from many threads, run together in one transaction.

SQLite lets one writer in at a time. With a lock per transaction, a fan-out to 500 accounts
made 1,000 transactions (a claim and an outcome each) wait in line, and each one's holder
competed for the GIL with the hundreds of threads waiting behind it: publications spent
seconds queueing for the ledger. Here a thread queues its work; the thread whose turn it is
(the leader) takes everything queued, runs it in one transaction and commits once, then hands
the turn to the next waiting thread. One publication alone still gets a transaction of its own
at once (punctuality); many at once share commits.

PostgreSQL takes the same path, for CPU. Each write in a transaction (or autocommit statement)
of its own cost a checkout from the connection pool, contended by a worker's 256 threads, and a
commit in the server: with group commit a worker spends 4.2 to 4.9 ms of CPU a publication
instead of 7.9 to 9.0, and one worker publishes 169 to 196 posts a second instead of 108 to 126
(bench/scaleout.py, bench/README). A batch holds the row locks of its works until its commit (a
few milliseconds); two workers' batches that lock the same rows in opposite orders are a deadlock
PostgreSQL ends by failing one batch, whose works are then run again one by one, as any failing
batch's are.

Every piece of work sees the effects of the ones before it in the batch, as if it had run in a
transaction of its own just after them. A work that raises is not allowed to undo the others:
the batch is rolled back and each work is run again alone, so only the failing one fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")
Work = Callable[[Connection], T]

MOST = 64  # works in one transaction: a bigger batch makes the first of them wait longer for its commit


class _Queued(Generic[T]):
    __slots__ = ("work", "turn", "done", "result", "error", "then")

    def __init__(self, work: Work[T]) -> None:
        self.work = work
        self.turn = threading.Event()  # set when the work is done, or when this thread is to lead
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.then: _Queued[Any] | None = None  # the next thread of the batch to wake, once this one is awake

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Runs ``work(conn)`` in a write transaction shared with the works other threads queued meanwhile."""

    def __init__(self, engine: Engine, *, most: int = MOST) -> None:
        self.engine = engine
        self.most = most
        self._sqlite = engine.dialect.name == "sqlite"
        self._mutex = threading.Lock()
        self._queue: list[_Queued[Any]] = []
        self._leading = False
        self.commits = 0  # transactions committed (read by tests and benchmarks)

    def run(self, work: Work[T]) -> T:
        queued: _Queued[T] = _Queued(work)
        with self._mutex:
            self._queue.append(queued)
            lead = not self._leading
            self._leading = True
        if not lead:
            queued.turn.wait()
        try:
            if not queued.done:  # our turn: our work is first in the queue
                self._lead()
        finally:
            if queued.then is not None:
                queued.then.turn.set()
        return queued.outcome()

    def _lead(self) -> None:
        with self._mutex:
            batch = self._queue[: self.most]
            del self._queue[: self.most]
        try:
            self._commit(batch)
        finally:
            with self._mutex:
                following = self._queue[0] if self._queue else None
                self._leading = following is not None
            if following is not None:
                following.turn.set()  # the next batch starts now, while this one's threads wake
            # Woken one by one, each by the one before: waking a whole batch here made the leader
            # wait for the GIL once per thread (measured: ~8 % of a fan-out's CPU samples in this loop).
            for queued, after in zip(batch, [*batch[1:], None]):
                queued.done, queued.then = True, after
            batch[0].turn.set()

    def _commit(self, batch: list[_Queued[Any]]) -> None:
        try:
            results = self._transaction([q.work for q in batch])
        except Exception as exc:  # noqa: BLE001  (handed to the thread whose work it was)
            if len(batch) == 1:
                batch[0].error = exc
                return
            for queued in batch:  # find the failing work: each alone, in order
                self._commit([queued])
            return
        except BaseException as exc:  # interrupted: nobody may wait for ever
            for queued in batch:
                queued.error = exc
            raise
        for queued, result in zip(batch, results):
            queued.result = result

    def _transaction(self, works: list[Work[Any]]) -> list[Any]:
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock up front, so reads inside stay true
            # PostgreSQL: the transaction SQLAlchemy begins at the first statement (READ COMMITTED).
            try:
                results = [work(conn) for work in works]
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        self.commits += 1
        return results
