"""`bot run` killed with SIGKILL at random moments, and dying between the platform's answer and the ledger write."""

from __future__ import annotations

import random
import signal
import subprocess
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.ledger.db import open_engine
from bot.ledger.schema import publications
from bot.publishing.faults import EXIT_CODE
from tests.worker.campaigns import env_for, events, iso, wait_for_event, write_campaign

SPEED = 1000.0  # campaign seconds per wall second: 200 one-minute slots take 12 s
T0 = datetime(2022, 1, 12, 8, 59, tzinfo=UTC)
SLOTS = 200


def hourly_campaign(root, account, tag: str, n: int = SLOTS):
    """One account, a queue of ``n`` posts, one slot a minute from 09:00 UTC, 12 hours' grace."""
    return write_campaign(
        root,
        [account],
        queues={"q": {f"{i:03d}": f"Post {i} {tag} #FreeAndreiandIrina" for i in range(n)}},
        schedules={
            "minutes": {
                "timezone": "UTC",
                "grace": "12h",
                "window": {"start": "2022-01-12", "end": "2022-01-12"},
                "slots": [{"cron": "* 9-13 * * *", "queue": "q", "accounts": [account.id]}],
            }
        },
    )


def published_once(sandbox, account, tag: str, n: int = SLOTS) -> None:
    """The platform holds each of the ``n`` queue posts exactly once, and nothing else."""
    texts = Counter(p.text for p in sandbox.posts(account))
    assert {t: c for t, c in texts.items() if c > 1} == {}
    assert set(texts) == {f"Post {i} {tag} #FreeAndreiandIrina" for i in range(n)}


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_doubles_a_post(tmp_path, x_sandbox, workers) -> None:
    """Across repeated SIGKILLs and exits right after the platform accepted a post, 200 slots publish exactly once."""
    account = x_sandbox.create_account(f"k{uuid.uuid4().hex[:8]}")
    x_sandbox.lift_limits(account)  # 200 posts within minutes: more than X lets one person post
    tag = uuid.uuid4().hex[:6]
    hourly_campaign(tmp_path, account, tag)
    log = tmp_path / "worker.log"
    rng = random.Random(20220112)
    end = T0 + timedelta(minutes=SLOTS + 2)
    position = T0  # campaign time; it moves while a worker runs, and by an outage between runs
    kills = faults = runs = 0
    while position < end - timedelta(minutes=20) and runs < 5:
        runs += 1
        # Even runs die by the fault hook right after a publish call returned; odd runs by SIGKILL.
        fault = {"BOT_FAULT_EXIT_AFTER_PUBLISH": "0.1", "BOT_FAULT_SEED": str(runs)} if runs % 2 == 0 else {}
        before = sum(e["event"] == "post_published" for e in events(log)) if log.exists() else 0
        proc = workers.spawn(tmp_path, env_for([account], **fault), log, *_clock_args(position, end))
        started = wait_for_event(log, "worker_started", runs, proc)
        publishing = wait_for_event(log, "post_published", before + 1, proc) if started else None
        if publishing is None:  # the fault fired before this run logged anything
            assert proc.wait() == EXIT_CODE
            faults += 1
        else:
            try:
                code = proc.wait(timeout=rng.uniform(0.1, 1.0) if not fault else 30)
                assert code == EXIT_CODE, f"worker exited {code} on its own"
                faults += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        # Campaign time went on meanwhile; an outage (within grace) leaves slots to publish late.
        now = max(
            (datetime.fromisoformat(e["now"]) for e in events(log) if e["event"] == "worker_heartbeat"),
            default=position,
        )
        position = max(position, now) + timedelta(minutes=rng.uniform(1, 10))
    # A last, undisturbed run to the end takes over what the dead workers left claimed.
    final = workers.spawn(
        tmp_path, env_for([account]), log, *_clock_args(position, max(end, position) + timedelta(minutes=30))
    )
    assert final.wait(timeout=120) == 0

    assert kills >= 1 and faults >= 1 and kills + faults >= 3, (kills, faults)
    published_once(x_sandbox, account, tag)
    engine = open_engine(f"sqlite:///{tmp_path / 'state' / 'bot.db'}")
    with engine.connect() as conn:
        rows = {
            post: (state, reason)
            for post, state, reason in conn.execute(
                sa.select(publications.c.post, publications.c.state, publications.c.reason).where(
                    publications.c.post.is_not(None)
                )
            )
        }
    assert sorted(rows) == [f"{i:03d}" for i in range(SLOTS)]
    # Even a request still in the server's hands when its worker died (landing after the next worker's
    # look-up, so X refuses the retry as a duplicate) ends recorded as published, with the live post's id.
    assert set(rows.values()) == {("published", None)}
    reconciled = [e for e in events(log) if e["event"] == "post_published" and e.get("reconciled")]
    assert len(reconciled) >= 1  # posts left unrecorded by dead workers were found on the platform, not re-sent


def _clock_args(position: datetime, end: datetime) -> list[str]:
    # --until bounds every run, so a worker a failed test forgot still ends by itself.
    return [
        "--clock-start",
        iso(position),
        "--clock-speed",
        str(SPEED),
        "--heartbeat",
        "300",
        "--lease",
        "0.3",
        "--threads",
        "16",
        "--until",
        iso(end + timedelta(minutes=30)),
    ]
