"""Media staged before a slot: the worker uploads a fan-out's image minutes ahead, and at the slot only posts."""

from __future__ import annotations

import shutil
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.worker.runtime import Worker
from sandboxes.x.sandbox import XSandbox
from tests.worker.campaigns import REPO, dump, write_campaign

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives a platform server over loopback


@pytest.fixture
def own_x():
    """A fake X for this test alone, so its request log holds only this campaign's uploads."""
    with XSandbox(latency=0.0) as sandbox:
        yield sandbox


def image_campaign(root, sandbox, monkeypatch, count: int, own_upload: int = 0):
    """``count`` X accounts posting one image at 09:00; the first ``own_upload`` do not share uploads."""
    accounts = [sandbox.create_account(f"st{uuid.uuid4().hex[:6]}{n}") for n in range(count)]
    for account in accounts[:own_upload]:
        account.entry["options"] = {**account.entry.get("options", {}), "share_media": False}
    for account in accounts:
        for name, value in account.env.items():
            monkeypatch.setenv(name, value)
    write_campaign(
        root,
        accounts,
        schedules={
            "launch": {
                "timezone": "UTC",
                "slots": [{"at": "2022-01-12T09:00", "post": "launch", "accounts": [a.id for a in accounts]}],
            }
        },
    )
    (root / "posts" / "media").mkdir()
    shutil.copy(REPO / "posts" / "media" / "banner-3.png", root / "posts" / "media" / "banner.png")
    dump(
        root / "posts" / "launch.yaml",
        {
            "text": f"One year in prison {uuid.uuid4().hex[:6]} #FreeAndreiandIrina",
            "media": [{"file": "media/banner.png", "alt": "Banner: Free Andrei and Irina"}],
        },
    )
    return accounts


@contextmanager
def worker_at(root, when):
    """A worker on a FakeClock at ``when``, warmed up as `bot run` does; closed on leaving."""
    clock = FakeClock(when)
    worker = Worker(root, clock=clock, database_url=f"sqlite:///{root / 'ledger.db'}", threads=8)
    try:
        worker.warm_up()
        yield worker, clock
    finally:
        worker.close()


def media_requests(sandbox) -> list[dict]:
    return [e for e in sandbox.requests() if e["path"].startswith("/2/media/")]


def tweets(sandbox) -> list[dict]:
    return [e for e in sandbox.requests() if e["path"] == "/2/tweets"]


def test_media_is_uploaded_minutes_before_the_slot_and_the_slot_only_posts(tmp_path, own_x, monkeypatch) -> None:
    """Ten minutes before 09:00 the image goes up once for all three accounts; at 09:00 each makes one request."""
    accounts = image_campaign(tmp_path, own_x, monkeypatch, 3)
    with worker_at(tmp_path, NINE - timedelta(minutes=30)) as (worker, clock):
        with capture_logs() as logs:
            worker.start()
            worker.wait_idle()
            assert media_requests(own_x) == []  # 30 minutes ahead: too early
            clock.set(NINE - timedelta(minutes=9))
            worker.run_pending()
            assert worker.stage_upcoming() == 0  # handed over once per slot time, not at every look
            worker.wait_idle()
        staged = [e for e in logs if e["event"] == "media_staged"]
        assert [(e["platform"], e["accounts"], e["post"]) for e in staged] == [("x", 3, "launch")]
        uploaded = media_requests(own_x)
        assert [e["path"].rsplit("/", 1)[-1] for e in uploaded] == ["initialize", "append", "finalize", "metadata"]
        assert tweets(own_x) == []
        clock.set(NINE)
        worker.run_pending()
        assert media_requests(own_x) == uploaded  # nothing uploaded at the slot
        assert len(tweets(own_x)) == 3
        for account in accounts:
            (post,) = own_x.posts(account)
            assert [(m["kind"], m["alt"]) for m in post.media] == [("image", "Banner: Free Andrei and Irina")]


def test_failed_staging_is_logged_and_the_slot_uploads_the_media_itself(tmp_path, own_x, monkeypatch) -> None:
    """When X refuses the staged upload, media_stage_failed says why and the slot still publishes with the image."""
    accounts = image_campaign(tmp_path, own_x, monkeypatch, 2)
    with worker_at(tmp_path, NINE - timedelta(minutes=5)) as (worker, clock):
        own_x.fail_next("unavailable", path="/2/media/upload/initialize")
        with capture_logs() as logs:
            worker.start()
            worker.wait_idle()
        (failed,) = [e for e in logs if e["event"] == "media_stage_failed"]
        assert failed["reason"] == "PlatformUnavailable" and failed["accounts"] == 2
        assert not any(e["event"] == "media_staged" for e in logs)
        clock.set(NINE)
        worker.run_pending()
        assert len(tweets(own_x)) == 2
        for account in accounts:
            (post,) = own_x.posts(account)
            assert [m["kind"] for m in post.media] == ["image"]


def test_an_account_that_uploads_its_own_media_does_not_keep_the_others_from_staging(tmp_path, own_x, monkeypatch):
    """The slot's first account opts out of sharing: the others' image is still staged, once, and it uploads its own at the slot."""
    image_campaign(tmp_path, own_x, monkeypatch, 3, own_upload=1)
    with worker_at(tmp_path, NINE - timedelta(minutes=5)) as (worker, clock):
        with capture_logs() as logs:
            worker.start()
            worker.wait_idle()
        assert [e["accounts"] for e in logs if e["event"] == "media_staged"] == [3]
        assert [e["path"].rsplit("/", 1)[-1] for e in media_requests(own_x)] == [
            "initialize",
            "append",
            "finalize",
            "metadata",
        ]
        clock.set(NINE)
        worker.run_pending()
        assert len(tweets(own_x)) == 3
        assert len([e for e in media_requests(own_x) if e["path"] == "/2/media/metadata"]) == 2  # its own, at the slot


@pytest.mark.parametrize("ledger", ["sqlite", "postgres"])
def test_a_worker_started_at_the_slot_uploads_the_image_once_for_its_accounts(
    tmp_path, own_x, monkeypatch, request, ledger
) -> None:
    """A worker started at 09:00 catches the slot up with nothing staged: its twelve accounts share one upload."""
    accounts = image_campaign(tmp_path, own_x, monkeypatch, 12)
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if ledger == "sqlite"
        else request.getfixturevalue("postgres").new_database(f"staging_{uuid.uuid4().hex[:8]}")
    )
    worker = Worker(tmp_path, clock=FakeClock(NINE), database_url=url, threads=8)
    try:
        worker.start()  # the slot is due at once: caught up, its media never staged
        assert worker.wait_idle(timeout=60)
    finally:
        worker.close()
    assert sorted(e["status"] for e in tweets(own_x)) == [201] * len(accounts)
    uploads = [e for e in media_requests(own_x) if e["path"].endswith("/initialize")]
    assert len(uploads) == 1, f"{len(uploads)} uploads of one image for {len(accounts)} accounts"
    for account in accounts:
        (post,) = own_x.posts(account)
        assert [(m["kind"], m["alt"]) for m in post.media] == [("image", "Banner: Free Andrei and Irina")]
