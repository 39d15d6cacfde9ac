"""Issue 13: edits reach a slot only when whole, edits never publish a past, catch-up is spaced, start reports no past."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.ledger.schema import publications
from bot.worker.reload import Settling
from bot.worker.runtime import Worker
from tests.worker.campaigns import dump, write_campaign
from tests.worker.test_reload import good_campaign


@pytest.fixture
def account(x_sandbox, monkeypatch):
    """A fresh X account on the shared sandbox, its credentials in the environment, its limits lifted."""
    acc = x_sandbox.create_account(f"h{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


def _worker(root: Path, clock: FakeClock, **kw) -> Worker:
    worker = Worker(root, clock=clock, database_url=f"sqlite:///{root / 'ledger.db'}", threads=8, **kw)
    worker.start()
    worker.wait_idle()
    return worker


def _states(worker: Worker) -> list[tuple[str, str | None]]:
    with worker.ledger.engine.connect() as conn:
        query = sa.select(publications.c.state, publications.c.reason).order_by(publications.c.slot_at)
        return [(state, reason) for state, reason in conn.execute(query)]


def _wait_for(logs: list[dict], event: str, seconds: float = 30) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [e for e in logs if e["event"] == event]
        if found:
            return found
        time.sleep(0.02)  # waits for the watcher thread, not for a schedule
    return []


# ---- 1. edits reach a slot only when whole ----


def test_slow_rewrite_of_a_post_never_publishes_its_first_half(tmp_path, x_sandbox, account, monkeypatch) -> None:
    """A post file written half, paused past the settle time while open, then finished: its slot publishes the
    last good text and logs post_edit_too_late; the whole new text is loaded once the writer is done."""
    monkeypatch.setenv("BOT_RELOAD_SETTLE", "0.3")
    tag = uuid.uuid4().hex[:6]
    good_campaign(tmp_path, account, tag)
    clock = FakeClock(datetime(2022, 1, 12, 7, 59, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        with capture_logs() as logs:
            worker.watch()
            # The watcher needs a moment to observe: an unrelated post is added until a reload shows it does.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(e["event"] == "schedule_reloaded" for e in logs):
                dump(tmp_path / "posts" / "spare.yaml", {"text": f"Spare {tag} {time.monotonic()}"})
                _wait_for(logs, "schedule_reloaded", 1)
            assert any(e["event"] == "schedule_reloaded" for e in logs)
            logs.clear()
            with open(tmp_path / "posts" / "launch.yaml", "w", encoding="utf-8") as editor:
                editor.write(f"text: Statement {tag}, we do\n")  # valid YAML on its own
                editor.flush()
                time.sleep(1.0)  # the editor's pause: over three settle times, with the file still open
                clock.set(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
                worker.run_pending()
                editor.write("  NOT endorse the statement\n")
            reloaded = _wait_for(logs, "schedule_reloaded")
        assert [p.text for p in x_sandbox.posts(account) if p.text.startswith(("Launch", "Statement"))] == [
            f"Launch {tag} #FreeAndreiandIrina"
        ]
        [late] = [e for e in logs if e["event"] == "post_edit_too_late"]
        assert late["files"] == ["posts/launch.yaml"] and late["posts"] == ["launch"]
        assert reloaded and "posts/launch.yaml" in reloaded[0]["files"]
        assert worker.campaign.posts["launch"].text == (f"Statement {tag}, we do NOT endorse the statement")
    finally:
        worker.close()


def test_slot_of_a_post_left_broken_uses_the_last_good_version(tmp_path, x_sandbox, account) -> None:
    """A post file broken by an edit when its slot fires: the last good text goes out and post_edit_too_late says so."""
    tag = uuid.uuid4().hex[:6]
    good_campaign(tmp_path, account, tag)
    clock = FakeClock(datetime(2022, 1, 12, 7, 59, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        (tmp_path / "posts" / "launch.yaml").write_text("text: [half a list\n")
        with capture_logs() as logs:
            assert worker.reload_now(["posts/launch.yaml"]) is False
            clock.set(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
            worker.run_pending()
        assert [p.text for p in x_sandbox.posts(account) if p.text.startswith(("Launch", "Statement"))] == [
            f"Launch {tag} #FreeAndreiandIrina"
        ]
        [late] = [e for e in logs if e["event"] == "post_edit_too_late"]
        assert late["files"] == ["posts/launch.yaml"] and late["using"] == "the last good version"
    finally:
        worker.close()


def test_settling_uses_renamed_files_at_once_and_waits_for_files_written_in_place(tmp_path) -> None:
    """On an injected clock: a file renamed into place is ready at once; one written in place only after the
    settle time; one open for writing never, until it is closed."""
    (tmp_path / "posts").mkdir()
    post = tmp_path / "posts" / "a.yaml"
    post.write_text("text: old\n")
    now = [0.0]
    settling = Settling(tmp_path, settle=5.0, now=lambda: now[0])
    settling.remember()

    temp = tmp_path / "posts" / ".a.yaml.tmp"
    temp.write_text("text: renamed\n")
    os.replace(temp, post)
    settling.note(["posts/a.yaml"])
    assert settling.take_ready() == ["posts/a.yaml"]

    post.write_text("text: in place\n")
    settling.note(["posts/a.yaml"])
    assert settling.take_ready() is None
    now[0] += 4.9
    assert settling.take_ready() is None
    now[0] += 0.2
    assert settling.take_ready() == ["posts/a.yaml"]

    with open(post, "a", encoding="utf-8") as writer:
        writer.write("# more\n")
        writer.flush()
        settling.note(["posts/a.yaml"])
        now[0] += 60
        assert settling.take_ready() is None
        assert settling.pending() == {"posts/a.yaml"}
    now[0] += 60
    assert settling.take_ready() == ["posts/a.yaml"]


# ---- 5. no bursts ----


def test_every_minute_cron_added_by_an_edit_publishes_no_past(tmp_path, x_sandbox, account) -> None:
    """A `* * * * *` queue slot added by a reload at 10:00 publishes nothing for the hour before, then one a minute."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        queues={"minute": {f"{i:03d}": f"Minute {i} {tag}" for i in range(1, 80)}},
        schedules={
            "main": {"timezone": "UTC", "slots": [{"cron": "0 12 * * *", "queue": "minute", "accounts": [account.id]}]}
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 10, 0, 30, tzinfo=UTC))
    worker = _worker(tmp_path, clock)
    try:
        dump(
            tmp_path / "schedules" / "often.yaml",
            {
                "timezone": "UTC",
                "grace": "1h",
                "slots": [{"cron": "* * * * *", "queue": "minute", "accounts": [account.id]}],
            },
        )
        with capture_logs() as logs:
            assert worker.reload_now(["schedules/often.yaml"]) is True
            worker.run_pending()
        assert x_sandbox.posts(account) == []
        assert not [e for e in logs if e["event"] == "catch_up_planned"]
        clock.advance(30)
        worker.run_pending()
        assert [p.text for p in x_sandbox.posts(account)] == [f"Minute 1 {tag}"]
    finally:
        worker.close()


def test_catch_up_after_downtime_is_spaced_per_account_and_limited_per_platform(tmp_path, x_sandbox, account) -> None:
    """Ten slots missed while no worker ran: the newest three (the limit) go out two minutes apart, the
    seven older ones are recorded missed, and catch_up_planned says so."""
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        queues={"five": {f"{i:03d}": f"Five {i} {tag}" for i in range(1, 40)}},
        schedules={
            "main": {
                "timezone": "UTC",
                "grace": "1h",
                "slots": [{"cron": "*/5 * * * *", "queue": "five", "accounts": [account.id]}],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 8, 59, 30, tzinfo=UTC))
    first = _worker(tmp_path, clock, catch_up_limit=0)  # records the twelve slots before it as missed
    clock.set(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
    first.run_pending()  # publishes 09:00, then the worker is down until 09:52
    first.close()
    clock.set(datetime(2022, 1, 12, 9, 52, tzinfo=UTC))
    with capture_logs() as logs:
        worker = _worker(tmp_path, clock, catch_up_spacing=120, catch_up_limit=3)
    try:
        [plan] = [e for e in logs if e["event"] == "catch_up_planned"]
        assert (plan["count"], plan["per_platform"], plan["dropped"]) == (3, {"x": 3}, {"x": 7})
        assert plan["last_at"] == datetime(2022, 1, 12, 9, 56, tzinfo=UTC).isoformat()
        assert len(x_sandbox.posts(account)) == 2  # 09:00 before the downtime, and the first catch-up
        clock.advance(119)
        worker.run_pending()
        assert len(x_sandbox.posts(account)) == 2
        clock.advance(1)
        worker.run_pending()
        assert len(x_sandbox.posts(account)) == 3
        clock.advance(120)
        worker.run_pending()
        assert len(x_sandbox.posts(account)) == 5  # the last catch-up, and the 09:55 slot on time
        states = _states(worker)
        assert states.count(("skipped", "missed")) == 12 + 7
        assert states.count(("published", None)) == 5
    finally:
        worker.close()


def test_catch_up_limit_counts_slots_so_a_fan_out_due_at_start_goes_to_every_account(
    tmp_path, x_sandbox, monkeypatch
) -> None:
    """A worker started in the minute of a slot to five accounts, with a limit of one slot, publishes all five."""
    accounts = [x_sandbox.create_account(f"c{uuid.uuid4().hex[:6]}") for _ in range(5)]
    for acc in accounts:
        for name, value in acc.env.items():
            monkeypatch.setenv(name, value)
    write_campaign(
        tmp_path,
        accounts,
        posts={"launch": f"Launch {uuid.uuid4().hex[:6]} #FreeAndreiandIrina"},
        schedules={
            "main": {
                "timezone": "UTC",
                "slots": [{"at": "2022-01-12T09:00", "post": "launch", "accounts": [a.id for a in accounts]}],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 9, 0, 20, tzinfo=UTC))
    worker = _worker(tmp_path, clock, catch_up_spacing=120, catch_up_limit=1)
    try:
        assert worker.wait_idle(timeout=30)
        assert [len(x_sandbox.posts(a)) for a in accounts] == [1] * 5
        assert _states(worker) == [("published", None)] * 5
    finally:
        worker.close()


# ---- 10. worker_started ----


def test_worker_started_reports_no_next_slot_in_the_past(tmp_path, x_sandbox, account) -> None:
    """A one-off slot long past and a daily one ahead: worker_started's next_slot_at is the one ahead."""
    write_campaign(
        tmp_path,
        [account],
        posts={"old": "Old news", "daily": "Every day"},
        schedules={
            "main": {
                "timezone": "UTC",
                "slots": [
                    {"at": "2022-01-10T08:00", "post": "old", "accounts": [account.id]},
                    {"cron": "0 18 * * *", "post": "daily", "accounts": [account.id]},
                ],
            }
        },
    )
    clock = FakeClock(datetime(2022, 1, 12, 12, 0, tzinfo=UTC))
    with capture_logs() as logs:
        worker = _worker(tmp_path, clock)
    try:
        [started] = [e for e in logs if e["event"] == "worker_started"]
        assert datetime.fromisoformat(started["next_slot_at"]) == datetime(2022, 1, 12, 18, 0, tzinfo=UTC)
        assert datetime.fromisoformat(started["next_slot_at"]) >= datetime.fromisoformat(started["now"])
        worker.run_pending()
        assert x_sandbox.posts(account) == []  # the past one-off slot is not fired either
    finally:
        worker.close()
