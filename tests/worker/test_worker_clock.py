"""The worker in-process on a FakeClock against the X sandbox: slots publish at their clock times, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.ledger.schema import publications
from bot.worker.runtime import Worker
from tests.worker.campaigns import write_campaign

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def account(x_sandbox, monkeypatch):
    """A fresh X account on the shared sandbox, its credentials in the environment."""
    acc = x_sandbox.create_account(f"w{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


def _worker(root, clock, **kw) -> Worker:
    worker = Worker(root, clock=clock, database_url=f"sqlite:///{root / 'ledger.db'}", threads=8, **kw)
    worker.start()
    return worker


def _ledger(worker: Worker) -> list:
    with worker.ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(publications).order_by(publications.c.slot_at)))


def _texts(x_sandbox, account) -> list[str]:
    return [p.text for p in x_sandbox.posts(account)]


def test_slots_publish_at_their_clock_times(tmp_path, x_sandbox, account) -> None:
    """A fixed slot and a daily queue slot publish when the FakeClock reaches them, not a second earlier."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={"launch": f"Launch {tag} #FreeAndreiandIrina"},
        queues={"daily": {f"{i:03d}-day": f"Day {i} {tag} #FreeAndreiandIrina" for i in range(1, 6)}},
        schedules={
            "launch": {
                "timezone": "Europe/London",
                "window": {"start": "2022-01-12", "end": "2022-01-20"},
                "slots": [
                    {"at": "2022-01-12T09:00", "post": "launch", "accounts": [account.id]},
                    {"every": "day", "times": ["10:00", "16:00"], "queue": "daily", "accounts": [account.id]},
                ],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        worker.run_pending()
        clock.set(datetime(2022, 1, 12, 8, 59, 59, tzinfo=UTC))
        worker.run_pending()
        assert _texts(x_sandbox, account) == []
        clock.advance(1)
        worker.run_pending()
        assert _texts(x_sandbox, account) == [f"Launch {tag} #FreeAndreiandIrina"]
        clock.set(datetime(2022, 1, 12, 10, 0, tzinfo=UTC))
        worker.run_pending()
        clock.set(datetime(2022, 1, 12, 16, 0, tzinfo=UTC))
        worker.run_pending()
        assert _texts(x_sandbox, account)[1:] == [
            f"Day 1 {tag} #FreeAndreiandIrina",
            f"Day 2 {tag} #FreeAndreiandIrina",
        ]
        rows = _ledger(worker)
        assert [(r.slot_at.hour, r.state) for r in rows] == [(9, "published"), (10, "published"), (16, "published")]
    finally:
        worker.close()


def test_dst_change_neither_skips_nor_doubles_a_slot(tmp_path, x_sandbox, account) -> None:
    """A 01:30 London cron slot across the October 2022 clock change publishes once per local day."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        queues={"night": {f"{i:03d}": f"Night {i} {tag}" for i in range(1, 10)}},
        schedules={
            "night": {
                "timezone": "Europe/London",
                "window": {"start": "2022-10-28", "end": "2022-11-01"},
                "slots": [{"cron": "30 1 * * *", "queue": "night", "accounts": [account.id]}],
            }
        },
    )
    clock = FakeClock(datetime(2022, 10, 27, 23, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        while clock.now() < datetime(2022, 11, 2, 12, 0, tzinfo=UTC):
            clock.advance(900)
            worker.run_pending()
        rows = _ledger(worker)
        local = [r.slot_at.astimezone(LONDON) for r in rows]
        assert [t.strftime("%m-%d %H:%M") for t in local] == [
            "10-28 01:30",
            "10-29 01:30",
            "10-30 01:30",
            "10-31 01:30",
            "11-01 01:30",
        ]
        assert {r.state for r in rows} == {"published"}
        assert len(_texts(x_sandbox, account)) == 5
    finally:
        worker.close()


def test_slot_missed_while_down_is_late_within_grace_and_skipped_beyond(tmp_path, x_sandbox, account) -> None:
    """After an outage, a slot 30 min old publishes late; one 2.5 h old is recorded and logged as missed."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={name: f"{name} {tag}" for name in ("first", "second", "third")},
        schedules={
            "day": {
                "timezone": "UTC",
                "slots": [
                    {"at": "2022-01-12T09:00", "post": "first", "accounts": [account.id]},
                    {"at": "2022-01-12T10:00", "post": "second", "accounts": [account.id]},
                    {"at": "2022-01-12T12:00", "post": "third", "accounts": [account.id]},
                ],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    worker.run_pending()
    worker.close()  # the worker goes down after the 09:00 slot...
    clock.set(datetime(2022, 1, 12, 12, 30, tzinfo=UTC))
    with capture_logs() as logs:
        worker = _worker(tmp_path, clock)  # ...and comes back at 12:30
        worker.run_pending()
    try:
        rows = {r.post: r for r in _ledger(worker)}
        assert (rows["first"].state, rows["second"].state, rows["third"].state) == ("published", "skipped", "published")
        assert rows["second"].reason == "missed"
        assert _texts(x_sandbox, account) == [f"first {tag}", f"third {tag}"]
        skipped = [e for e in logs if e["event"] == "publish_skipped"]
        assert [(e["post"], e["reason"]) for e in skipped] == [("second", "missed")]
    finally:
        worker.close()


def test_running_worker_whose_clock_jumps_never_drops_silently(tmp_path, x_sandbox, account) -> None:
    """A clock jump over two slots (a suspended host) publishes the one within grace and records the other missed."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={"old": f"old {tag}", "recent": f"recent {tag}"},
        schedules={
            "day": {
                "timezone": "UTC",
                "grace": "30m",
                "slots": [
                    {"at": "2022-01-12T09:00", "post": "old", "accounts": [account.id]},
                    {"at": "2022-01-12T10:00", "post": "recent", "accounts": [account.id]},
                ],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        worker.run_pending()
        clock.set(datetime(2022, 1, 12, 10, 20, tzinfo=UTC))
        worker.run_pending()
        rows = {r.post: (r.state, r.reason) for r in _ledger(worker)}
        assert rows == {"old": ("skipped", "missed"), "recent": ("published", None)}
        assert _texts(x_sandbox, account) == [f"recent {tag}"]
    finally:
        worker.close()


def test_heartbeat_logs_counts_at_its_clock_interval(tmp_path, x_sandbox, account) -> None:
    """worker_heartbeat appears every 60 clock seconds with published, failed, pending and the next slot."""
    write_campaign(
        tmp_path,
        [account],
        posts={"p": f"heartbeat {uuid.uuid4().hex[:6]}"},
        schedules={
            "s": {
                "timezone": "UTC",
                "slots": [
                    {"at": "2022-01-12T08:01", "post": "p", "accounts": [account.id]},
                    {"at": "2022-01-13T08:00", "post": "p", "accounts": [account.id]},
                ],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock, heartbeat=60)
    try:
        with capture_logs() as logs:
            for _ in range(6):
                clock.advance(30)
                worker.run_pending()
        beats = [e for e in logs if e["event"] == "worker_heartbeat"]
        assert len(beats) == 3
        assert beats[-1]["published"] == 1 and beats[-1]["failed"] == 0 and beats[-1]["pending"] == 0
        assert beats[-1]["next_slot_at"] == (datetime(2022, 1, 13, 8, 0, tzinfo=UTC)).isoformat()
    finally:
        worker.close()


def test_missing_credentials_refuse_to_start_naming_the_variables(tmp_path, x_sandbox, monkeypatch) -> None:
    """A credential variable that is not set stops `run` from starting; the message names it, never a value."""
    acc = x_sandbox.create_account(f"w{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    missing = sorted(acc.env)[0]
    monkeypatch.delenv(missing)
    write_campaign(
        tmp_path,
        [acc],
        posts={"p": "x"},
        schedules={"s": {"timezone": "UTC", "slots": [{"at": "2022-01-12T09:00", "post": "p", "accounts": [acc.id]}]}},
    )
    from bot.core.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        Worker(
            tmp_path, clock=FakeClock(datetime(2022, 1, 12, tzinfo=UTC)), database_url=f"sqlite:///{tmp_path / 'l.db'}"
        )
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("config/accounts.yaml:")
    assert caught.value.problems[0].endswith(f": environment variable {missing} is not set")
    assert all(value not in str(caught.value) for value in acc.env.values())


def test_retry_later_becomes_a_one_shot_job_at_its_time(tmp_path, x_sandbox, account) -> None:
    """A 503 from the platform schedules a one-shot retry job; when the clock reaches it, the post goes out once."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={"p": f"retry {tag}"},
        schedules={
            "s": {"timezone": "UTC", "slots": [{"at": "2022-01-12T09:00", "post": "p", "accounts": [account.id]}]}
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        x_sandbox.fail_next("unavailable", path="/2/tweets")
        worker.run_pending()
        [retry] = [job for job in worker.scheduler.get_jobs() if job.id.startswith("retry:")]
        assert _texts(x_sandbox, account) == []
        [row] = _ledger(worker)
        assert (row.state, row.next_attempt_at) == ("retrying", retry.next_run_time)
        clock.set(retry.next_run_time)
        worker.run_pending()
        assert _texts(x_sandbox, account) == [f"retry {tag}"]
        assert [r.state for r in _ledger(worker)] == ["published"]
    finally:
        worker.close()


def test_restart_picks_up_a_pending_retry_from_the_ledger(tmp_path, x_sandbox, account) -> None:
    """A retry left in the ledger by a stopped worker is published by the next worker once its time has come."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={"p": f"resumed {tag}"},
        schedules={
            "s": {"timezone": "UTC", "slots": [{"at": "2022-01-12T09:00", "post": "p", "accounts": [account.id]}]}
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    x_sandbox.fail_next("unavailable", path="/2/tweets")
    worker.run_pending()
    [row] = _ledger(worker)
    worker.close()
    assert row.state == "retrying"
    clock.set(row.next_attempt_at)
    worker = _worker(tmp_path, clock)
    try:
        worker.wait_idle()
        assert _texts(x_sandbox, account) == [f"resumed {tag}"]
        assert [r.state for r in _ledger(worker)] == ["published"]
    finally:
        worker.close()


def test_slot_moved_to_a_time_just_past_is_not_published_on_reload(tmp_path, x_sandbox, account) -> None:
    """Editing a future slot to a time 10 minutes ago publishes nothing: a slot that only exists since an edit
    was never missed (issue 13.5: no retroactive publications)."""
    tag = uuid.uuid4().hex[:6]
    schedule = {"timezone": "UTC", "slots": [{"at": "2022-01-12T11:00", "post": "p", "accounts": [account.id]}]}
    write_campaign(tmp_path, [account], posts={"p": f"moved {tag}"}, schedules={"s": schedule})
    clock = FakeClock(datetime(2022, 1, 12, 9, 30, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        schedule["slots"][0]["at"] = "2022-01-12T09:20"
        write_campaign(tmp_path, [account], posts={"p": f"moved {tag}"}, schedules={"s": schedule})
        assert worker.reload_now() is True
        worker.run_pending()
        clock.advance(3600)
        worker.run_pending()
        assert _texts(x_sandbox, account) == []
        assert _ledger(worker) == []
    finally:
        worker.close()


@pytest.mark.slow
def test_a_slow_account_does_not_hold_up_the_others(tmp_path, x_sandbox, monkeypatch) -> None:
    """In one slot, an account on a server answering in 4 s does not delay an account on a fast server."""
    from sandboxes.x.sandbox import XSandbox

    with XSandbox(latency=4.0) as slow_server:
        slow = slow_server.create_account(f"slow{uuid.uuid4().hex[:6]}")
        fast = x_sandbox.create_account(f"fast{uuid.uuid4().hex[:6]}")
        for name, value in {**slow.env, **fast.env}.items():
            monkeypatch.setenv(name, value)
        write_campaign(
            tmp_path,
            [slow, fast],
            posts={"p": f"fan-out {uuid.uuid4().hex[:6]}"},
            schedules={
                "s": {
                    "timezone": "UTC",
                    "slots": [{"at": "2022-01-12T09:00", "post": "p", "accounts": [slow.id, fast.id]}],
                }
            },
        )
        clock = FakeClock(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
        worker = _worker(tmp_path, clock)
        try:
            while not x_sandbox.posts(fast):
                assert worker.wait_idle(timeout=0.02) is False, "the fast account was never published"
            assert slow_server.posts(slow) == []  # still waiting for the slow server while the fast post is out
            worker.wait_idle()
            assert len(slow_server.posts(slow)) == 1
        finally:
            worker.close()
