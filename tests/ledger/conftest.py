"""Ledger fixtures: every ledger test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger
from tests.ledger.databases import DATABASES, fresh_url


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path) -> str:
    return fresh_url(request.param, request, tmp_path)


@pytest.fixture
def ledger(db_url, clock):
    engine = open_engine(db_url)
    yield Ledger(engine, clock)
    engine.dispose()
