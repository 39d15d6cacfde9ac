"""Fresh ledger databases for tests: a SQLite file, or a new database on the session's PostgreSQL."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

_numbers = itertools.count()


def fresh_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of ``kind`` ("sqlite" or "postgres") that only this test uses."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    pg = request.getfixturevalue("postgres")
    return pg.new_database(f"ledger_{os.getpid()}_{next(_numbers)}")


DATABASES = ("sqlite", "postgres")
