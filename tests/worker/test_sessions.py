"""Bluesky sessions kept in the campaign's state folder: restarted workers and `bot publish` do not log in again."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from bot.cli import publish as manual
from bot.core.clock import FakeClock
from bot.worker.runtime import Worker
from tests.worker.campaigns import write_campaign

pytestmark = pytest.mark.slow  # drives the reference Bluesky servers


@pytest.fixture
def account(bluesky_sandbox, monkeypatch):
    """A fresh Bluesky account on the shared sandbox, its app password in the environment."""
    acc = bluesky_sandbox.create_account(f"s{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


def _campaign(root, account, tag: str) -> None:
    write_campaign(
        root,
        [account],
        posts={"one": f"One {tag} #FreeAndreiandIrina", "two": f"Two {tag} #FreeAndreiandIrina"},
        schedules={
            "launch": {
                "timezone": "UTC",
                "window": {"start": "2022-01-12", "end": "2022-01-20"},
                "slots": [
                    {"at": "2022-01-12T09:00", "post": "one", "accounts": [account.id]},
                    {"at": "2022-01-12T10:00", "post": "two", "accounts": [account.id]},
                ],
            }
        },
    )


def _logins(sandbox, since: int) -> int:
    return sum(1 for r in sandbox.requests()[since:] if r["path"].endswith("com.atproto.server.createSession"))


def _run_until(root, at: datetime) -> None:
    clock = FakeClock(at)
    worker = Worker(root, clock=clock, database_url=f"sqlite:///{root / 'ledger.db'}", threads=4)
    try:
        worker.start()  # publishes the slot that is due now (missed-slot recovery within grace)
        worker.run_pending()
    finally:
        worker.close()
        worker.publisher.adapters.close()


def test_restarted_worker_refreshes_the_stored_session_instead_of_logging_in(tmp_path, bluesky_sandbox, account):
    """Two worker runs on one campaign folder log in to Bluesky once; the session file is private and never logged."""
    tag = uuid.uuid4().hex[:6]
    _campaign(tmp_path, account, tag)
    since = len(bluesky_sandbox.requests())
    with capture_logs() as events:
        _run_until(tmp_path, datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
        _run_until(tmp_path, datetime(2022, 1, 12, 10, 0, tzinfo=UTC))
    bluesky_sandbox.index()
    assert sorted(p.text for p in bluesky_sandbox.posts(account)) == [
        f"One {tag} #FreeAndreiandIrina",
        f"Two {tag} #FreeAndreiandIrina",
    ]
    assert _logins(bluesky_sandbox, since) == 1
    [saved] = (tmp_path / "state" / "sessions").iterdir()
    assert saved.stat().st_mode & 0o777 == 0o600
    session = saved.read_text()
    assert session and session not in json.dumps(events, default=str)


def test_bot_publish_reuses_the_session_the_worker_stored(tmp_path, bluesky_sandbox, account):
    """`bot publish` after a worker run on the same campaign uses the stored session: no second login."""
    tag = uuid.uuid4().hex[:6]
    _campaign(tmp_path, account, tag)
    since = len(bluesky_sandbox.requests())
    _run_until(tmp_path, datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
    args = argparse.Namespace(campaign=tmp_path, post="two", account=account.id, again=False)
    try:
        assert manual.main(args) == 0
    finally:
        structlog.reset_defaults()  # main configured logging onto this test's captured stdout, closed after it
    assert _logins(bluesky_sandbox, since) == 1
