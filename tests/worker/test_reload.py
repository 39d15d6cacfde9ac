"""Staff edit files of a running worker: valid edits swap the jobs, invalid ones are refused and logged."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bot.campaign import load
from bot.core.clock import FakeClock
from bot.core.errors import ConfigError
from bot.ledger.schema import publications
from bot.worker.runtime import Worker
from tests.worker.campaigns import dump, write_campaign

SCHEDULE = """\
timezone: UTC
grace: 10m
window: {{start: 2022-01-12, end: 2022-01-20}}
slots:
  - at: 2022-01-12T08:00
    post: launch
    accounts: [{acc}]
  - cron: "0 * * * *"
    queue: hourly
    accounts: [{acc}]
"""


def good_campaign(root: Path, account, tag: str) -> None:
    """Launch post at 08:00 and an hourly queue of 40 posts, on one account; 10 minutes' grace."""
    write_campaign(
        root,
        [account],
        posts={"launch": f"Launch {tag} #FreeAndreiandIrina"},
        queues={"hourly": {f"{i:03d}-hour": f"Hour {i} {tag} #FreeAndreiandIrina" for i in range(1, 41)}},
        schedules={},
    )
    (root / "schedules" / "main.yaml").write_text(SCHEDULE.format(acc=account.id))


S = "schedules/main.yaml"
ACC = "{acc}"
# (file, new content, a word the refusal must contain): each makes the whole campaign invalid.
EDITS: list[tuple[str, str, str]] = [
    (S, SCHEDULE.replace("UTC", "Europe/Londn"), "Europe/Londn"),
    (S, SCHEDULE.replace("slots:", "slotz:"), "slotz"),
    (S, SCHEDULE.replace("post: launch", "post: lanch"), "lanch"),
    (S, SCHEDULE.replace("queue: hourly", "queue: hourli"), "hourli"),
    (S, SCHEDULE.replace('"0 * * * *"', '"61 * * * *"'), "61"),
    (S, SCHEDULE.replace('"0 * * * *"', '"0 * * *"'), "got 4 fields"),
    (S, SCHEDULE.replace("2022-01-12T08:00", "2022-13-12T08:30"), "2022-13-12"),
    (S, SCHEDULE.replace("slots:", "slots: ["), "YAML syntax error"),
    (S, SCHEDULE.replace("start: 2022-01-12", "start: 2022-01-32"), "2022-01-32"),
    (S, SCHEDULE.replace("accounts: [{acc}]\n  - cron", "accounts: [x-nobody]\n  - cron"), "x-nobody"),
    (S, SCHEDULE.replace("grace: 10m", "grace: soon"), "soon"),
    (S, SCHEDULE.replace('cron: "0 * * * *"', "every: fortnight\n    times: ['10:00']"), "fortnight"),
    (S, SCHEDULE.replace('cron: "0 * * * *"', "every: day\n    times: ['25:00']"), "25:00"),
    (S, SCHEDULE.replace("post: launch", "post: launch\n    queue: hourly"), "both post and queue"),
    (S, SCHEDULE.replace("    post: launch\n", ""), "neither post nor queue"),
    (S, SCHEDULE.replace("2022-01-12T08:00", "2021-06-01T08:30"), "outside the window"),
    (S, "- just\n- a list\n", "expected a mapping"),
    (S, SCHEDULE.replace("  - at:", "\t- at:"), "YAML syntax error"),
    (S, SCHEDULE.replace("accounts: [{acc}]\n  - cron", "accounts: []\n  - cron"), "accounts: is empty"),
    (S, SCHEDULE.replace("end: 2022-01-20", "end: someday"), "someday"),
    ("posts/launch.yaml", "txt: Launch with a typo in the key\n", "txt"),
    ("posts/launch.yaml", "text: ''\n", "text: is empty"),
    (
        "posts/launch.yaml",
        "text: Launch\nmedia:\n  - file: media/nothing-here.png\n    alt: A banner\n",
        "nothing-here.png",
    ),
    ("posts/launch.yaml", "text: Launch\nmedia:\n  - file: ../../etc/passwd\n    alt: x\n", "etc/passwd"),
    ("posts/launch.yaml", "text: " + "long words " * 40 + "\n", "too long for"),
    ("posts/launch.yaml", "text: Launch\nlink: not a url\n", "not a web address"),
    ("posts/hourly/005-hour.yaml", "text: [unclosed\n", "YAML syntax error"),
    ("posts/hourly/launch.yaml", "text: the same id as posts/launch.yaml\n", "already used by posts/launch.yaml"),
    ("config/accounts.yaml", "accounts:\n  {acc}:\n    platform: xx\n", "xx"),
    ("config/accounts.yaml", "acounts: {{}}\n", "acounts"),
]
LOCATED = re.compile(r"^[\w./-]+\.yaml:\d+: ")


@pytest.fixture
def running(tmp_path, x_sandbox, monkeypatch):
    """A worker on a FakeClock at 07:59 running the good campaign; yields (worker, clock, account, tag)."""
    account = x_sandbox.create_account(f"r{uuid.uuid4().hex[:8]}")
    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    tag = uuid.uuid4().hex[:6]
    good_campaign(tmp_path, account, tag)
    clock = FakeClock(datetime(2022, 1, 12, 7, 59, tzinfo=UTC))
    worker = Worker(tmp_path, clock=clock, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=8)
    worker.start()
    worker.wait_idle()
    yield worker, clock, account, tag
    worker.close()


def _published(worker: Worker) -> list[str]:
    with worker.ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(publications.c.post).where(publications.c.state == "published").order_by(publications.c.slot_at)
        )
        return [post for (post,) in rows]


def test_thirty_invalid_edits_are_rejected_and_the_last_good_campaign_keeps_publishing(
    running, tmp_path, x_sandbox
) -> None:
    """Each of 30 invalid edits logs schedule_rejected with `bot check`'s path:line: messages; hourly posts go on."""
    worker, clock, account, tag = running
    assert len(EDITS) == 30
    clock.advance(60)
    worker.run_pending()
    rejected = []
    for i, (rel, content, word) in enumerate(EDITS):
        path = tmp_path / rel
        original = path.read_text() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.format(acc=account.id))
        with pytest.raises(ConfigError) as expected:
            load(tmp_path)
        with capture_logs() as logs:
            assert worker.reload_now([rel]) is False
            clock.advance(3600)  # an hour passes with the bad file in place: the hourly slot still publishes
            worker.run_pending()
        events = [e for e in logs if e["event"] == "schedule_rejected"]
        assert len(events) == 1, (i, rel)
        assert events[0]["problems"] == expected.value.problems
        assert all(LOCATED.match(p) for p in events[0]["problems"]), events[0]["problems"]
        assert any(word in p for p in events[0]["problems"]), (word, events[0]["problems"])
        rejected.append(events[0])
        if original is None:
            path.unlink()
        else:
            path.write_text(original)
        assert worker.reload_now([rel]) is True
    assert len(rejected) == 30
    published = _published(worker)
    assert sorted(published) == sorted(["launch", *[f"{i:03d}-hour" for i in range(1, 32)]])
    texts = [p.text for p in x_sandbox.posts(account)]
    assert len(texts) == len(set(texts)) == 32


def test_valid_edit_swaps_jobs_and_reports_what_changed(running, tmp_path, x_sandbox) -> None:
    """Adding a schedule and removing a slot logs schedule_reloaded with the added and removed job ids."""
    worker, clock, account, tag = running
    dump(tmp_path / "posts" / "extra.yaml", {"text": f"Extra {tag}"})
    dump(
        tmp_path / "schedules" / "extra.yaml",
        {
            "timezone": "UTC",
            "slots": [{"at": "2022-01-12T08:45", "post": "extra", "accounts": [account.id]}],
        },
    )
    (tmp_path / "schedules" / "main.yaml").write_text(
        SCHEDULE.format(acc=account.id).split("  - cron")[0]  # drop the hourly slot
    )
    with capture_logs() as logs:
        assert worker.reload_now() is True
    [event] = [e for e in logs if e["event"] == "schedule_reloaded"]
    assert (event["added"], event["removed"], event["changed"]) == (["slot:extra#0"], ["slot:main#1"], [])
    for hour, minute in ((8, 0), (8, 45), (9, 0), (10, 0)):
        clock.set(datetime(2022, 1, 12, hour, minute, tzinfo=UTC))
        worker.run_pending()
    assert sorted(_published(worker)) == ["extra", "launch"]


def test_editing_published_post_text_does_not_publish_it_again(running, tmp_path, x_sandbox) -> None:
    """After the launch post went out, changing its text and reloading publishes nothing new for that slot."""
    worker, clock, account, tag = running
    clock.set(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker.run_pending()
    dump(tmp_path / "posts" / "launch.yaml", {"text": f"Launch, reworded {tag}"})
    assert worker.reload_now() is True
    clock.advance(60)
    worker.recover_missed()  # what a restart would do: the slot is within grace, yet already done
    worker.run_pending()
    texts = [p.text for p in x_sandbox.posts(account)]
    assert sorted(texts) == sorted([f"Launch {tag} #FreeAndreiandIrina", f"Hour 1 {tag} #FreeAndreiandIrina"])


def test_real_file_watcher_reloads_on_save(running, tmp_path, monkeypatch) -> None:
    """With watchfiles running, saving a schedule file logs schedule_reloaded without any call from the test."""
    worker, clock, account, tag = running
    monkeypatch.setenv("BOT_RELOAD_SETTLE", "0.2")  # saved again every half second: it must settle in between
    with capture_logs() as logs:
        worker.watch()
        text = SCHEDULE.format(acc=account.id).replace("08:00", "08:40")
        deadline = time.monotonic() + 60
        # The watcher thread needs a moment to start observing: save again every half second until it reacts.
        while time.monotonic() < deadline and not any(e["event"] == "schedule_reloaded" for e in logs):
            (tmp_path / "schedules" / "main.yaml").write_text(text)
            for _ in range(10):
                if any(e["event"] == "schedule_reloaded" for e in logs):
                    break
                time.sleep(0.05)
        reloaded = [e for e in logs if e["event"] == "schedule_reloaded"]
    assert reloaded and reloaded[0]["changed"] == ["slot:main#0"]
    assert "schedules/main.yaml" in reloaded[0]["files"]


def test_worker_runs_tracking_and_hands_it_reloaded_campaigns(tmp_path, x_sandbox, monkeypatch) -> None:
    """The worker's tracking thread reshares a tagged supporter post, and takes the campaign of a valid reload."""
    account = x_sandbox.create_account(f"t{uuid.uuid4().hex[:8]}")
    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    tag = f"Tag{uuid.uuid4().hex[:8]}"
    good_campaign(tmp_path, account, tag)
    dump(
        tmp_path / "config" / "reshare.yaml",
        {
            "track": [{"hashtags": [tag], "accounts": [account.id]}],
            "policy": {
                "skip": ["replies", "reshares", "own", "sensitive"],
                "max_per_hour": 4,
                "max_per_day": 20,
                "mode": "auto",
            },
        },
    )
    supporter = x_sandbox.create_account(f"sup{uuid.uuid4().hex[:6]}")
    wanted = x_sandbox.post_as(supporter, f"Free Andrei and Irina #{tag}")
    x_sandbox.index()
    clock = FakeClock(datetime(2022, 1, 12, 7, 59, tzinfo=UTC))
    worker = Worker(tmp_path, clock=clock, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=8)
    worker.start()
    try:
        worker.start_tracking()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [p for p in x_sandbox.posts(account) if p.reshare_of]:
            time.sleep(0.05)  # the tracking thread polls at once; this waits for it, not for a schedule
        assert [p.reshare_of for p in x_sandbox.posts(account) if p.reshare_of] == [wanted]
        dump(tmp_path / "posts" / "extra.yaml", {"text": f"Extra {tag}"})
        assert worker.reload_now() is True
        assert "extra" in worker.tracker.campaign.posts
    finally:
        worker.close()
    assert not worker._tracking.is_alive()
