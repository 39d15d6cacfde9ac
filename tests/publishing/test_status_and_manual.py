"""``bot status`` and ``bot publish`` on a campaign folder whose account lives on the X sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot import cli
from bot.campaign import load
from bot.cli.status import collect, render
from bot.ledger.db import default_url, open_engine
from bot.ledger.publications import Ledger
from bot.publishing.publisher import AdapterPool, Outcome, Publisher
from tests.publishing.support import occurrence, unique

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives platform servers over loopback


@pytest.fixture
def folder(tmp_path, x_sandbox, monkeypatch) -> tuple[Path, str, object]:
    """A campaign folder: one X sandbox account, a launch post, a two-video queue, one schedule."""
    remote = x_sandbox.create_account(unique("status"))
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BOT_DATABASE_URL", raising=False)
    tag = unique("t")
    files = {
        "config/accounts.yaml": {"campaign": "free", "accounts": {remote.id: remote.entry}},
        "posts/launch.yaml": {"text": f"Free Andrei and Irina #FreeAndreiandIrina {tag}"},
        "posts/videos/001-first.yaml": {"text": f"Andrei has been behind bars for a year #FreeAndreiandIrina {tag}"},
        "posts/videos/002-second.yaml": {"text": f"Irina is a journalist, not a criminal #FreeAndreiandIrina {tag}"},
        "schedules/launch.yaml": {
            "timezone": "Europe/London",
            "window": {"start": "2022-01-12", "end": "2022-03-12"},
            "slots": [
                {"at": "2022-01-12T09:00", "post": "launch", "accounts": [remote.id]},
                {"every": "day", "times": ["10:00"], "queue": "videos", "accounts": [remote.id]},
            ],
        },
    }
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path, remote.id, remote


def test_status_shows_recent_failures_and_next(folder, clock):
    """Status lists the published post with its URL, the missed slot with its reason, and the next queue posts."""
    root, account, _ = folder
    campaign = load(root)
    engine = open_engine(default_url(root))
    ledger = Ledger(engine, clock)
    publisher = Publisher(campaign, ledger, AdapterPool(), clock, "w1")
    clock.set(NINE)
    published = publisher.fire(occurrence(NINE, "post:launch", [account]), account)
    clock.set(NINE + timedelta(days=1, hours=2))
    missed = publisher.fire(occurrence(NINE + timedelta(hours=1), "queue:videos", [account]), account)
    assert (published.outcome, missed.reason) == (Outcome.published, "missed")
    data = collect(campaign, ledger, clock.now(), limit=5, days=3)
    assert [(r["post"], r["account"], r["url"]) for r in data["recent"]] == [("launch", account, published.url)]
    assert [(r["state"], r["reason"], r["slot"]) for r in data["failures"]] == [
        ("skipped", "missed", "2022-01-12T10:00:00+00:00")
    ]
    assert [(n["local"], n["post"], n["accounts"]) for n in data["next"]] == [
        ("2022-01-14 10:00 GMT", "001-first", [account]),
        ("2022-01-15 10:00 GMT", "002-second", [account]),
        ("2022-01-16 10:00 GMT", None, [account]),
    ]
    assert data["counts"]["published"] == 1 and data["skip_reasons"] == {"skipped:missed": 1}
    text = render(data)
    assert published.url in text and "skipped: missed" in text and "001-first" in text
    publisher.adapters.close()
    engine.dispose()


def test_publish_command_posts_once_and_status_lists_it(folder, x_sandbox, capsys):
    """`bot publish` sends the post through the ledger; `bot status --json` then shows it as manual."""
    root, account, remote = folder
    assert cli.main(["--campaign", str(root), "publish", "launch", "--account", account]) == 0
    [post] = x_sandbox.posts(remote)
    assert f"published launch on {account}: {post.url}" in capsys.readouterr().out
    assert cli.main(["--campaign", str(root), "status", "--json", "--limit", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    [row] = data["recent"]
    assert (row["post"], row["manual"], row["url"], row["target"]) == ("launch", True, post.url, "post:launch")


def test_publish_command_names_unknown_posts_and_accounts(folder, capsys):
    """A mistyped post or account is refused with a suggestion, and nothing is claimed."""
    root, account, _ = folder
    assert cli.main(["--campaign", str(root), "publish", "lanch", "--account", account + "x"]) == 1
    err = capsys.readouterr().err
    assert "unknown post 'lanch' (did you mean 'launch'?)" in err
    assert f"unknown account '{account}x' (did you mean '{account}'?)" in err
    engine = open_engine(default_url(root))
    assert sum(Ledger(engine).counts().values()) == 0
    engine.dispose()


def test_publish_command_twice_publishes_once_and_again_makes_a_new_publication(folder, x_sandbox, capsys):
    """A second `bot publish` the same day posts nothing and names the first post; `--again` is a new publication."""
    root, account, remote = folder
    assert cli.main(["--campaign", str(root), "publish", "launch", "--account", account]) == 0
    capsys.readouterr()
    assert cli.main(["--campaign", str(root), "publish", "launch", "--account", account]) == 0
    [post] = x_sandbox.posts(remote)
    assert f"already published on {account} today: {post.url}" in capsys.readouterr().out
    # --again: a second publication on purpose (X then refuses the same text as a duplicate, as it would).
    assert cli.main(["--campaign", str(root), "publish", "launch", "--account", account, "--again"]) == 1
    capsys.readouterr()
    assert cli.main(["--campaign", str(root), "status", "--json", "--limit", "5"]) == 0
    failures = json.loads(capsys.readouterr().out)["failures"]
    assert [(f["post"], f["manual"], f["reason"]) for f in failures] == [("launch", True, "duplicate")]
    assert len(x_sandbox.posts(remote)) == 1
