"""The PostgreSQL pool checks a connection only after it idled, and replaces one the server cut meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.ledger import db
from bot.ledger.publications import Ledger
from tests.ledger.databases import fresh_url
from tests.ledger.race import slot_key

LEASE = timedelta(minutes=5)


@pytest.fixture
def pg_engine(request, tmp_path):
    engine = db.open_engine(fresh_url("postgres", request, tmp_path))
    yield engine
    engine.dispose()


def cut_pooled_connection(engine, postgres) -> None:
    """What a host does to a connection idle too long: the server ends it; the pool still holds it."""
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
    admin.dispose()


def test_a_connection_cut_while_idle_is_replaced_before_use(pg_engine, postgres, clock, monkeypatch):
    """After an idle spell, the pool pings the connection, finds it cut, and the claim goes through on a new one."""
    ledger = Ledger(pg_engine, clock)
    cut_pooled_connection(pg_engine, postgres)
    monkeypatch.setattr(db, "PING_AFTER", 0.0)  # every connection counts as idle
    claimed = ledger.claim_and_begin(slot_key(1), "w1", LEASE, post="launch", schedule="launch", slot=0, platform="x")
    assert claimed is not None and ledger.get(slot_key(1)).owner == "w1"


def test_a_connection_in_use_a_moment_ago_is_not_pinged(pg_engine, postgres, clock, monkeypatch):
    """Between publications nothing is checked: a connection cut within the idle allowance fails the next call."""
    ledger = Ledger(pg_engine, clock)
    cut_pooled_connection(pg_engine, postgres)
    monkeypatch.setattr(db, "PING_AFTER", 3600.0)
    with pytest.raises(sa.exc.OperationalError):
        ledger.get(slot_key(1))
    assert ledger.get(slot_key(1)) is None  # the cut connection was dropped, not handed out again


def server_connections(postgres, database: str) -> int:
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
        ).scalar_one()
    admin.dispose()
    return int(count)


def test_a_worker_opens_its_connections_at_start_and_keeps_them(request, tmp_path, postgres, monkeypatch):
    """``BOT_LEDGER_CONNECTIONS`` sizes a fixed pool, opened up front; a fan-out's checkins close none of them."""
    monkeypatch.setenv("BOT_LEDGER_CONNECTIONS", "5")
    engine = db.open_engine(fresh_url("postgres", request, tmp_path))
    database = engine.url.database
    try:
        assert db.open_connections(engine, 256) == 5  # no more than the pool holds
        assert server_connections(postgres, database) == 5
        held = [engine.connect() for _ in range(5)]  # as a fan-out's threads take them all
        for conn in held:
            conn.close()
        assert server_connections(postgres, database) == 5  # checked in, not closed (no overflow to shed)
    finally:
        engine.dispose()


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "2.5"])
def test_a_wrong_connection_count_names_the_variable(value, monkeypatch):
    """A ``BOT_LEDGER_CONNECTIONS`` that is not a positive whole number stops the opener with the variable's name."""
    monkeypatch.setenv("BOT_LEDGER_CONNECTIONS", value)
    with pytest.raises(db.LedgerUnavailable, match="BOT_LEDGER_CONNECTIONS"):
        db.pool_size()


def test_sqlite_opens_nothing_ahead(tmp_path):
    """The SQLite ledger has no connections to open ahead: one worker, one file."""
    engine = db.open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert db.open_connections(engine, 256) == 0
    engine.dispose()
