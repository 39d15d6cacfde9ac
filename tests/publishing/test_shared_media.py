"""One X upload per file for up to 101 accounts (additional_owners), against a fake X of its own."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from tweepy.errors import BadRequest

from bot.core.errors import ContentRejected
from bot.core.model import Account, Media, Post
from bot.core.values import ImageAttachment, Outgoing
from bot.platforms.x.upload import SHARED, SharedMedia, Uploader
from bot.publishing.publisher import AdapterPool, Outcome, Publisher
from sandboxes.x.sandbox import XSandbox
from tests.publishing.support import make_campaign, occurrence

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
BANNER = Path(__file__).resolve().parents[2] / "posts" / "media" / "banner-3.png"
pytestmark = pytest.mark.slow  # drives a platform server over loopback


@pytest.fixture
def own_x():
    """A fake X for this test alone: its host keys the upload sharing, so other tests' accounts stay out."""
    with XSandbox(latency=0.0) as sandbox:
        yield sandbox


def accounts_on(sandbox, monkeypatch, count: int, prefix: str) -> list[tuple[Account, object]]:
    made = []
    for n in range(count):
        remote = sandbox.create_account(f"{prefix}{n:03d}")
        for name, value in remote.env.items():
            monkeypatch.setenv(name, value)
        made.append((Account(id=remote.id, **remote.entry), remote))
    return made


def uploads(sandbox) -> int:
    return sum(1 for e in sandbox.requests() if e["method"] == "POST" and e["path"].startswith("/2/media/upload"))


def test_fan_out_uploads_each_image_once_per_hundred_and_one_accounts(own_x, monkeypatch, tmp_path, ledger, clock):
    """120 accounts publish one image post: two uploads (101 + 19 owners), every post carries the image and its alt text."""
    shutil.copy(BANNER, tmp_path / "banner.png")
    made = accounts_on(own_x, monkeypatch, 120, "share")
    campaign = make_campaign(tmp_path, [a for a, _ in made], [])
    post = Post(
        id="launch",
        path=tmp_path / "posts" / "launch.yaml",
        text="A year in prison. #FreeAndreiandIrina",
        media=[Media(file="banner.png", path=tmp_path / "banner.png", alt="Banner: Free Andrei and Irina")],
    )
    campaign.posts["launch"] = post
    publisher = Publisher(campaign, ledger, AdapterPool(), clock, "w1")
    clock.set(NINE)
    try:
        for account, _ in made:
            publisher.adapters.get(account)  # as the worker's warm-up does: every account joins before the slot
        occ = occurrence(NINE, "post:launch", [a.id for a, _ in made])
        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(lambda a: publisher.fire(occ, a.id), [a for a, _ in made]))
    finally:
        publisher.adapters.close()
    assert [r.outcome for r in results] == [Outcome.published] * 120
    # initialize, append, finalize per shared upload, and one alt text each: no per-account upload.
    assert uploads(own_x) == 2 * 3
    assert sum(1 for e in own_x.requests() if e["path"] == "/2/media/metadata") == 2
    for _, remote in made:
        (server_post,) = own_x.posts(remote)
        assert [(m["kind"], m["alt"]) for m in server_post.media] == [("image", "Banner: Free Andrei and Irina")]


def test_only_the_named_owners_may_post_a_shared_upload(own_x, monkeypatch, tmp_path):
    """The fake X lets an additional owner attach the media, refuses it to anyone else, and keeps alt text the uploader's."""
    from bot.publishing.adapters import build_adapter

    (a, _), (b, _), (c, _) = accounts_on(own_x, monkeypatch, 3, "own")
    x_a, x_b, x_c = (build_adapter(acc) for acc in (a, b, c))
    try:
        b_id = x_b._sharing_id()
        media_id = Uploader(x_a._client, lambda s: None, None, 0, x_a.log).image(BANNER, "Banner", [b_id])
        x_b._client.create_tweet(text="Shared with me. #FreeAndreiandIrina", media_ids=[media_id], user_auth=True)
        with pytest.raises(BadRequest, match="media"):
            x_c._client.create_tweet(
                text="Not shared with me. #FreeAndreiandIrina", media_ids=[media_id], user_auth=True
            )
        with pytest.raises(BadRequest, match="not found"):
            Uploader(x_b._client, lambda s: None, None, 0, x_b.log).describe(media_id, "Not my upload to describe")
    finally:
        for adapter in (x_a, x_b, x_c):
            adapter.close()


def test_a_refused_shared_media_id_is_replaced_by_our_own_upload(own_x, monkeypatch):
    """When X refuses a media id another account uploaded for us, the post goes out with our own upload, once."""
    from bot.publishing.adapters import build_adapter

    (a, _), (b, remote_b) = accounts_on(own_x, monkeypatch, 2, "refuse")
    x_a, x_b = build_adapter(a), build_adapter(b)
    try:
        out = Outgoing(key="k1", text="Free them. #FreeAndreiandIrina", images=(ImageAttachment(BANNER, "Banner"),))
        from bot.platforms.x.upload import file_key as _file_key

        # A's upload registered as covering B, although X was never told so (as if B's id were wrong).
        uploader = Uploader(x_a._client, lambda s: None, None, 0, x_a.log)
        SHARED.obtain(
            x_b.base_url,
            ("image", *_file_key(BANNER), "Banner"),
            x_b._share_as,
            lambda owners: uploader.image(BANNER, "Banner"),
            lambda: None,
        )
        with capture_logs() as logs:
            receipt = x_b.publish(out, None)
    finally:
        x_a.close()
        x_b.close()
    (server_post,) = own_x.posts(remote_b)
    assert server_post.remote_id == receipt.remote_id and [m["alt"] for m in server_post.media] == ["Banner"]
    assert [e["event"] for e in logs if e["event"] == "shared_media_refused"] == ["shared_media_refused"]


def test_a_failed_upload_is_not_shared_and_the_next_account_uploads_its_own():
    """An upload that raises leaves nothing behind: an account waiting on it uploads for itself."""
    shared = SharedMedia()
    for user in ("1", "2"):
        shared.join("h", user)
    started, release = threading.Event(), threading.Event()

    def failing(owners):
        started.set()
        release.wait(5)
        raise ContentRejected("refused")

    outcome: dict[str, object] = {}

    def first():
        try:
            shared.obtain("h", ("f",), "1", failing, lambda: None)
        except ContentRejected as exc:
            outcome["1"] = exc

    t = threading.Thread(target=first)
    t.start()
    started.wait(5)
    second = threading.Thread(
        target=lambda: outcome.update(
            {"2": shared.obtain("h", ("f",), "2", lambda owners: f"own-{sorted(owners)}", lambda: None)}
        )
    )
    second.start()
    release.set()
    t.join(5)
    second.join(5)
    assert isinstance(outcome["1"], ContentRejected)
    assert outcome["2"] == ("own-['1']", True)


def test_an_upload_staged_for_a_fan_out_is_shared_only_among_its_accounts():
    """Given ``among``, a new upload names only those peers as owners; the process's other accounts upload their own."""
    shared = SharedMedia()
    for user in ("1", "2", "3", "4"):
        shared.join("h", user)
    calls: list[list[str]] = []

    def upload(owners):
        calls.append(list(owners))
        return f"m{len(calls)}"

    assert shared.obtain("h", ("f",), "1", upload, lambda: None, among={"1", "3"}) == ("m1", True)
    assert calls == [["3"]]
    assert shared.obtain("h", ("f",), "3", upload, lambda: None) == ("m1", False)
    assert shared.obtain("h", ("f",), "2", upload, lambda: None) == ("m2", True)
    assert calls[1] == ["4"]  # not "1" or "3": they are owners of the first upload already
