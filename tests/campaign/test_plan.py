"""``bot plan``: the calendar, its JSON form, and the ledger's already-published queue posts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli
from bot.campaign import load
from bot.cli.plan import build, render
from bot.core.clock import FakeClock

NOW = datetime(2022, 1, 1, tzinfo=UTC)


def test_calendar_groups_by_local_day(campaign_dir: Path):
    """The calendar shows each local day, then time with zone, post, accounts and the text's first words."""
    text = render(build(load(campaign_dir), date(2022, 1, 12), 2, NOW, None))
    assert text.splitlines() == [
        "Wednesday 12 January 2022",
        "  09:00 GMT  launch                       x-index, mastodon-a19, bluesky-index     "
        "One year ago Andrei Aliaksandrau and Irina Zlobina ...",
        "  12:00 GMT  001-why                      mastodon-a19                             "
        "Andrei Aliaksandrau and Irina Zlobina are journalists. They ...",
        "  16:00 GMT  001-supporter                x-index, bluesky-index                   "
        "Our colleague Andrei has been behind bars for ...",
        "",
        "Thursday 13 January 2022",
        "  12:00 GMT  002-act                      mastodon-a19                             "
        "Write to your representative today and ask for ...",
        "  16:00 GMT  002-supporter                x-index, bluesky-index                   "
        "Irina reported the truth. Journalism is not a ...",
    ]


def test_days_limit_the_period(campaign_dir: Path):
    """``--days 1`` from the 13th shows only the 13th, and queues still count the 12th's slots."""
    entries = build(load(campaign_dir), date(2022, 1, 13), 1, NOW, None)
    assert [(e.local.day, e.post) for e in entries] == [(13, "002-act"), (13, "002-supporter")]


def test_plan_after_now_consumes_queue_from_now(campaign_dir: Path):
    """Planning from a later day still gives earlier slots their posts first."""
    entries = build(load(campaign_dir), date(2022, 1, 13), 1, datetime(2022, 1, 12, 10, tzinfo=UTC), None)
    assert [e.post for e in entries] == ["002-act", "002-supporter"]


def test_json_output(campaign_dir: Path, capsys: pytest.CaptureFixture[str]):
    """``--json`` prints the same entries for tools, with UTC and local times."""
    code = cli.main(["--campaign", str(campaign_dir), "plan", "--from", "2022-01-12", "--days", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [d["post"] for d in data] == ["launch", "001-why", "001-supporter"]
    assert data[0] == {
        "at": "2022-01-12T09:00:00+00:00",
        "local": "2022-01-12T09:00:00+00:00",
        "timezone": "Europe/London",
        "schedule": "launch",
        "slot": 0,
        "target": "post:launch",
        "post": "launch",
        "accounts": ["x-index", "mastodon-a19", "bluesky-index"],
        "languages": {"x-index": "en", "mastodon-a19": "en", "bluesky-index": "en"},
        "text": "One year ago Andrei Aliaksandrau and Irina Zlobina ...",
    }


def test_plan_reads_the_ledger(campaign_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """A queue post the ledger has published on an account is not planned again for that account."""
    monkeypatch.delenv("BOT_DATABASE_URL", raising=False)
    from bot.ledger.db import default_url, open_engine
    from bot.ledger.publications import Ledger, PublicationKey

    clock = FakeClock(datetime(2022, 1, 5, tzinfo=UTC))
    ledger = Ledger(open_engine(default_url(campaign_dir)), clock)
    key = PublicationKey("test-campaign", datetime(2022, 1, 5, 16, tzinfo=UTC), "queue:videos", "x-index")
    row = ledger.claim(key, "test", timedelta(minutes=5), choose=lambda used: "001-supporter")
    ledger.record_published(row.id, "remote-1", "https://x.example/1")

    cli.main(["--campaign", str(campaign_dir), "plan", "--from", "2022-01-12", "--days", "1", "--json"])
    videos = [(d["post"], d["accounts"]) for d in json.loads(capsys.readouterr().out) if d["target"] == "queue:videos"]
    assert videos == [("002-supporter", ["x-index"]), ("001-supporter", ["bluesky-index"])]


def test_plan_refuses_an_invalid_campaign(campaign_dir: Path, capsys: pytest.CaptureFixture[str]):
    """With campaign errors, plan prints them and exits 1 instead of a wrong calendar."""
    (campaign_dir / "posts/launch.yaml").write_text("txt: x\n")
    assert cli.main(["--campaign", str(campaign_dir), "plan"]) == 1
    assert "posts/launch.yaml:1: unknown key 'txt' (did you mean 'text'?)" in capsys.readouterr().out


def test_plan_never_creates_a_ledger(campaign_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Without a database, plan works from the files and leaves no state/ folder behind."""
    monkeypatch.delenv("BOT_DATABASE_URL", raising=False)
    assert cli.main(["--campaign", str(campaign_dir), "plan", "--from", "2022-01-12"]) == 0
    assert not (campaign_dir / "state").exists()


def test_calendar_across_summer_time(campaign_dir: Path):
    """Across the spring change a daily 16:00 slot stays at 16:00 local, shown as GMT then BST."""
    path = campaign_dir / "schedules/launch.yaml"
    text = path.read_text().replace("end: 2022-01-13", "end: 2022-03-28").replace("2022-01-12", "2022-03-26")
    path.write_text(text.replace("start: 2022-03-26T09:00", "start: 2022-03-26"))
    entries = build(load(campaign_dir), date(2022, 3, 26), 3, NOW, None)
    videos = [
        (e.local.strftime("%d %H:%M %Z"), e.local.astimezone(UTC).hour) for e in entries if e.target == "queue:videos"
    ]
    assert videos == [("26 16:00 GMT", 16), ("27 16:00 BST", 15), ("28 16:00 BST", 15)]
