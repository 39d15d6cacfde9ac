"""Workers on one PostgreSQL ledger divide a slot's accounts (bot.ledger.shares) and take over a dead one's share."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.core.clock import FakeClock
from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger, PublicationKey
from bot.ledger.schema import attempts, publications
from bot.ledger.shares import PENDING, Shares
from bot.ledger.workers import Workers
from bot.worker.runtime import Worker
from tests.worker.campaigns import write_campaign

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def _offer(shares: Shares, accounts: list[str], now: datetime) -> None:
    shares.offer("c", NINE, "post:launch", "launch", "s", 0, dict.fromkeys(accounts, "x"), now)


def test_take_skips_rows_another_worker_is_taking_and_never_hands_a_row_twice(postgres) -> None:
    """Rows locked by another transaction are skipped, not waited for; two takes never return the same row."""
    engine = open_engine(postgres.new_database(f"shares_{uuid.uuid4().hex[:8]}"))
    shares = Shares(engine)
    accounts = [f"x-{n:02d}" for n in range(10)]
    _offer(shares, accounts, NINE)
    _offer(shares, accounts, NINE)  # a second worker offering the same slot adds nothing
    c = publications.c
    with engine.begin() as busy:  # another worker's take, not committed yet
        locked = busy.execute(sa.select(c.account).order_by(c.id).limit(4).with_for_update()).scalars().all()
        first = shares.take("c", NINE, "post:launch", "a", NINE, NINE + LEASE, 3)
        second = shares.take("c", NINE, "post:launch", "b", NINE, NINE + LEASE, 10)
    assert set(first).isdisjoint(locked) and set(second).isdisjoint(locked)
    assert len(first) == 3 and len(second) == 3 and set(first).isdisjoint(second)
    assert sorted(locked + first + second) == accounts
    assert sorted(shares.take("c", NINE, "post:launch", "b", NINE, NINE + LEASE, 10)) == sorted(locked)
    assert shares.take("c", NINE, "post:launch", "a", NINE, NINE + LEASE, 10) == []
    engine.dispose()


def test_a_reserved_row_is_claimed_by_its_taker_only_until_it_is_released(postgres, clock) -> None:
    """A pending row reserved by one worker is refused to another's claim; released (its worker dead), anyone claims it once."""
    engine = open_engine(postgres.new_database(f"shares_{uuid.uuid4().hex[:8]}"))
    now = clock.now()
    shares, ledger = Shares(engine), Ledger(engine, clock)
    shares.offer("c", now, "post:launch", "launch", "s", 0, {"x-a": "x", "x-b": "x"}, now)
    assert sorted(shares.take("c", now, "post:launch", "mine", now, now + LEASE, 2)) == ["x-a", "x-b"]
    key_a, key_b = (PublicationKey("c", now, "post:launch", a) for a in ("x-a", "x-b"))
    slot = dict(post="launch", schedule="s", slot=0, platform="x")
    assert ledger.claim_and_begin(key_a, "other", LEASE, **slot) is None
    assert ledger.claim(key_a, "other", LEASE, post="launch") is None
    claimed = ledger.claim_and_begin(key_a, "mine", LEASE, **slot)
    assert claimed is not None and claimed[1] == 1 and claimed[2] is False  # first attempt: nothing to reconcile
    assert ledger.claim_and_begin(key_a, "mine", LEASE, **slot) is None  # claimed now: not twice, even by its taker
    assert Workers(engine).release(["mine"], now)["claims"] == 2  # the claim and the reservation
    assert ledger.get(key_b).state == PENDING and ledger.get(key_b).owner is None
    assert shares.free(now)[0].target == "post:launch"
    assert ledger.claim_and_begin(key_b, "other", LEASE, **slot) is not None
    assert ledger.claim_and_begin(key_b, "third", LEASE, **slot) is None
    engine.dispose()


def _worker(tmp_path, url: str, clock: FakeClock, threads: int = 8) -> Worker:
    worker = Worker(tmp_path, clock=clock, database_url=url, threads=threads)
    assert worker.fanout is not None
    worker.fanout.batch = 4
    return worker


def _published(engine) -> list[tuple[str, int]]:
    c = publications.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(c.account, c.attempts).where(c.state == "published")))


def _wait(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_two_workers_divide_a_slot_and_publish_each_account_once(tmp_path, x_sandbox, postgres, monkeypatch) -> None:
    """Two workers fire the same 24-account slot: each account is published once, by one claim and one attempt."""
    accounts = [x_sandbox.create_account(f"v{uuid.uuid4().hex[:8]}") for _ in range(24)]
    for account in accounts:
        for name, value in account.env.items():
            monkeypatch.setenv(name, value)
    text = f"Divided {uuid.uuid4().hex[:6]} #FreeAndreiandIrina"
    slot = {"at": "2022-01-12T09:00", "post": "launch", "accounts": [a.id for a in accounts]}
    write_campaign(tmp_path, accounts, posts={"launch": text}, schedules={"s": {"timezone": "UTC", "slots": [slot]}})
    url = postgres.new_database(f"shares_{uuid.uuid4().hex[:8]}")
    clock = FakeClock(NINE - timedelta(seconds=1))
    pair = [_worker(tmp_path, url, clock, threads=4), _worker(tmp_path, url, clock, threads=4)]
    engine = pair[0].ledger.engine
    try:
        for worker in pair:
            worker.start()
        clock.set(NINE)
        for worker in pair:
            worker.scheduler.run_due()
        assert _wait(lambda: len(_published(engine)) == len(accounts))
        for worker in pair:
            assert worker.wait_idle(timeout=30)
        assert sorted(n for _, n in _published(engine)) == [1] * len(accounts)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(attempts)).scalar() == len(accounts)
        live = [p for p in x_sandbox.posts() if p.text == text]
        assert sorted(p.author for p in live) == sorted(a.handle for a in accounts)
    finally:
        for worker in pair:
            worker.close()


@pytest.mark.slow
def test_a_dead_workers_reserved_rows_are_published_by_a_live_worker_within_seconds(
    tmp_path, x_sandbox, postgres, monkeypatch
) -> None:
    """Rows a killed worker had taken (reserved ten minutes ahead) go out as soon as a live worker beats."""
    accounts = [x_sandbox.create_account(f"k{uuid.uuid4().hex[:8]}") for _ in range(6)]
    for account in accounts:
        for name, value in account.env.items():
            monkeypatch.setenv(name, value)
    text = f"Taken over {uuid.uuid4().hex[:6]} #FreeAndreiandIrina"
    slot = {"at": "2022-01-12T09:00", "post": "launch", "accounts": [a.id for a in accounts]}
    write_campaign(tmp_path, accounts, posts={"launch": text}, schedules={"s": {"timezone": "UTC", "slots": [slot]}})
    url = postgres.new_database(f"shares_{uuid.uuid4().hex[:8]}")
    clock = FakeClock(NINE + timedelta(seconds=5))
    worker = _worker(tmp_path, url, clock)
    engine = worker.ledger.engine
    name = worker.campaign.name
    shares, dead = Shares(engine), "elsewhere:4242:dead00"
    shares.offer(name, NINE, "post:launch", "launch", "s", 0, {a.id: "x" for a in accounts}, NINE)
    assert len(shares.take(name, NINE, "post:launch", dead, NINE, NINE + LEASE, 6)) == 6
    Workers(engine).beat(dead, datetime.now(UTC) - timedelta(minutes=1))  # then it was killed
    try:
        worker.start()  # its first beat finds the dead worker; the rows it held are fed to this one
        assert _wait(lambda: len(_published(engine)) == len(accounts), seconds=20)
        live = [p for p in x_sandbox.posts() if p.text == text]
        assert sorted(p.author for p in live) == sorted(a.handle for a in accounts)
        assert shares.counts() == 0
    finally:
        worker.close()
