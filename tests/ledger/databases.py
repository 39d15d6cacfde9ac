"""Fresh ledger databases for tests: a SQLite file, or a new database on the session's PostgreSQL."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

_numbers = itertools.count()


def fresh_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of ``kind`` ("sqlite" or "postgres") that only this test uses."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    pg = request.getfixturevalue("postgres")
    name = f"ledger_{os.getpid()}_{next(_numbers)}"
    admin = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return pg.url.rsplit("/", 1)[0] + "/" + name


DATABASES = ("sqlite", "postgres")
