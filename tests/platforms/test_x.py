"""The X adapter against our fake X API v2 server, over real loopback sockets."""

from __future__ import annotations

import math
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.errors import (
    AuthFailed,
    ContentRejected,
    DuplicateContent,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.core.values import ImageAttachment, VideoAttachment
from bot.platforms.x import X
from sandboxes.base import SandboxAccount
from sandboxes.media import make_image, make_video
from sandboxes.x.sandbox import XSandbox
from tests.platforms.support import FAULT_ERRORS, Account, Sleeps, adapter_for, media_folder, opened
from tests.platforms.support import fresh_name as fresh
from tests.platforms.support import outgoing as out

pytestmark = pytest.mark.slow
TAG = "FreeAndreiandIrina"


def log_since(sandbox: XSandbox, mark: int, user: str | None = None) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests()[mark:] if user is None or r["user"] == user]


@pytest.fixture
def account(x_sandbox: XSandbox) -> SandboxAccount:
    return x_sandbox.create_account(fresh())


@pytest.fixture
def adapter(account: SandboxAccount) -> Iterator[X]:
    yield from opened(account)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = media_folder(
        tmp_path_factory.mktemp("x-media"),
        banner_size=(800, 400),
        clip="short",
        seconds=1,
        clip_size=(320, 180),
        captions=["Free Andrei", "Free Irina"],
    )
    make_video(root / "big.mp4", seconds=2, size=(640, 360), target_bytes=20 * 1024 * 1024)
    return root


def test_default_host_is_api_x_com(account: SandboxAccount) -> None:
    """Without a base_url the adapter talks to https://api.x.com, not tweepy's hard-coded api.twitter.com."""
    entry = {**account.entry, "base_url": None}
    platform = X(Account(account.id, "x", None, entry["handle"], entry["credentials"]), {})
    assert platform.base_url == "https://api.x.com"


def test_text_post_lands_once(x_sandbox: XSandbox, account: SandboxAccount, adapter: X) -> None:
    """A text post is created on the server under the account, and the receipt points at it."""
    text = f"Andrei and Irina are journalists, not criminals. #{TAG} {uuid.uuid4().hex[:6]}"
    receipt = adapter.publish(out(text))
    posts = x_sandbox.posts(account)
    assert [(p.remote_id, p.text) for p in posts] == [(receipt.remote_id, text)]
    assert receipt.url == f"https://x.com/{account.handle}/status/{receipt.remote_id}"


def test_accounts_share_the_hosts_connections_and_keep_their_own_cookies(x_sandbox: XSandbox) -> None:
    """Two accounts' posts go through one pool of connections to the host; closing one account leaves the other's working."""
    first, second = (adapter_for(x_sandbox.create_account(fresh())) for _ in range(2))
    try:
        for platform in (first, second):
            platform.publish(out(f"Free Andrei and Irina #{TAG} {uuid.uuid4().hex[:6]}"))
        one, two = first._client.session, second._client.session
        assert one.get_adapter(x_sandbox.base_url) is two.get_adapter(x_sandbox.base_url)
        assert one.cookies is not two.cookies
        first.close()
        assert second.publish(out(f"Still free them #{TAG} {uuid.uuid4().hex[:6]}")).remote_id
    finally:
        second.close()


def test_four_images_carry_their_alt_texts(
    x_sandbox: XSandbox, account: SandboxAccount, adapter: X, media: Path
) -> None:
    """Four images upload in one request each, get their alt texts, and attach in order."""
    images = tuple(
        ImageAttachment(media / f"banner-{n}.png", f"Banner {n + 1}: free Andrei and Irina") for n in range(4)
    )
    progress: list[tuple[int, int]] = []
    mark = len(x_sandbox.requests())
    receipt = adapter.publish(
        out(f"Banners #{TAG} {uuid.uuid4().hex[:6]}", images=images), progress=lambda a, b: progress.append((a, b))
    )
    post = next(p for p in x_sandbox.posts(account) if p.remote_id == receipt.remote_id)
    assert [(m["kind"], m["alt"], m["bytes"]) for m in post.media] == [
        ("image", i.alt, i.path.stat().st_size) for i in images
    ]
    paths = [r["path"] for r in log_since(x_sandbox, mark, account.handle)]
    assert paths.count("/2/media/upload") == 4 and paths.count("/2/media/metadata") == 4
    total = sum(i.path.stat().st_size for i in images)
    assert progress[-1] == (total, total) and len(progress) == 4


def test_gif_goes_through_chunked_upload_and_processing(
    x_sandbox: XSandbox, account: SandboxAccount, adapter: X, tmp_path: Path
) -> None:
    """A GIF is uploaded as tweet_gif through initialize/append/finalize and attached once processed."""
    gif = make_image(tmp_path / "loop.gif", (120, 80), format="GIF")
    receipt = adapter.publish(out(f"A loop {uuid.uuid4().hex[:6]}", images=(ImageAttachment(gif, "A looping banner"),)))
    (item,) = next(p for p in x_sandbox.posts(account) if p.remote_id == receipt.remote_id).media
    assert (item["category"], item["state"], item["alt"], item["appends"]) == (
        "tweet_gif",
        "succeeded",
        "A looping banner",
        1,
    )


def test_video_walks_processing_states_with_captions(media: Path) -> None:
    """A video is polled through pending and in_progress, waiting check_after_secs each time, then posted with captions."""
    with XSandbox(processing_polls=3, check_after_secs=2) as sandbox:
        acct = sandbox.create_account(fresh())
        sleeps = Sleeps()
        platform = adapter_for(acct, sleep=sleeps)
        video = VideoAttachment(
            media / "short.mp4", "A supporter holds a sign", captions=media / "short.vtt", captions_lang="en"
        )
        with capture_logs() as logs:
            receipt = platform.publish(out("For Andrei and Irina", video=video))
        (post,) = sandbox.posts(acct)
        assert post.remote_id == receipt.remote_id
        assert post.media[0]["kind"] == "video" and post.media[0]["state"] == "succeeded"
        assert post.media[0]["alt"] == video.alt
        assert post.media[0]["caption_languages"] == ["EN"]
        assert sleeps == [2, 2, 2]
        processed = [e for e in logs if e["event"] == "media_processed"]
        assert processed[0]["states"] == ["pending", "in_progress", "in_progress", "succeeded"]
        statuses = [r for r in sandbox.requests() if r["path"] == "/2/media/upload" and r["method"] == "GET"]
        assert len(statuses) == 3 and all(r["query"]["command"] == "STATUS" for r in statuses)


def test_failed_processing_is_rejected_and_nothing_posted(
    x_sandbox: XSandbox, account: SandboxAccount, adapter: X, media: Path
) -> None:
    """A video X fails to process raises ContentRejected naming the file (the spec's processing_info has no reason), and no post is created."""
    x_sandbox.fail_processing(1)
    with pytest.raises(ContentRejected, match="X could not process short.mp4: processing failed"):
        adapter.publish(out("Video that will not process", video=VideoAttachment(media / "short.mp4", "A clip")))
    assert x_sandbox.posts(account) == []


def test_twenty_mb_video_goes_up_in_chunks(
    x_sandbox: XSandbox, account: SandboxAccount, adapter: X, media: Path
) -> None:
    """A 20 MB video is sent in APPENDs of at most 5 MB, in order, with progress up to the full size."""
    big = media / "big.mp4"
    size = big.stat().st_size
    assert size >= 20 * 1024 * 1024
    progress: list[tuple[int, int]] = []
    receipt = adapter.publish(
        out("Twenty megabytes of solidarity", video=VideoAttachment(big, "Noise")),
        progress=lambda a, b: progress.append((a, b)),
    )
    (video,) = next(p for p in x_sandbox.posts(account) if p.remote_id == receipt.remote_id).media
    assert video["bytes"] == size
    assert video["appends"] == math.ceil(size / (4 * 1024 * 1024)) >= 5
    assert [a for a, _ in progress] == sorted(a for a, _ in progress) and progress[-1] == (size, size)


@pytest.mark.parametrize(("fault", "error"), [*FAULT_ERRORS, ("duplicate", DuplicateContent)])
def test_server_faults_map_to_bot_errors(x_sandbox: XSandbox, adapter: X, fault: str, error: type) -> None:
    """Each failure X can answer with reaches the caller as the bot's error class for it."""
    x_sandbox.fail_next(fault, retry_after=45, path="/2/tweets")
    with pytest.raises(error) as raised:
        adapter.publish(out(f"Fault {fault} {uuid.uuid4().hex[:6]}"))
    if fault == "rate_limited":
        assert 40 < raised.value.retry_after <= 46


def test_real_duplicate_is_duplicate_content(adapter: X) -> None:
    """Posting the same text twice is refused by X as a duplicate, which is permanent."""
    text = f"Same words twice {uuid.uuid4().hex[:6]}"
    adapter.publish(out(text))
    with pytest.raises(DuplicateContent):
        adapter.publish(out(text))


def test_wrong_secret_names_env_vars_not_values(account: SandboxAccount) -> None:
    """A bad signature is refused with 401; the error names the account and its env variables, never a secret."""
    platform = adapter_for(account, secrets={"consumer_secret": "not-the-secret-at-all"})
    with pytest.raises(AuthFailed) as raised:
        platform.whoami()
    message = str(raised.value)
    assert account.id in message
    assert all(var in message for var in account.entry["credentials"].values())
    assert not any(value in message for value in account.env.values())
    assert "not-the-secret-at-all" not in message


def test_connection_refused_is_unavailable_not_uncertain(account: SandboxAccount) -> None:
    """A refused connection is PlatformUnavailable, even for a post: nothing can have reached X."""
    dead = SandboxAccount(account.id, account.handle, {**account.entry, "base_url": "http://127.0.0.1:9"}, account.env)
    platform = adapter_for(dead, timeout=2)
    with pytest.raises(PlatformUnavailable):
        platform.whoami()
    with pytest.raises(PlatformUnavailable) as raised:
        platform.publish(out("Never sent"))
    assert not isinstance(raised.value, UncertainOutcome)


@pytest.fixture
def hangup_url() -> str:
    """A loopback server that reads each request and hangs up without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    listener.close()


def test_hangup_after_sending_a_post_is_uncertain(account: SandboxAccount, hangup_url: str) -> None:
    """A connection dropped after a post was sent is UncertainOutcome; after a read it is PlatformUnavailable."""
    cut = SandboxAccount(account.id, account.handle, {**account.entry, "base_url": hangup_url}, account.env)
    platform = adapter_for(cut, timeout=2)
    with pytest.raises(UncertainOutcome):
        platform.publish(out("Maybe sent"))
    with pytest.raises(PlatformUnavailable) as raised:
        platform.whoami()
    assert not isinstance(raised.value, UncertainOutcome)


def test_stops_before_the_429_until_reset() -> None:
    """When headers say the window is used up, no request leaves until the reset time; then posting resumes."""
    now = [1_700_000_000.0]
    with XSandbox(wall=lambda: now[0]) as sandbox:
        acct = sandbox.create_account(fresh())
        sandbox.set_limit("POST /2/tweets", 2, window=900, account=acct)
        platform = adapter_for(acct, wall=lambda: now[0])
        platform.publish(out("one"))
        platform.publish(out("two"))  # answered with x-rate-limit-remaining: 0
        sent = len(sandbox.requests())
        with pytest.raises(RateLimited) as raised:
            platform.publish(out("three"))
        assert 899 <= raised.value.retry_after <= 900 and "POST /2/tweets" in str(raised.value)
        now[0] += 600
        with pytest.raises(RateLimited):
            platform.publish(out("three"))
        assert len(sandbox.requests()) == sent  # nothing was sent while the window was closed
        now[0] += 301
        platform.publish(out("three"))
        assert [r["status"] for r in sandbox.requests()] == [201, 201, 201]


def test_daily_post_cap_stops_posting_for_a_day(x_sandbox: XSandbox) -> None:
    """When x-user-limit-24hour-remaining reaches 0, the next post waits for the 24-hour reset without a request."""
    acct = x_sandbox.create_account(fresh())
    x_sandbox.set_limit("daily", 1, account=acct)
    platform = adapter_for(acct)
    platform.publish(out("The only post today"))
    sent = len(x_sandbox.requests())
    with pytest.raises(RateLimited) as raised:
        platform.publish(out("One too many"))
    assert raised.value.retry_after > 86000
    assert len(x_sandbox.requests()) == sent


def test_429_blocks_the_search_bucket_only_until_reset(x_sandbox: XSandbox, adapter: X) -> None:
    """After a 429 on search, the next search is refused locally while posting still works."""
    adapter.whoami()
    x_sandbox.fail_next("rate_limited", retry_after=120, path="/2/tweets/search/recent")
    with pytest.raises(RateLimited):
        adapter.fetch_mentions([TAG], None)
    mark = len(x_sandbox.requests())
    with pytest.raises(RateLimited) as again:
        adapter.fetch_mentions([TAG], None)
    assert 100 < again.value.retry_after <= 121
    assert not any(r["path"].endswith("/search/recent") for r in log_since(x_sandbox, mark))
    adapter.publish(out(f"Posting is a different window {uuid.uuid4().hex[:6]}"))


def test_reconcile_finds_a_post_made_despite_a_timeout(
    x_sandbox: XSandbox, account: SandboxAccount, media: Path
) -> None:
    """X timing out after accepting a post gives UncertainOutcome, and find_published then finds that post."""
    platform = adapter_for(account, timeout=0.3)
    text = f"Free them & read https://www.article19.org/ (or indexoncensorship.org). #{TAG} {uuid.uuid4().hex[:6]}"
    attempt = out(text, images=(ImageAttachment(media / "banner-0.png", "A banner"),))
    x_sandbox.fail_next("timeout", retry_after=0.8, path="/2/tweets")
    with pytest.raises(UncertainOutcome):
        platform.publish(attempt)
    (post,) = x_sandbox.posts(account)
    user_id = x_sandbox.state.user_by_name(account.handle).id
    mark = len(x_sandbox.requests())
    found = platform.find_published(attempt)
    assert found is not None and found.remote_id == post.remote_id
    # The user id comes from the access token, so reconciling costs one timeline read and no users/me.
    assert [r["path"] for r in log_since(x_sandbox, mark)] == [f"/2/users/{user_id}/tweets"]
    assert platform.find_published(out(text.replace("Free", "Release"))) is None


def test_reconcile_reads_back_past_a_page_of_newer_posts(
    x_sandbox: XSandbox, account: SandboxAccount, adapter: X
) -> None:
    """A post buried under more than a page of newer posts is still found, one timeline page at a time."""
    early = out(f"Early post {uuid.uuid4().hex[:6]}")
    receipt = adapter.publish(early)
    for n in range(130):
        x_sandbox.post_as(account, f"Later post {n}")
    mark = len(x_sandbox.requests())
    assert adapter.find_published(early) == receipt
    assert len(log_since(x_sandbox, mark)) == 2


def test_fetch_mentions_one_call_for_all_tags(x_sandbox: XSandbox, adapter: X, account: SandboxAccount) -> None:
    """All tags go in one recent-search call; replies, sensitive posts and authors are mapped; retweets are left out."""
    a, b = f"Tag{uuid.uuid4().hex[:6]}", f"Tag{uuid.uuid4().hex[:6]}"
    supporter = x_sandbox.create_account(fresh("sup"), display_name="A Supporter")
    plain = x_sandbox.post_as(supporter, f"Free them #{a}")
    reply = x_sandbox.post_as(supporter, f"Agreed #{b}", reply_to=plain)
    touchy = x_sandbox.post_as(supporter, f"Graphic #{a.lower()}", sensitive=True)
    x_sandbox.post_as(supporter, "", reshare_of=plain)
    x_sandbox.post_as(supporter, f"Not tracked #{a}x")
    mark = len(x_sandbox.requests())
    page = adapter.fetch_mentions([a, b], None)
    searches = [r for r in log_since(x_sandbox, mark) if r["path"] == "/2/tweets/search/recent"]
    assert len(searches) == 1
    assert searches[0]["query"]["query"] == f"(#{a} OR #{b}) -is:retweet"
    assert [m.remote_id for m in page.mentions] == [plain, reply, touchy]
    first, second, third = page.mentions
    assert (first.author_handle, first.author_name, first.is_reply, first.sensitive) == (
        supporter.handle,
        "A Supporter",
        False,
        False,
    )
    assert second.is_reply and third.sensitive
    assert page.cursor == touchy
    later = x_sandbox.post_as(supporter, f"Still here #{b}")
    mark = len(x_sandbox.requests())
    assert [m.remote_id for m in adapter.fetch_mentions([a, b], page.cursor).mentions] == [later]
    (search,) = [r for r in log_since(x_sandbox, mark) if r["path"] == "/2/tweets/search/recent"]
    assert search["query"]["since_id"] == touchy


def test_fetch_mentions_pages_through_a_flood(x_sandbox: XSandbox, adapter: X) -> None:
    """More than a page of new posts is read with next_token, oldest first; a page cap keeps the newest and warns."""
    tag = f"Flood{uuid.uuid4().hex[:6]}"
    author = x_sandbox.create_account(fresh("fl"))
    ids = [x_sandbox.post_as(author, f"Post {n} #{tag}") for n in range(130)]
    mark = len(x_sandbox.requests())
    page = adapter.fetch_mentions([tag], None)
    assert [m.remote_id for m in page.mentions] == ids and page.cursor == ids[-1]
    calls = [r for r in log_since(x_sandbox, mark) if r["path"] == "/2/tweets/search/recent"]
    assert len(calls) == 2 and "next_token" in calls[1]["query"]
    capped = adapter_for(x_sandbox.create_account(fresh()), options={"search_max_pages": 1})
    with capture_logs() as logs:
        newest = capped.fetch_mentions([tag], None)
    assert [m.remote_id for m in newest.mentions] == ids[-100:]
    assert any(e["event"] == "mentions_truncated" for e in logs)


def test_reshare_retweets_once(x_sandbox: XSandbox, adapter: X, account: SandboxAccount) -> None:
    """A reshare is a retweet by the campaign account of that post; repeating it does not retweet twice."""
    tag = f"Rt{uuid.uuid4().hex[:6]}"
    supporter = x_sandbox.create_account(fresh("sup"))
    original = x_sandbox.post_as(supporter, f"Please share #{tag}")
    (mention,) = adapter.fetch_mentions([tag], None).mentions
    receipt = adapter.reshare(mention)
    adapter.reshare(mention)
    assert receipt.remote_id == original
    retweets = [p for p in x_sandbox.posts(account) if p.reshare_of]
    assert [p.reshare_of for p in retweets] == [original]
    me = adapter.whoami()
    assert any(r["path"] == f"/2/users/{me.id}/retweets" for r in x_sandbox.requests())


def test_whoami_is_asked_once(x_sandbox: XSandbox, adapter: X, account: SandboxAccount) -> None:
    """whoami answers with the account's id and handle and is cached after the first call."""
    mark = len(x_sandbox.requests())
    first, second = adapter.whoami(), adapter.whoami()
    assert first == second and first.handle == account.handle
    assert [r["path"] for r in log_since(x_sandbox, mark)] == ["/2/users/me"]


def test_search_cursor_older_than_seven_days_falls_back_to_start_time() -> None:
    """After a week-long outage the server refuses the old since_id with X's 400, and the adapter searches the window instead, reporting it once."""
    import tweepy

    now = [1_700_000_000.0]
    with XSandbox(wall=lambda: now[0]) as sandbox:
        supporter, me = sandbox.create_account(fresh("sup")), sandbox.create_account(fresh())
        platform = adapter_for(me, wall=lambda: now[0])
        tag = f"Free{uuid.uuid4().hex[:8]}"
        first = sandbox.post_as(supporter, f"Before the outage #{tag}")
        page = platform.fetch_mentions([tag], None)
        assert [m.remote_id for m in page.mentions] == [first]
        now[0] += 8 * 86400
        with pytest.raises(tweepy.BadRequest) as raised:
            platform._client.search_recent_tweets(f"#{tag}", since_id=page.cursor)
        assert raised.value.response.status_code == 400
        body = raised.value.response.json()
        assert body["title"] == "Invalid Request" and body["errors"][0]["parameters"] == {"since_id": [page.cursor]}
        assert "'since_id' must be a tweet id created after" in body["errors"][0]["message"]
        later = sandbox.post_as(supporter, f"After the outage #{tag}")
        mark = len(sandbox.requests())
        with capture_logs() as events:
            resumed = platform.fetch_mentions([tag], page.cursor)
            again = platform.fetch_mentions([tag], page.cursor)
        assert [m.remote_id for m in resumed.mentions] == [later] and resumed.cursor == later
        assert [m.remote_id for m in again.mentions] == [later]
        sent = [r for r in log_since(sandbox, mark) if r["path"] == "/2/tweets/search/recent"]
        assert [r["status"] for r in sent] == [200, 200]
        assert all("since_id" not in r["query"] and r["query"]["start_time"] for r in sent)
        assert [e["event"] for e in events if e["event"] == "mentions_cursor_expired"] == ["mentions_cursor_expired"]
        assert platform.fetch_mentions([tag], resumed.cursor).mentions == []


def test_search_refuses_a_start_time_before_the_seven_day_window(x_sandbox: XSandbox) -> None:
    """A start_time more than 7 days back is a 400 naming the parameter, as on X."""
    import tweepy

    platform = adapter_for(x_sandbox.create_account(fresh()))
    with pytest.raises(tweepy.BadRequest) as raised:
        platform._client.search_recent_tweets("#FreeAndreiandIrina", start_time="2000-01-01T00:00:00Z")
    assert raised.value.response.json()["errors"][0]["parameters"] == {"start_time": ["2000-01-01T00:00:00Z"]}
