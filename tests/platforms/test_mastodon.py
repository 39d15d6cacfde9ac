"""The Mastodon adapter (Mastodon.py) against the Mastodon sandbox over loopback sockets."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.errors import (
    ContentRejected,
    NotFound,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.core.values import ImageAttachment, Mention, VideoAttachment
from bot.platforms.mastodon import Mastodon
from bot.platforms.mastodon.wire import html_to_text
from sandboxes.base import SandboxAccount
from sandboxes.mastodon.sandbox import MastodonSandbox
from sandboxes.media import make_video
from tests.platforms.support import FAULT_ERRORS, Sleeps, media_folder, opened, restored
from tests.platforms.support import adapter_for as shared_adapter_for
from tests.platforms.support import fresh_name as name
from tests.platforms.support import outgoing as out

pytestmark = pytest.mark.slow


def adapter_for(who: SandboxAccount, **kwargs: Any) -> Mastodon:
    kwargs.setdefault("timeout", 5)  # the timeout fault holds answers until the client gives up
    return shared_adapter_for(who, **kwargs)


@pytest.fixture
def sandbox(mastodon_sandbox: MastodonSandbox) -> Iterator[MastodonSandbox]:
    yield from restored(mastodon_sandbox)


@pytest.fixture
def account(sandbox: MastodonSandbox) -> SandboxAccount:
    return sandbox.create_account(name("mastodon-index"), display_name="Index on Censorship")


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(account: SandboxAccount, sleeps: Sleeps) -> Iterator[Mastodon]:
    yield from opened(account, timeout=5, sleep=sleeps, poll_interval=1.5)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_folder(
        tmp_path_factory.mktemp("mastodon-media"),
        banner_size=(600, 300),
        clip="clip",
        seconds=2,
        clip_size=(320, 240),
        captions=["Free Andrei and Irina"],
    )


def mine(sandbox: MastodonSandbox, who: SandboxAccount) -> list:
    return [p for p in sandbox.posts(who) if not p.reshare_of]


def statuses_sent(sandbox: MastodonSandbox, key: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["path"] == "/api/v1/statuses" and r.get("idempotency_key") == key]


def test_text_post_sends_idempotency_key_and_language(sandbox, account, adapter) -> None:
    """A text post lands once with the publication key as Idempotency-Key and its language."""
    post = out(f"Free Andrei and Irina #FreeAndreiandIrina {uuid.uuid4().hex[:6]}", language="be")
    receipt = adapter.publish(post)
    assert [p.text for p in mine(sandbox, account)] == [post.text]
    assert receipt.url.endswith(f"/@{account.handle}/{receipt.remote_id}")
    assert [r["status"] for r in statuses_sent(sandbox, post.key)] == [200]
    assert adapter.client.status(receipt.remote_id)["language"] == "be"


def test_four_images_keep_their_alt_texts_in_order(sandbox, account, adapter, media) -> None:
    """Four images are uploaded through /api/v2/media with their descriptions, in order, and progress is reported."""
    images = tuple(ImageAttachment(media / f"banner-{n}.png", f"Banner {n}: free Andrei and Irina") for n in range(4))
    progress: list[tuple[int, int]] = []
    adapter.publish(
        out("Banners #FreeAndreiandIrina", images=images), lambda done, total: progress.append((done, total))
    )
    [post] = mine(sandbox, account)
    assert [(m["kind"], m["alt"]) for m in post.media] == [("image", i.alt) for i in images]
    assert [m["bytes"] for m in post.media] == [i.path.stat().st_size for i in images]
    assert len(progress) == 4 and progress[-1][0] == progress[-1][1]


def test_video_waits_for_processing_without_sleeping(sandbox, account, adapter, sleeps, media) -> None:
    """A video answered 202 is polled (206 twice), backing off through the injected sleep, before the status cites it."""
    sandbox.set_processing_polls("video", 3)
    video = VideoAttachment(media / "clip.mp4", "A supporter speaks", captions=media / "clip.vtt")
    with capture_logs() as logs:
        adapter.publish(out("A message for Andrei", video=video))
    [post] = mine(sandbox, account)
    assert post.media == [
        {"kind": "video", "alt": "A supporter speaks", "bytes": video.path.stat().st_size, "captions": None}
    ]
    media_calls = [r["status"] for r in sandbox.requests() if "/media" in r["path"]][-4:]
    assert media_calls == [202, 206, 206, 200]
    assert sleeps == [1.5, 3.0, 5.0]
    assert any(e["event"] == "captions_skipped" for e in logs)


def test_video_still_processing_after_the_bounded_wait_is_retryable(sandbox, account, media) -> None:
    """When processing outlasts the bounded wait, publish fails as PlatformUnavailable and posts nothing."""
    sandbox.set_processing_polls("video", 1_000_000)  # never done within the 0.3 s wait, however fast the host
    adapter = adapter_for(account, sleep=Sleeps(), poll_interval=0.0, processing_wait=0.3)
    with pytest.raises(PlatformUnavailable, match="still processing"):
        adapter.publish(out("Too slow", video=VideoAttachment(media / "clip.mp4", "alt")))
    assert mine(sandbox, account) == []


def test_twenty_megabyte_video_publishes(sandbox, account, adapter, tmp_path) -> None:
    """A 20 MB video goes through the real upload and processing flow intact."""
    big = make_video(tmp_path / "big.mp4", seconds=4, size=(640, 360), target_bytes=20 * 1024 * 1024)
    assert big.stat().st_size > 18 * 1024 * 1024
    adapter.publish(out("Supporters speak #FreeAndreiandIrina", video=VideoAttachment(big, "Supporters speak")))
    [post] = mine(sandbox, account)
    assert post.media[0]["bytes"] == big.stat().st_size


def test_timeout_is_uncertain_and_reconciled_without_a_duplicate(sandbox, account) -> None:
    """A post whose answer never came is found by reading, and a repeat with the same key returns the same status."""
    adapter = adapter_for(account, timeout=0.5)
    adapter.whoami()
    adapter.publish(out("Warm-up so the instance limit is cached"))
    post = out(f"Held answer #FreeAndreiandIrina {uuid.uuid4().hex[:6]}")
    sandbox.fail_next("timeout", path="/api/v1/statuses")
    with pytest.raises(UncertainOutcome):
        adapter.publish(post)
    found = adapter.find_published(post)
    again = adapter.publish(post)
    assert found is not None and found.remote_id == again.remote_id
    assert [p.remote_id for p in mine(sandbox, account) if p.text == post.text] == [again.remote_id]
    assert [r["status"] for r in statuses_sent(sandbox, post.key)] == ["timeout", 200]


def test_find_published_ignores_other_posts(adapter, media) -> None:
    """Reconcile answers None for a text never sent, or sent with a different number of attachments."""
    adapter.publish(out("Something else entirely"))
    assert adapter.find_published(out("Never sent")) is None
    banner = ImageAttachment(media / "banner-0.png", "Banner")
    assert adapter.find_published(out("Something else entirely", images=(banner,))) is None
    assert adapter.find_published(out("Something else entirely")) is not None


@pytest.mark.parametrize(("fault", "error"), [*FAULT_ERRORS, ("duplicate", ContentRejected)])
def test_faults_map_to_the_bots_errors(sandbox, account, adapter, fault, error) -> None:
    """Each injected failure on the status call becomes the bot error the worker acts on."""
    adapter.whoami()
    sandbox.fail_next(fault, path="/api/v1/statuses", retry_after=42)
    with pytest.raises(error) as raised:
        adapter.publish(out(f"Fault {fault}"))
    if fault == "rate_limited":
        assert 30 <= raised.value.retry_after <= 42.5  # the reset the 429 named, less the time in transit
    if fault == "auth":
        message = str(raised.value)
        assert account.id in message and account.entry["credentials"]["access_token"] in message
        assert all(secret not in message for secret in account.env.values())
    assert mine(sandbox, account) == []


def test_reblog_of_a_missing_post_is_not_found(adapter) -> None:
    """Boosting a status the instance does not have raises NotFound."""
    ghost = Mention("999999999999999", "", "1", "ghost", "Ghost", "", None)
    with pytest.raises(NotFound):
        adapter.reshare(ghost)


def test_unreachable_instance_is_unavailable(account) -> None:
    """A refused connection is retryable PlatformUnavailable, not an uncertain outcome."""
    closed = SandboxAccount(
        account.id, account.handle, {**account.entry, "base_url": "http://127.0.0.1:9"}, account.env
    )
    with pytest.raises(PlatformUnavailable):
        adapter_for(closed).publish(out("Nobody home"))


def test_rate_limit_stops_before_the_429(sandbox, account, adapter) -> None:
    """Once X-RateLimit-Remaining says 0, nothing more is sent until the reset."""
    sandbox.set_rate_limit(3, 300)
    before = len(sandbox.requests())
    adapter.whoami()  # 1: verify_credentials
    adapter.publish(out("First within the limit"))  # 2: instance, 3: status -> remaining 0
    sent = len(sandbox.requests())
    with pytest.raises(RateLimited) as raised:
        adapter.publish(out("Would be the 429"))
    assert len(sandbox.requests()) == sent
    assert 0 < raised.value.retry_after <= 300
    assert [r["status"] for r in sandbox.requests()[before:]] == [200, 200, 200]


def test_instance_character_limit_refuses_before_sending(sandbox, account, adapter) -> None:
    """The instance's max_characters is read and text over it is refused without a status request, never cut."""
    sandbox.set_max_characters(100)
    fits = "Free them: https://example.org/" + "a" * 200 + " " + "x" * 40  # the URL counts 23
    adapter.publish(out(fits))
    with pytest.raises(ContentRejected, match="takes 100"):
        adapter.publish(out("y" * 101))
    assert [p.text for p in mine(sandbox, account)] == [fits]
    assert len([r for r in sandbox.requests() if r["path"].startswith("/api/v2/instance")]) >= 1


def test_instance_limit_wins_over_the_offline_hint(sandbox, account) -> None:
    """Once read, the instance's limit decides, not the accounts.yaml max_characters used offline."""
    adapter = adapter_for(account)
    adapter.account.options["max_characters"] = 50
    assert Mastodon.max_text_for(adapter.account) == 50
    adapter.publish(out("z" * 80))
    with pytest.raises(ContentRejected, match="takes 500"):
        adapter.publish(out("z" * 501))
    assert [len(p.text) for p in mine(sandbox, account)] == [80]


def test_tag_timeline_pages_with_min_id(sandbox, adapter) -> None:
    """New tagged posts are read oldest first across pages with min_id, and the cursor resumes where a read stopped."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    start = adapter.fetch_mentions([tag], None)
    supporter = sandbox.create_account(name("supporter"), display_name="A Supporter")
    ids = [sandbox.post_as(supporter, f"Post {n} #{tag}") for n in range(45)]
    adapter.max_pages = 1
    first = adapter.fetch_mentions([tag], start.cursor)
    rest = adapter.fetch_mentions([tag], first.cursor)
    assert [m.remote_id for m in first.mentions + rest.mentions] == ids
    assert (len(first.mentions), len(rest.mentions)) == (40, 5)
    assert adapter.fetch_mentions([tag], rest.cursor).mentions == []
    reads = [r["query"] for r in sandbox.requests() if r["path"] == f"/api/v1/timelines/tag/{tag}"]
    assert all("min_id=" in q for q in reads[1:])
    assert first.mentions[0].author_name == "A Supporter" and first.mentions[0].text == f"Post 0 #{tag}"


def test_mentions_carry_reply_sensitive_and_boost_flags(sandbox, adapter) -> None:
    """Replies, content warnings, sensitive marks and boosts are flagged for the policy."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    start = adapter.fetch_mentions([tag, "Other" + tag], None)
    author = sandbox.create_account(name("author"))
    root = sandbox.post_as(author, f"Plain #{tag}")
    sandbox.post_as(author, f"Reply #{tag}", reply_to=root)
    sandbox.post_as(author, f"Graphic #{tag} #Other{tag}", sensitive=True)
    sandbox.post_as(author, f"Behind a warning #{tag}", spoiler_text="prison conditions")
    page = adapter.fetch_mentions([tag, "Other" + tag], start.cursor)
    flags = [(m.is_reply, m.sensitive, m.spoiler_text) for m in page.mentions]
    assert flags == [(False, False, ""), (True, False, ""), (False, True, ""), (False, True, "prison conditions")]
    boost = sandbox.post_as(sandbox.create_account(name("booster")), "", reshare_of=root)
    shown = adapter._mention(adapter.client.status(boost))
    assert shown.is_reshare and shown.text == f"Plain #{tag}"


def test_reblog_lands_on_the_server(sandbox, account, adapter) -> None:
    """Resharing a mention boosts it from the campaign account."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    start = adapter.fetch_mentions([tag], None)
    original = sandbox.post_as(sandbox.create_account(name("supporter")), f"Solidarity #{tag}")
    [mention] = adapter.fetch_mentions([tag], start.cursor).mentions
    receipt = adapter.reshare(mention)
    assert [(p.remote_id, p.reshare_of) for p in sandbox.posts(account)] == [(receipt.remote_id, original)]


def test_streaming_delivers_a_new_tagged_post(sandbox, adapter) -> None:
    """A post made while streaming reaches the callback once, even when it carries two tracked tags."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    got: list[Mention] = []
    connected, arrived, stop = threading.Event(), threading.Event(), threading.Event()

    def on_mention(mention: Mention) -> None:
        got.append(mention)
        arrived.set()

    tags = [tag, f"Also{tag}"]
    worker = threading.Thread(
        target=adapter.stream_mentions, args=(tags, on_mention, stop), kwargs={"on_connected": connected.set}
    )
    worker.start()
    try:
        assert connected.wait(10)
        remote_id = sandbox.post_as(sandbox.create_account(name("streamer")), f"Live #{tag} #Also{tag}")
        assert arrived.wait(10)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert [m.remote_id for m in got] == [remote_id]


def test_streaming_unavailable_tells_the_caller_to_poll(sandbox, adapter) -> None:
    """An instance that does not stream makes stream_mentions raise PlatformUnavailable promptly."""
    sandbox.set_streaming(False)
    with pytest.raises(PlatformUnavailable, match="does not stream"):
        adapter.stream_mentions(["FreeAndreiandIrina"], lambda m: None, threading.Event(), connect_timeout=1)


def test_status_html_becomes_the_authors_text() -> None:
    """Mastodon's HTML (link spans, hashtag links, breaks, paragraphs, entities) reads back as plain text."""
    html = (
        '<p>Free them &amp; now <a href="https://example.org/a/very/long/path" rel="nofollow noopener" '
        'target="_blank"><span class="invisible">https://</span><span class="ellipsis">example.org/a/very/lo'
        '</span><span class="invisible">ng/path</span></a> <a href="https://m.example/tags/FreeAndreiandIrina" '
        'class="mention hashtag" rel="tag">#<span>FreeAndreiandIrina</span></a><br />line two</p><p>para</p>'
    )
    assert html_to_text(html) == (
        "Free them & now https://example.org/a/very/long/path #FreeAndreiandIrina\nline two\n\npara"
    )
