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
