"""Deploy overlap: two `bot run` processes on one PostgreSQL ledger publish nothing twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.ledger.db import open_engine
from bot.ledger.schema import publications
from tests.worker.campaigns import env_for, events, iso, wait_for_event
from tests.worker.test_crash import SLOTS, SPEED, T0, hourly_campaign, published_once


@pytest.mark.slow
def test_two_workers_on_one_postgres_publish_every_post_once(tmp_path, x_sandbox, postgres, workers) -> None:
    """An old and a new worker overlap on PostgreSQL for 200 slots; the old one stops warm; each post is live once."""
    account = x_sandbox.create_account(f"d{uuid.uuid4().hex[:8]}")
    x_sandbox.lift_limits(account)  # 200 posts within minutes: more than X lets one person post
    tag = uuid.uuid4().hex[:6]
    hourly_campaign(tmp_path, account, tag)
    end = T0 + timedelta(minutes=SLOTS + 2)
    env = env_for([account])

    def args(start: datetime, log) -> list[str]:
        return [
            "--database-url",
            postgres.url,
            "--clock-start",
            iso(start),
            "--clock-speed",
            str(SPEED),
            "--heartbeat",
            "300",
            "--lease",
            "10",
            "--threads",
            "16",
            "--until",
            iso(end + timedelta(minutes=30)),
        ]

    old_log, new_log = tmp_path / "old.log", tmp_path / "new.log"
    # Both hosts start together on the same campaign time and race for every slot.
    old = workers.spawn(tmp_path, env, old_log, *args(T0, old_log))
    new = workers.spawn(tmp_path, env, new_log, *args(T0, new_log))
    wait_for_event(old_log, "worker_started", 1, old)
    wait_for_event(new_log, "worker_started", 1, new)
    deadline = time.monotonic() + 120
    while _published(old_log) + _published(new_log) < SLOTS // 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Each process runs its own compressed clock, so whichever started a hair earlier is ahead and wins the
    # races; the host retires that one, so the other must take over the rest of the campaign.
    if _published(new_log) > _published(old_log):
        old, new, old_log, new_log = new, old, new_log, old_log
    old.send_signal(signal.SIGTERM)  # the host retires the old release while the new one runs
    assert old.wait(timeout=60) == 0
    assert new.wait(timeout=120) == 0

    published_once(x_sandbox, account, tag)
    engine = open_engine(postgres.url)
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.select(publications.c.post, publications.c.state, publications.c.owner).where(
                    publications.c.campaign == tmp_path.name, publications.c.post.is_not(None)
                )
            )
        )
    assert Counter(post for post, _, _ in rows) == Counter({f"{i:03d}": 1 for i in range(SLOTS)})
    assert {state for _, state, _ in rows} == {"published"}
    assert _published(old_log) + _published(new_log) == SLOTS
    assert _published(old_log) > 0 and _published(new_log) > 0  # both really took part


def _published(log) -> int:
    return sum(e["event"] == "post_published" for e in events(log)) if log.exists() else 0
