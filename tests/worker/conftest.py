"""Fixtures for worker tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.campaigns import Workers


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Worker subprocesses of one test, killed at teardown if the test left any running."""
    started = Workers()
    try:
        yield started
    finally:
        started.kill_all()
