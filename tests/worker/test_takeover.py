"""A dead worker's share is taken over within seconds (heartbeats), and a clean stop hands over at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.core.clock import FakeClock
from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger, PublicationKey
from bot.ledger.reshares import ReshareLedger
from bot.ledger.schema import publications, workers
from bot.ledger.workers import DEAD_AFTER, Workers
from bot.worker.runtime import Worker
from tests.worker.campaigns import write_campaign

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
WALL = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_an_unseen_worker_is_dead_and_its_leases_end_now(tmp_path) -> None:
    """Claims and the tracker lease of a worker unseen for DEAD_AFTER are released; a live worker's are not."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    clock = FakeClock(NINE)
    ledger, reshares, alive = Ledger(engine, clock), ReshareLedger(engine, "free"), Workers(engine)
    lease = timedelta(minutes=10)
    for n, owner in enumerate(["dead:1:a", "live:2:b"]):
        assert ledger.claim(PublicationKey("free", NINE, f"post:p{n}", "x-a"), owner, lease, post=f"p{n}") is not None
    assert reshares.acquire_lease("dead:1:a", NINE, timedelta(minutes=3))
    alive.beat("dead:1:a", WALL - DEAD_AFTER - timedelta(seconds=1))
    alive.beat("live:2:b", WALL - timedelta(seconds=3))
    assert ledger.expired_claims(NINE) == []
    assert alive.dead(WALL) == ["dead:1:a"]
    assert alive.release(["dead:1:a"], NINE) == {"claims": 1, "tracker_leases": 1}
    assert [r.owner for r in ledger.expired_claims(NINE)] == ["dead:1:a"]
    assert reshares.acquire_lease("live:2:b", NINE, timedelta(minutes=3))  # the tracker lease is free at once
    assert alive.dead(WALL) == []  # forgotten once released
    engine.dispose()


@pytest.mark.slow
def test_a_new_worker_takes_over_a_dead_workers_claim_without_waiting_for_its_lease(
    tmp_path, x_sandbox, monkeypatch
) -> None:
    """A claim a killed worker held (lease 10 minutes ahead) is published by the next worker as soon as it starts."""
    account = x_sandbox.create_account(f"t{uuid.uuid4().hex[:8]}")
    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    text = f"Take over {uuid.uuid4().hex[:6]} #FreeAndreiandIrina"
    write_campaign(
        tmp_path,
        [account],
        posts={"launch": text},
        schedules={
            "s": {"timezone": "UTC", "slots": [{"at": "2022-01-12T09:00", "post": "launch", "accounts": [account.id]}]}
        },
    )
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_engine(url)
    clock = FakeClock(NINE)
    # The killed worker: it claimed the slot and beat last a minute ago (wall time), then died.
    dead = "elsewhere:4242:dead00"
    key = PublicationKey("test-campaign", NINE, "post:launch", account.id)
    Ledger(engine, clock).claim(key, dead, timedelta(minutes=10), post="launch", schedule="s", slot=0)
    Workers(engine).beat(dead, datetime.now(UTC) - timedelta(minutes=1))
    worker = Worker(tmp_path, clock=clock, database_url=url, threads=4)
    campaign_name = worker.campaign.name
    try:
        if campaign_name != key.campaign:  # the claim must stand for this campaign's slot
            with engine.begin() as conn:
                conn.execute(sa.update(publications).values(campaign=campaign_name))
        worker.start()
        assert worker.wait_idle(timeout=30)
        assert [p.text for p in x_sandbox.posts(account)] == [text]
        with engine.connect() as conn:
            [row] = conn.execute(sa.select(publications.c.state, publications.c.owner)).all()
            assert row.state == "published" and row.owner != dead
            assert [o for (o,) in conn.execute(sa.select(workers.c.owner))] == [worker.owner]
    finally:
        worker.close()
    with engine.connect() as conn:  # a clean stop leaves the list
        assert conn.execute(sa.select(sa.func.count()).select_from(workers)).scalar() == 0
    engine.dispose()


def test_dead_after_three_missed_two_second_beats() -> None:
    """Detection is a few seconds: a worker beating every 2 s is dead after three missed beats, not before."""
    from bot.worker.runtime import BEAT_EVERY

    assert BEAT_EVERY == 2.0
    assert 3 * BEAT_EVERY < DEAD_AFTER.total_seconds() <= 4 * BEAT_EVERY


def test_a_worker_whose_publishing_threads_hold_every_pooled_connection_still_beats(postgres) -> None:
    """Beats go over their own connection: with the ledger's pool all taken (long uploads), a beat still lands at once."""
    import threading

    engine = open_engine(postgres.new_database(f"beats_{uuid.uuid4().hex[:8]}"))
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        alive = Workers(engine)
        beat = threading.Thread(target=alive.beat, args=("busy:1:a", WALL), daemon=True)
        beat.start()
        beat.join(timeout=10)  # through the shared pool it would wait up to 10 minutes for a connection
        assert not beat.is_alive()
        assert alive.dead(WALL + timedelta(seconds=3 * 2)) == []  # slow to publish, not dead
        assert alive.dead(WALL + DEAD_AFTER + timedelta(seconds=1)) == ["busy:1:a"]
        alive.close()
    finally:
        for conn in held:
            conn.close()
        engine.dispose()
