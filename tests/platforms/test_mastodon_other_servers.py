"""The worker and `bot check --online` against a Mastodon-API server that is not Mastodon (the gateway answering as Takahē)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bot import cli
from bot.core.clock import FakeClock
from bot.worker.runtime import Worker
from sandboxes.base import SandboxAccount
from sandboxes.mastodon.sandbox import MastodonSandbox
from tests.worker.campaigns import REPO, dump, write_campaign

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives a platform server over loopback


@pytest.fixture(scope="module")
def server() -> Iterator[MastodonSandbox]:
    """A sandbox of this module's own, answering as Takahē 0.11 does."""
    with MastodonSandbox() as sandbox:
        sandbox.impersonate("takahe")  # type: ignore[attr-defined]  (Sandbox.__enter__ is typed as the base class)
        yield sandbox  # type: ignore[misc]


def campaign(root: Path, server: MastodonSandbox, monkeypatch: pytest.MonkeyPatch, video: bool) -> SandboxAccount:
    """One account on ``server``; posts at 09:00: a text, an image, and (with ``video``) a supporter video."""
    account = server.create_account(f"takahe{uuid.uuid4().hex[:6]}")
    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    posts = ["launch", "banner", *(["voice"] if video else [])]
    write_campaign(
        root,
        [account],
        schedules={
            "launch": {
                "timezone": "UTC",
                "slots": [
                    {"at": f"2022-01-12T09:0{n}", "post": post, "accounts": [account.id]}
                    for n, post in enumerate(posts)
                ],
            }
        },
    )
    media = root / "posts" / "media"
    (media / "videos").mkdir(parents=True)
    shutil.copy(REPO / "posts" / "media" / "banner-3.png", media / "banner.png")
    shutil.copy(REPO / "posts" / "media" / "videos" / "005-supporter.mp4", media / "videos" / "voice.mp4")
    tag = uuid.uuid4().hex[:6]
    dump(root / "posts" / "launch.yaml", {"text": f"One year in prison {tag} #FreeAndreiandIrina"})
    dump(
        root / "posts" / "banner.yaml",
        {"text": f"Free them {tag}", "media": [{"file": "media/banner.png", "alt": "Banner: Free Andrei and Irina"}]},
    )
    if video:
        dump(
            root / "posts" / "voice.yaml",
            {
                "text": f"A supporter speaks {tag}",
                "video": "media/videos/voice.mp4",
                "alt": "A supporter speaks",
                "consent": {"given": True, "date": "2022-01-08", "recorded_by": "campaigns team"},
            },
        )
    return account


@contextmanager
def worker_at(root: Path, when: datetime) -> Iterator[tuple[Worker, FakeClock]]:
    """A worker on a FakeClock at ``when``, warmed up as `bot run` does; closed on leaving."""
    clock = FakeClock(when)
    worker = Worker(root, clock=clock, database_url=f"sqlite:///{root / 'ledger.db'}", threads=4)
    try:
        worker.warm_up()
        yield worker, clock
    finally:
        worker.close()


def ledger_rows(worker: Worker) -> dict[str, tuple[str, str | None, int, str | None]]:
    from bot.ledger.schema import publications as p

    with worker.ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(p.c.post, p.c.state, p.c.reason, p.c.attempts, p.c.last_error)).all()
    return {r.post: (r.state, r.reason, r.attempts, r.last_error) for r in rows}


def test_every_publication_goes_out_once_on_a_takahe_like_server(tmp_path, server, monkeypatch) -> None:
    """404 on /api/v2/instance (with and without slash), a Takahē version, a failed status call: each post lands once."""
    account = campaign(tmp_path, server, monkeypatch, video=False)
    mark = len(server.requests())
    server.fail_next("unavailable", path="/api/v1/statuses")  # the first post is retried
    with worker_at(tmp_path, NINE - timedelta(minutes=1)) as (worker, clock):
        worker.start()
        clock.set(NINE + timedelta(minutes=3))
        worker.run_pending()
        worker.wait_idle()
        clock.set(NINE + timedelta(minutes=15))  # past the retry's time: the sweep hands it over
        worker.run_pending()
        worker.wait_idle()
        rows = ledger_rows(worker)
    assert {post: row[:2] for post, row in rows.items()} == {
        "launch": ("published", None),
        "banner": ("published", None),
    }
    texts = sorted(p.text for p in server.posts(account))
    assert len(texts) == 2 and len(set(texts)) == 2
    asked = [(r["path"], r["status"]) for r in server.requests()[mark:] if "/instance" in r["path"]]
    assert ("/api/v2/instance", 404) in asked and ("/api/v1/instance", 200) in asked
    assert [s for p, s in asked if p.startswith("/api/v2/instance")] == [404]


def test_a_server_without_video_is_reported_by_check_online_and_fails_that_post_at_once(
    tmp_path, server, monkeypatch, capsys
) -> None:
    """`bot check --online` names the video post; the worker fails it on its first attempt, with why, and posts the rest."""
    account = campaign(tmp_path, server, monkeypatch, video=True)
    capsys.readouterr()
    assert cli.main(["--campaign", str(tmp_path), "check"]) == 0  # offline, the video is fine
    assert cli.main(["--campaign", str(tmp_path), "check", "--online"]) == 1
    shown = capsys.readouterr().out
    assert f"posts/voice.yaml: account {account.id}: voice.mp4: the server (Takahe 0.11) takes no video/mp4" in shown
    assert "banner.yaml" not in shown and "launch.yaml" not in shown
    mark = len(server.requests())
    with capture_logs() as logs:
        with worker_at(tmp_path, NINE - timedelta(minutes=1)) as (worker, clock):
            worker.start()
            clock.set(NINE + timedelta(minutes=3))
            worker.run_pending()
            worker.wait_idle()
            rows = ledger_rows(worker)
    [warned] = [e for e in logs if e["event"] == "media_refused_by_server"]
    assert "posts/voice.yaml" in warned["problem"]
    assert {post: row[:3] for post, row in rows.items()} == {
        "launch": ("published", None, 1),
        "banner": ("published", None, 1),
        "voice": ("failed", "rejected", 1),
    }
    assert "takes no video/mp4" in (rows["voice"][3] or "")
    uploads = [r for r in server.requests()[mark:] if r["method"] == "POST" and r["path"] == "/api/v2/media"]
    assert len(uploads) == 1  # the banner; the video was never sent
    assert len(server.posts(account)) == 2
