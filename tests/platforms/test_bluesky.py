"""The Bluesky adapter against the reference AT Protocol servers (PDS + AppView) over loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.core.errors import AuthFailed, ContentRejected, PlatformUnavailable, RateLimited, UncertainOutcome
from bot.core.values import ImageAttachment, Mention, Outgoing, VideoAttachment
from bot.platforms.bluesky import Bluesky
from bot.platforms.bluesky.session import FileSessionStore
from bot.platforms.bluesky.text import tid_for
from sandboxes.base import SandboxAccount
from sandboxes.bluesky.sandbox import BlueskySandbox
from sandboxes.media import make_captions, make_image, make_video
from tests.platforms.support import adapter_for, opened, restored

pytestmark = pytest.mark.slow


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def calls(sandbox: BlueskySandbox, nsid: str, since: int = 0) -> int:
    return sum(1 for r in sandbox.requests()[since:] if r["path"].endswith(nsid))


@pytest.fixture
def sandbox(bluesky_sandbox: BlueskySandbox) -> Iterator[BlueskySandbox]:
    yield from restored(bluesky_sandbox)  # a test that failed early must not leave faults for the next


@pytest.fixture
def account(sandbox: BlueskySandbox) -> SandboxAccount:
    return sandbox.create_account(f"idx-{uuid.uuid4().hex[:8]}", display_name="Index on Censorship")


@pytest.fixture
def adapter(account: SandboxAccount) -> Iterator[Bluesky]:
    yield from opened(account)


def record_of(sandbox: BlueskySandbox, uri: str) -> dict[str, Any]:
    repo, collection, rkey = uri.removeprefix("at://").split("/")
    return sandbox.xrpc(
        "GET", "com.atproto.repo.getRecord", params={"repo": repo, "collection": collection, "rkey": rkey}
    )["value"]


def test_text_post_carries_facets_at_utf8_byte_offsets(sandbox: BlueskySandbox, adapter: Bluesky) -> None:
    """Tags, links and mentions after accented letters and emoji get facets whose byte ranges cut out exactly them."""
    friend = sandbox.create_account(f"friend-{uuid.uuid4().hex[:6]}")
    text = f"Liberté 🎉🇧🇾 pour Andrei #FreeAndreiandIrina https://www.article19.org/x @{friend.handle} fin"
    receipt = adapter.publish(Outgoing(key=key(), text=text, language="fr"))
    record = record_of(sandbox, receipt.remote_id)
    raw = record["text"].encode("utf-8")
    cut = {
        f["features"][0]["$type"].rsplit("#", 1)[1]: (
            raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(),
            f["features"][0],
        )
        for f in record["facets"]
    }
    assert cut["tag"] == ("#FreeAndreiandIrina", {"$type": "app.bsky.richtext.facet#tag", "tag": "FreeAndreiandIrina"})
    assert cut["link"][0] == "https://www.article19.org/x"
    assert cut["mention"] == (
        f"@{friend.handle}",
        {"$type": "app.bsky.richtext.facet#mention", "did": sandbox.did_of(friend)},
    )
    assert record["langs"] == ["fr"]
    assert receipt.url.startswith(f"https://bsky.app/profile/{adapter.account.handle}/post/")


def test_four_images_with_alt_and_an_oversized_one_reencoded(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """Four images keep their alt texts and aspect ratios; a 2 MB photo is re-encoded under the 1,000,000-byte blob limit."""
    big = tmp_path / "noise.png"
    Image.frombytes("RGB", (1000, 700), os.urandom(1000 * 700 * 3)).save(big)
    assert big.stat().st_size > 1_000_000
    paths = [big] + [make_image(tmp_path / f"b{n}.png", (600 + n * 100, 400)) for n in range(3)]
    images = tuple(ImageAttachment(p, f"banner {n}") for n, p in enumerate(paths))
    receipt = adapter.publish(Outgoing(key=key(), text="Banners #FreeAndreiandIrina", images=images))
    [post] = [p for p in sandbox.posts(account) if p.remote_id == receipt.remote_id]
    assert [m["alt"] for m in post.media] == [f"banner {n}" for n in range(4)]
    assert all(m["bytes"] <= 1_000_000 for m in post.media)
    assert post.media[0]["mime"] == "image/jpeg"
    assert [(m["aspect_ratio"]["width"], m["aspect_ratio"]["height"]) for m in post.media] == [
        (1000, 700),
        (600, 400),
        (700, 400),
        (800, 400),
    ]


def test_video_with_captions_and_alt(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """A video embed holds the video blob, its alt text and a VTT captions blob in the given language."""
    video = make_video(tmp_path / "v.mp4", 2.0, size=(320, 180))
    captions = make_captions(tmp_path / "v.vtt", ["Free Andrei", "Free Irina"], 2.0)
    progress: list[tuple[int, int]] = []
    out = Outgoing(
        key=key(), text="Supporter video", video=VideoAttachment(video, "A supporter speaks", captions, "be")
    )
    receipt = adapter.publish(out, progress=lambda sent, total: progress.append((sent, total)))
    embed = record_of(sandbox, receipt.remote_id)["embed"]
    assert embed["$type"] == "app.bsky.embed.video"
    assert embed["alt"] == "A supporter speaks"
    assert embed["video"]["mimeType"] == "video/mp4" and embed["video"]["size"] == video.stat().st_size
    assert [(c["lang"], c["file"]["mimeType"]) for c in embed["captions"]] == [("be", "text/vtt")]
    assert (embed["aspectRatio"]["width"], embed["aspectRatio"]["height"]) == (320, 180)
    assert progress[-1][0] == progress[-1][1]


def test_twenty_megabyte_video_goes_up_whole(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """A 20 MB video goes whole through the video service, which stores it on the PDS; captions ride along."""
    video = make_video(tmp_path / "big.mp4", 2.0, size=(640, 360), target_bytes=20 * 1024 * 1024)
    captions = make_captions(tmp_path / "big.vtt", ["Free them"], 2.0)
    assert video.stat().st_size >= 19 * 1024 * 1024
    start = len(sandbox.video_requests())
    receipt = adapter.publish(Outgoing(key=key(), text="Long message", video=VideoAttachment(video, "alt", captions)))
    uploads = [r for r in sandbox.video_requests()[start:] if r["path"].endswith("app.bsky.video.uploadVideo")]
    assert [(r["status"], r["bytes"]) for r in uploads] == [(200, video.stat().st_size)]
    [post] = [p for p in sandbox.posts(account) if p.remote_id == receipt.remote_id]
    assert post.media[0]["bytes"] == video.stat().st_size
    assert post.media[0]["captions"] == [{"lang": "en", "bytes": captions.stat().st_size}]


def test_same_key_twice_makes_one_record(sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky) -> None:
    """Publishing the same key again returns the first record (its rkey is derived from the key) instead of a second post."""
    out = Outgoing(key=key(), text="Only once #FreeAndreiandIrina")
    first = adapter.publish(out)
    second = adapter.publish(out)
    assert second == first
    assert first.remote_id.endswith("/" + tid_for(out.key))
    assert [p.remote_id for p in sandbox.posts(account)] == [first.remote_id]


def test_find_published_by_record_key(adapter: Bluesky) -> None:
    """find_published looks the record up by its derived key: nothing before, the post after."""
    out = Outgoing(key=key(), text="Reconcile")
    assert adapter.find_published(out) is None
    receipt = adapter.publish(out)
    assert adapter.find_published(out) == receipt


def test_repost_of_a_supporter_post(sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky) -> None:
    """A reshare is a repost record pointing at the post's uri and cid; a second reshare makes no second repost."""
    supporter = sandbox.create_account(f"sup-{uuid.uuid4().hex[:6]}")
    uri = sandbox.post_as(supporter, "Free Andrei and Irina")
    cid = sandbox.xrpc(
        "GET",
        "com.atproto.repo.getRecord",
        params={"repo": uri.split("/")[2], "collection": "app.bsky.feed.post", "rkey": uri.rsplit("/", 1)[1]},
    )["cid"]
    mention = Mention(
        remote_id=uri,
        url="https://bsky.app/x",
        author_id="",
        author_handle=supporter.handle,
        author_name="",
        text="",
        created_at=None,
        ref={"uri": uri, "cid": cid},
    )
    first, again = adapter.reshare(mention), adapter.reshare(mention)
    assert first == again
    reposts = [p for p in sandbox.posts(account) if p.reshare_of]
    assert [p.reshare_of for p in reposts] == [uri]
    subject = record_of(sandbox, first.remote_id)["subject"]
    assert (subject["uri"], subject["cid"]) == (uri, cid)


def test_tag_tracking_reads_only_new_tagged_posts(sandbox: BlueskySandbox, adapter: Bluesky) -> None:
    """searchPosts tracking returns tagged posts oldest first with their flags, and the cursor skips what was read."""
    tag = f"Track{uuid.uuid4().hex[:6]}"
    alice = sandbox.create_account(f"alice-{uuid.uuid4().hex[:6]}", display_name="Alice")
    first = sandbox.post_as(alice, f"Free them #{tag}")
    sandbox.post_as(alice, f"Not this one #{tag}Other")  # a longer tag that contains ours
    sandbox.post_as(alice, "No tag here")
    reply = sandbox.post_as(alice, f"Reply #{tag}", reply_to=first)
    marked = sandbox.post_as(alice, f"Graphic #{tag}", sensitive=True)
    sandbox.index()
    page = adapter.fetch_mentions([tag], None)
    assert [m.remote_id for m in page.mentions] == [first, reply, marked]
    flags = {m.remote_id: (m.is_reply, m.sensitive) for m in page.mentions}
    assert flags == {first: (False, False), reply: (True, False), marked: (False, True)}
    assert page.mentions[0].author_name == "Alice" and page.mentions[0].author_handle == alice.handle
    assert page.mentions[0].url == f"https://bsky.app/profile/{alice.handle}/post/{first.rsplit('/', 1)[1]}"
    later = sandbox.post_as(alice, f"Still #{tag.lower()} and #{tag}")
    sandbox.index()
    newer = adapter.fetch_mentions([tag], page.cursor)
    assert [m.remote_id for m in newer.mentions] == [later]
    assert adapter.fetch_mentions([tag], newer.cursor).mentions == []


def test_one_login_for_many_calls(sandbox: BlueskySandbox, account: SandboxAccount, tmp_path: Path) -> None:
    """An adapter logs in once and reuses the session; a second adapter with the stored session does not log in."""
    store = FileSessionStore(tmp_path / "sessions")
    start = len(sandbox.requests())
    first = adapter_for(account, session_store=store)
    for n in range(3):
        first.publish(Outgoing(key=key(), text=f"post {n}"))
    first.whoami()
    second = adapter_for(account, session_store=store)
    second.publish(Outgoing(key=key(), text="from the stored session"))
    assert calls(sandbox, "createSession", start) == 1
    assert calls(sandbox, "createRecord", start) == 4
    assert (first.logins, second.logins) == (1, 0)
    [saved] = (tmp_path / "sessions").iterdir()
    assert saved.stat().st_mode & 0o777 == 0o600


def test_expired_token_is_refreshed_not_relogged(sandbox: BlueskySandbox, adapter: Bluesky) -> None:
    """An ExpiredToken answer makes the adapter refresh the session once and retry, without a new login."""
    adapter.whoami()
    start = len(sandbox.requests())
    sandbox.proxy.fail_next("auth", error="ExpiredToken", path="createRecord")
    adapter.publish(Outgoing(key=key(), text="after refresh"))
    assert calls(sandbox, "refreshSession", start) == 1
    assert calls(sandbox, "createSession", start) == 0
    assert [r["status"] for r in sandbox.requests()[start:] if r["path"].endswith("createRecord")] == [401, 200]


def test_refreshed_session_is_stored_for_the_next_adapter(
    sandbox: BlueskySandbox, account: SandboxAccount, tmp_path: Path
) -> None:
    """After a refresh the store holds the new tokens, and an adapter started from the store posts without a login."""
    from atproto_client.client.session import Session

    store = FileSessionStore(tmp_path / "sessions")
    first = adapter_for(account, session_store=store)
    try:
        first.whoami()
        [saved] = (tmp_path / "sessions").iterdir()
        before = Session.decode(saved.read_text())
        start = len(sandbox.requests())
        sandbox.proxy.fail_next("auth", error="ExpiredToken", path="createRecord")
        first.publish(Outgoing(key=key(), text="after refresh"))
        after = Session.decode(saved.read_text())
        assert calls(sandbox, "refreshSession", start) == 1
        assert (after.did, after.handle) == (before.did, before.handle)
        # Refresh tokens are single-use and carry a fresh id; an access token made in the same second may not differ.
        assert after.refresh_jwt != before.refresh_jwt
    finally:
        first.close()
    second = adapter_for(account, session_store=store)
    try:
        second.publish(Outgoing(key=key(), text="from the refreshed session"))
    finally:
        second.close()
    assert (first.logins, second.logins) == (1, 0)
    assert calls(sandbox, "createSession", start) == 0


def test_revoked_refresh_logs_in_again_then_fails_as_auth(sandbox: BlueskySandbox, adapter: Bluesky) -> None:
    """When the refresh token is refused too, one new login is tried; when that is refused, AuthFailed names the variable."""
    adapter.whoami()
    sandbox.proxy.fail_next("auth", error="ExpiredToken", path="createRecord")
    sandbox.proxy.fail_next("auth", error="ExpiredToken", path="refreshSession")
    adapter.publish(Outgoing(key=key(), text="after a new login"))
    assert adapter.logins == 2
    sandbox.proxy.fail_next("auth", error="ExpiredToken", path="createRecord")
    sandbox.proxy.fail_next("auth", error="ExpiredToken", path="refreshSession")
    sandbox.proxy.fail_next("auth", path="createSession")
    with pytest.raises(AuthFailed) as raised:
        adapter.publish(Outgoing(key=key(), text="refused"))
    [var] = adapter.account.credentials.values()
    assert var in str(raised.value) and adapter._secret("app_password") not in str(raised.value)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("rate_limited", RateLimited),
        ("unavailable", PlatformUnavailable),
        ("auth", AuthFailed),
        ("rejected", ContentRejected),
    ],
)
def test_fault_maps_to_error_class(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, fault: str, error: type
) -> None:
    """Each injected XRPC failure of createRecord becomes the bot's error for it and leaves no post behind."""
    adapter.whoami()
    sandbox.fail_next(fault, retry_after=30, path="createRecord")
    with pytest.raises(error):
        adapter.publish(Outgoing(key=key(), text=f"fault {fault}"))
    assert sandbox.posts(account) == []


def test_after_a_429_nothing_is_sent_until_the_reset(sandbox: BlueskySandbox, adapter: Bluesky) -> None:
    """A 429 with ratelimit-reset blocks the post bucket locally: the next publish raises without a request."""
    adapter.whoami()
    sandbox.fail_next("rate_limited", retry_after=120, path="createRecord")
    with pytest.raises(RateLimited) as first:
        adapter.publish(Outgoing(key=key(), text="limited"))
    assert 115 < first.value.retry_after <= 120
    sent = len(sandbox.requests())
    with pytest.raises(RateLimited):
        adapter.publish(Outgoing(key=key(), text="refused locally"))
    assert len(sandbox.requests()) == sent


def test_timeout_after_sending_is_uncertain_and_reconciles(sandbox: BlueskySandbox, account: SandboxAccount) -> None:
    """A createRecord answered too late raises UncertainOutcome; the post was made, and find_published finds it."""
    adapter = adapter_for(account, timeout=1)
    adapter.whoami()
    sandbox.proxy.fail_next("timeout", path="createRecord", delay=2.5)
    out = Outgoing(key=key(), text="slow")
    with pytest.raises(UncertainOutcome):
        adapter.publish(out)
    found = adapter.find_published(out)
    assert found is not None and [p.remote_id for p in sandbox.posts(account)] == [found.remote_id]


@pytest.fixture(scope="module")
def limited() -> Iterator[BlueskySandbox]:
    """A PDS without AppView, with its own rate limits on (they are per IP, so not in the shared sandbox)."""
    with BlueskySandbox(appview=False, rate_limits=True) as sandbox:
        yield sandbox


def test_stops_before_the_login_limit_the_pds_announced(limited: BlueskySandbox) -> None:
    """When the PDS's ratelimit headers say no logins remain, a needed re-login is refused locally, not sent for a 429."""
    acct = limited.create_account(f"lim-{uuid.uuid4().hex[:6]}")
    password = next(iter(acct.env.values()))
    for _ in range(29):  # the PDS allows 30 logins per handle in 5 minutes; spend all but one elsewhere
        limited._http.post(
            f"{limited.base_url}/xrpc/com.atproto.server.createSession",
            json={"identifier": acct.handle, "password": password},
        ).raise_for_status()
    adapter = adapter_for(acct)
    adapter.publish(Outgoing(key=key(), text="posted without an AppView"))  # the login itself uses the last one
    assert adapter.gate.wait_needed("login") > 0
    start = len(limited.requests())
    limited.proxy.fail_next("auth", error="ExpiredToken", path="createRecord")
    limited.proxy.fail_next("auth", error="ExpiredToken", path="refreshSession")
    with pytest.raises(RateLimited):
        adapter.publish(Outgoing(key=key(), text="needs a new login"))
    assert calls(limited, "createSession", start) == 0
    assert all(r["status"] != 429 for r in limited.requests())
