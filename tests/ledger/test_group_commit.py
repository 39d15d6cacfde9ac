"""Group commit on SQLite and PostgreSQL: many threads' writes share transactions, and one failing write fails alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from bot.ledger.group_commit import GroupCommit
from tests.ledger.databases import DATABASES, fresh_url

ROWS = sa.Table("rows", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True))


@pytest.fixture(params=DATABASES)
def engine(request, tmp_path):
    # PostgreSQL aborts a transaction at its first error, where SQLite goes on: a failing work must
    # still fail alone there.
    engine = sa.create_engine(fresh_url(request.param, request, tmp_path), pool_size=110)
    ROWS.metadata.create_all(engine)
    yield engine
    engine.dispose()


@contextmanager
def held(group: GroupCommit, pool: ThreadPoolExecutor, queued: int = 0):
    """A first transaction kept running until the block ends, so what the block submits queues behind it.

    On leaving, waits until ``queued`` works are in the queue, then lets the first one finish.
    """
    running, release = threading.Event(), threading.Event()

    def first(conn):
        running.set()
        release.wait(10)
        return "first"

    future = pool.submit(group.run, first)
    assert running.wait(10)
    try:
        yield future
        while len(group._queue) < queued:
            threading.Event().wait(0.01)
    finally:
        release.set()


def put(conn, n: int) -> int:
    """Insert row ``n``; ``n`` (a primary key with RETURNING reports no rowcount on PostgreSQL)."""
    conn.execute(ROWS.insert().values(n=n))
    return n


def stored(engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(n for (n,) in conn.execute(sa.select(ROWS.c.n)))


def test_works_queued_while_a_transaction_runs_share_the_next_commit(engine):
    """While one transaction runs, the writes queued by other threads are committed together, each with its own result."""
    group = GroupCommit(engine)
    with ThreadPoolExecutor(max_workers=21) as pool:
        with held(group, pool, queued=20) as first:
            others = [pool.submit(group.run, lambda conn, n=n: put(conn, n)) for n in range(1, 21)]
        assert first.result(10) == "first"
        assert [f.result(10) for f in others] == list(range(1, 21))
    assert stored(engine) == list(range(1, 21))
    assert group.commits == 2


def test_a_failing_work_fails_alone_and_the_others_of_its_batch_are_committed(engine):
    """A write that raises gets its exception; the writes batched with it are run again alone and kept."""
    group = GroupCommit(engine)

    def insert(n):
        return lambda conn: put(conn, n)

    with ThreadPoolExecutor(max_workers=5) as pool:
        with held(group, pool, queued=4):
            good = [pool.submit(group.run, insert(n)) for n in (1, 2)]
            clash = pool.submit(group.run, insert(1))  # the same primary key as a good one: IntegrityError
            more = pool.submit(group.run, insert(3))
        assert [f.result(10) for f in good] == [1, 2] and more.result(10) == 3
        with pytest.raises(sa.exc.IntegrityError):
            clash.result(10)
    assert stored(engine) == [1, 2, 3]


def test_each_work_sees_the_writes_before_it_in_the_batch(engine):
    """Works in one transaction run in order, each seeing the rows the earlier ones wrote."""
    group = GroupCommit(engine)

    def count_then_insert(n):
        def work(conn):
            seen = conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one()
            conn.execute(ROWS.insert().values(n=n))
            return seen

        return work

    with ThreadPoolExecutor(max_workers=6) as pool:
        with held(group, pool):
            futures = []
            for n in range(5):
                futures.append(pool.submit(group.run, count_then_insert(n)))
                while len(group._queue) < n + 1:  # queue them in a known order
                    threading.Event().wait(0.01)
        assert [f.result(10) for f in futures] == [0, 1, 2, 3, 4]
    assert group.commits == 2


def test_a_batch_holds_at_most_most_works(engine):
    """No transaction takes more than ``most`` works, so the first of a long queue does not wait for all."""
    group = GroupCommit(engine, most=4)
    with ThreadPoolExecutor(max_workers=11) as pool:
        with held(group, pool, queued=10):
            futures = [pool.submit(group.run, lambda conn, n=n: put(conn, n)) for n in range(10)]
        assert [f.result(10) for f in futures] == list(range(10))
    assert group.commits == 1 + 3  # the first alone, then 10 works in batches of 4, 4 and 2


def test_every_thread_is_woken_when_many_write_at_once(engine):
    """100 threads writing 20 rows each all return with their results: no thread of a batch is left waiting."""
    group = GroupCommit(engine, most=16)

    def writer(t):
        return [group.run(lambda conn, n=t * 100 + i: put(conn, n)) for i in range(20)]

    with ThreadPoolExecutor(max_workers=100) as pool:
        assert list(pool.map(writer, range(100), timeout=60)) == [[t * 100 + i for i in range(20)] for t in range(100)]
    assert len(stored(engine)) == 2000
    assert group.commits < 2000  # writes shared transactions


def test_two_workers_batches_that_deadlock_both_end_with_every_work_done(request, tmp_path):
    """Two workers' batches lock the same two rows in opposite orders: PostgreSQL fails one, its works run again alone.

    A batch holds its row locks until its commit, so this deadlock is possible on PostgreSQL (SQLite has one writer).
    """
    url = fresh_url("postgres", request, tmp_path)
    setup = sa.create_engine(url)
    ROWS.metadata.create_all(setup)
    with setup.begin() as conn:
        conn.execute(ROWS.insert(), [{"n": 1}, {"n": 2}])
    engines = [sa.create_engine(url), sa.create_engine(url)]
    groups = [GroupCommit(e) for e in engines]
    first_locked = [threading.Event(), threading.Event()]

    def touch(row: int, me: int, wait_for_other: bool):
        def work(conn):
            conn.execute(ROWS.update().where(ROWS.c.n == row).values(n=row))  # takes the row's lock
            if wait_for_other:
                first_locked[me].set()
                first_locked[1 - me].wait(5)  # both hold their first row before either asks for its second
            return (me, row)

        return work

    def batch(me: int, rows: tuple[int, int]):
        group = groups[me]
        # Both works queued behind a first transaction, so that the next batch holds the two of them.
        with ThreadPoolExecutor(max_workers=3) as pool:
            with held(group, pool, queued=2):
                first = pool.submit(group.run, touch(rows[0], me, True))
                while len(group._queue) < 1:  # queued in this order
                    threading.Event().wait(0.001)
                second = pool.submit(group.run, touch(rows[1], me, False))
            return [first.result(30), second.result(30)]

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            a = pool.submit(batch, 0, (1, 2))
            b = pool.submit(batch, 1, (2, 1))
            assert a.result(60) == [(0, 1), (0, 2)]
            assert b.result(60) == [(1, 2), (1, 1)]
        # Each worker: its first transaction, then the batch of two. One batch was failed by the deadlock and
        # its two works were committed one by one: 2 + 1 + 2.
        assert sum(g.commits for g in groups) == 5
    finally:
        for e in [setup, *engines]:
            e.dispose()
