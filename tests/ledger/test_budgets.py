"""Rate limits shared by workers on one PostgreSQL ledger (bot.ledger.budgets): what one learns stops the others."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from bot.core.errors import RateLimited
from bot.ledger.budgets import RateBudgets
from bot.ledger.db import open_engine
from bot.ledger.schema import rate_budgets
from bot.platforms.base import RateGate
from sandboxes.x.sandbox import XSandbox
from tests.platforms.support import adapter_for
from tests.platforms.support import fresh_name as fresh
from tests.platforms.support import outgoing as out

T0 = 1_700_000_000.0


class Wall:
    """An injected wall clock (epoch seconds) the sandbox, the gates and the stores all read."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ledger_url(postgres) -> str:
    url: str = postgres.new_database(f"budgets_{uuid.uuid4().hex[:8]}")
    open_engine(url).dispose()  # migrated to head: rate_budgets exists
    return url


def _worker_store(url: str, wall: Wall, **options) -> RateBudgets:
    """One worker's store: its own engine (its own process, in production) on the shared ledger."""
    return RateBudgets(sa.create_engine(url), wall=wall, **options)


def test_a_limit_one_worker_hits_stops_the_other_workers_adapter_without_a_request(ledger_url) -> None:
    """Worker A uses up an account's window; worker B's adapter for that account sends nothing until the reset."""
    wall = Wall()
    with XSandbox(wall=wall) as sandbox:
        acct = sandbox.create_account(fresh())
        sandbox.set_limit("POST /2/tweets", 1, window=900, account=acct)
        a, b = adapter_for(acct, wall=wall), adapter_for(acct, wall=wall)
        a.share_rates(_worker_store(ledger_url, wall))
        b.share_rates(_worker_store(ledger_url, wall))
        a.publish(out("one"))  # its headers say the window is used up: A blocks, and writes it down
        sent = len(sandbox.requests())
        with pytest.raises(RateLimited) as raised:
            b.publish(out("two"))
        assert 899 <= raised.value.retry_after <= 900
        assert len(sandbox.requests()) == sent
        wall.now += 901
        b.publish(out("two"))
        assert [r["status"] for r in sandbox.requests() if r["path"] == "/2/tweets"] == [201, 201]


def test_an_apps_cap_reached_stops_every_account_of_the_app_in_every_worker(ledger_url) -> None:
    """X's per-app header at 0, seen by one worker's account, stops another worker's other account of the same app."""
    wall = Wall()
    with XSandbox(wall=wall) as sandbox:
        first, second = sandbox.create_account(fresh()), sandbox.create_account(fresh())
        sandbox.set_app_limit("POST /2/tweets", 1)
        a, b = adapter_for(first, wall=wall), adapter_for(second, wall=wall)
        a.share_rates(_worker_store(ledger_url, wall))
        b.share_rates(_worker_store(ledger_url, wall))
        a.publish(out("one"))
        sent = len(sandbox.requests())
        with pytest.raises(RateLimited):
            b.publish(out("two"))
        assert len(sandbox.requests()) == sent  # no 429 provoked: nothing was sent
    c = rate_budgets.c
    engine = sa.create_engine(ledger_url)
    with engine.connect() as conn:
        buckets = conn.execute(sa.select(c.bucket).where(c.blocked_until.is_not(None))).scalars().all()
    engine.dispose()
    assert any(b.startswith("app:") for b in buckets)


def test_two_workers_count_an_app_cap_together_and_stop_at_it_until_the_window_slides(ledger_url) -> None:
    """Uses counted in batches by two workers add up; at the cap both gates stop, and the sliding window reopens it."""
    wall = Wall()
    stores = [_worker_store(ledger_url, wall, batch=2, margin=0, cache_seconds=0) for _ in range(2)]
    gates = []
    for n, store in enumerate(stores):
        gate = RateGate(wall)
        gate.share(store, "x", f"acct-{n}", app="app1")
        gates.append(gate)
    for _ in range(4):  # 8 uses, 4 each, written two at a time: the cap is 8 a day
        for gate in gates:
            assert gate.wait_needed("post") == 0
            gate.spend("post", 8, 86_400.0)
    assert stores[0].used("x", "app:app1:post", 86_400.0) == 8
    assert stores[0].writes == 2 and stores[1].writes == 2  # one write per batch of two, not per use
    for gate in gates:
        assert gate.wait_needed("post") == pytest.approx(86_400.0)
    wall.now += 86_400.0 + 8_640.0  # a tenth into the next day: 7.2 of the 8 uses still fall in the last 24 hours
    assert stores[1].used("x", "app:app1:post", 86_400.0) == pytest.approx(7.2)
    assert gates[1].wait_needed("post") == 0  # under the cap again
    gates[1].spend("post", 8, 86_400.0)
    gates[1].spend("post", 8, 86_400.0)  # written (its last write is a day old): 7.2 + 2, over the cap again
    assert gates[0].wait_needed("post") > 0 and gates[1].wait_needed("post") > 0


def test_blocks_are_read_from_a_snapshot_not_once_per_call(ledger_url) -> None:
    """A thousand gate checks within the cache's seconds cost one query; a block another worker writes is seen after it."""
    wall = Wall()
    mine, theirs = _worker_store(ledger_url, wall), _worker_store(ledger_url, wall)
    gate = RateGate(wall)
    gate.share(mine, "x", "acct-1")
    for _ in range(1000):
        assert gate.wait_needed("post") == 0
    assert mine.reads == 1
    theirs.block("x", "acct:acct-1:post", T0 + 60)
    assert gate.wait_needed("post") == 0  # not seen yet: the snapshot is at most CACHE_SECONDS old
    wall.now += mine.cache_seconds
    assert gate.wait_needed("post") == pytest.approx(60 - mine.cache_seconds)
    assert mine.reads == 2


def test_a_batch_costs_two_statements_once_the_buckets_row_exists(ledger_url) -> None:
    """Writing a batch of uses inserts the bucket's row once per process; later batches only lock and update it."""
    wall = Wall()
    store = _worker_store(ledger_url, wall, batch=4, margin=0)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0]))
    for _ in range(8):
        store.spend("x", "app:app1:post", 100, 86_400.0)
    assert statements.count("INSERT") == 1 and statements.count("UPDATE") == 2
    assert store.used("x", "app:app1:post", 86_400.0) == 8


def test_the_store_counts_the_live_workers_that_share_the_limits(ledger_url) -> None:
    """Workers seen within the last seconds count; a dead one (unseen for long) does not; never fewer than one."""
    from datetime import UTC, datetime, timedelta

    from bot.ledger.workers import DEAD_AFTER, Workers

    wall = Wall()
    engine = sa.create_engine(ledger_url)
    store = RateBudgets(engine, wall=wall, cache_seconds=0.0)
    assert store.workers() == 1  # nobody has beaten yet: this worker alone
    beats = Workers(engine)
    now = datetime.now(UTC)
    for owner in ("a", "b", "c"):
        beats.beat(owner, now)
    beats.beat("gone", now - DEAD_AFTER - timedelta(seconds=5))
    wall.now += 1
    assert store.workers() == 3
    beats.close()
    engine.dispose()
