"""Publishing fixtures: a ledger on SQLite or PostgreSQL, and a publisher over scripted or sandbox adapters."""

from __future__ import annotations

import random

import pytest

from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger
from tests.ledger.databases import DATABASES, fresh_url


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path) -> str:
    return fresh_url(request.param, request, tmp_path)


@pytest.fixture
def sqlite_ledger(tmp_path, clock):
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield Ledger(engine, clock)
    engine.dispose()


@pytest.fixture
def ledger(db_url, clock):
    engine = open_engine(db_url)
    yield Ledger(engine, clock)
    engine.dispose()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)
