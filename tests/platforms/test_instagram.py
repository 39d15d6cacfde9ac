"""Instagram adapter against the Graph sandbox: containers, polling on the test's clock, exactly once by the
container id in the notes, media fetched from a loopback media host, quotas, tokens and usage."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bot.core.errors import (
    AuthFailed,
    ContentRejected,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.core.values import ImageAttachment, MemoryNotes, VideoAttachment
from bot.platforms.base import Platform
from bot.platforms.instagram import Instagram
from sandboxes import SandboxAccount
from sandboxes.graph.sandbox import GraphSandbox
from tests.platforms.graph_fixtures import graph_fixtures
from tests.platforms.graph_host import LoopbackMediaHost
from tests.platforms.graph_support import GraphClock
from tests.platforms.support import adapter_for, outgoing

media, clock, account, ig = graph_fixtures("instagram_sandbox", "ig", processing=20.0)


def image(media: Path, n: int = 0) -> ImageAttachment:
    return ImageAttachment(media / f"banner-{n}.jpg", f"Campaign banner {n + 1}: Free Andrei and Irina")


def text() -> str:
    return f"Free Andrei and Irina #FreeAndreiandIrina {uuid.uuid4().hex[:6]}"


def test_image_with_alt_text_goes_out_after_polling_on_the_clock(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media: Path, clock: GraphClock, media_host
) -> None:
    """An image post is fetched from the media host, polled on the injected clock (no real sleep) and published once."""
    out = outgoing(text(), images=(image(media),))
    receipt = ig.publish(out)
    [post] = instagram_sandbox.posts(account)
    assert post.remote_id == receipt.remote_id and receipt.url.startswith("https://www.instagram.com/p/")
    assert post.media == [{"kind": "image", "alt": image(media).alt, "bytes": (media / "banner-0.jpg").stat().st_size}]
    assert sum(clock.slept) >= 20 and sum(clock.slept) <= 300
    assert out.notes.get("container") and media_host.handed[-1] in instagram_sandbox.fetched()


def test_carousel_keeps_order_and_alt_texts(instagram_sandbox: GraphSandbox, account, ig: Platform, media) -> None:
    """Three images become one carousel post with each image's own alt text, in order."""
    images = tuple(image(media, n) for n in range(3))
    ig.publish(outgoing(text(), images=images))
    [post] = instagram_sandbox.posts(account)
    assert [m["alt"] for m in post.media] == [i.alt for i in images]


def test_reel_from_a_supporter_video(instagram_sandbox: GraphSandbox, account, ig: Platform, media) -> None:
    """A video goes out as a Reel made from the host's URL."""
    ig.publish(outgoing(text(), video=VideoAttachment(media / "clip.mp4", "A supporter speaks")))
    [post] = instagram_sandbox.posts(account)
    assert [m["kind"] for m in post.media] == ["video"]
    assert [c["media_type"] for c in instagram_sandbox.containers(account)] == ["REELS"]
    assert "cover_bytes" not in post.media[0]  # no cover: none asked for, none fetched


def test_reel_cover_is_fetched_from_its_own_url(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media, media_host: LoopbackMediaHost
) -> None:
    """A Reel with a cover hands Instagram a cover_url from the media host, which the sandbox fetches and records."""
    before = len(media_host.handed)
    video = VideoAttachment(media / "clip.mp4", "A supporter speaks", cover=media / "banner-1.jpg")
    ig.publish(outgoing(text(), video=video))
    [post] = instagram_sandbox.posts(account)
    assert post.media[0]["cover_bytes"] == (media / "banner-1.jpg").stat().st_size
    handed = media_host.handed[before:]
    assert len(handed) == 2 and set(handed) <= set(instagram_sandbox.fetched())
    assert [media_host.files[u.split("/")[-2]][0].name for u in handed] == ["clip.mp4", "banner-1.jpg"]


def test_reel_with_a_wrong_cover_is_refused_naming_it(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media
) -> None:
    """A PNG cover fails as Instagram fails (9004/2207052): one fresh try, then ContentRejected naming it; no post."""
    video = VideoAttachment(media / "clip.mp4", "A supporter speaks", cover=media / "banner-0.png")
    with pytest.raises(ContentRejected, match=r"banner-0\.png"):
        ig.publish(outgoing(text(), video=video))
    assert instagram_sandbox.posts(account) == []


def test_text_only_and_png_are_refused(instagram_sandbox: GraphSandbox, account, ig: Platform, media) -> None:
    """A text-only post is refused before sending; a PNG is refused by Instagram and the error names the file."""
    with pytest.raises(ContentRejected, match="text-only"):
        ig.publish(outgoing(text()))
    png = ImageAttachment(media / "banner-0.png", "A PNG banner")
    with pytest.raises(ContentRejected, match="banner-0.png"):
        ig.publish(outgoing(text(), images=(png,)))
    assert instagram_sandbox.posts(account) == []


def test_still_processing_after_the_bound_resumes_the_same_container(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media, clock: GraphClock
) -> None:
    """Polling stops after 300 s of clock time as a retryable error; the retry publishes the same container."""
    instagram_sandbox.use_clock(clock, processing_seconds=1000)
    out = outgoing(text(), images=(image(media),))
    with pytest.raises(PlatformUnavailable, match="IN_PROGRESS"):
        ig.publish(out)
    assert sum(clock.slept) <= 300
    clock.advance(1000)
    ig.publish(out)
    assert len(instagram_sandbox.posts(account)) == 1
    assert len(instagram_sandbox.containers(account)) == 1


def test_lost_publish_answer_is_found_published_and_never_sent_again(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media
) -> None:
    """media_publish stored but unanswered: the outcome is uncertain, the container says PUBLISHED, no second post."""
    out = outgoing(text(), images=(image(media),))
    instagram_sandbox.crash_after("media_publish")
    with pytest.raises(UncertainOutcome):
        ig.publish(out)
    found = ig.find_published(out)
    [post] = instagram_sandbox.posts(account)
    assert found is not None and found.remote_id == post.remote_id
    assert ig.publish(out).remote_id == post.remote_id  # a retry records it, sends nothing
    assert len(instagram_sandbox.posts(account)) == 1


def test_finished_container_in_the_notes_is_published_not_remade(
    instagram_sandbox: GraphSandbox, account, media_host, media, clock: GraphClock
) -> None:
    """A worker that died after creating the container: the next one publishes that container."""
    first = adapter_for(account, media_host=media_host, wall=clock, sleep=clock.sleep)
    out = outgoing(text(), images=(image(media),), notes=MemoryNotes())
    cid = first.client.post("me/media", {"image_url": media_host.url_for(image(media).path, publication=out.key)})["id"]
    out.notes.put("container", cid)
    assert first.find_published(out) is None
    clock.advance(60)
    first.publish(out)
    assert len(instagram_sandbox.containers(account)) == 1 and len(instagram_sandbox.posts(account)) == 1


@pytest.mark.parametrize("how", ["error", "expired"])
def test_failed_or_expired_container_is_replaced(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media_host, media, clock: GraphClock, how: str
) -> None:
    """A container in ERROR or EXPIRED (24 hours) is replaced by a new one; one post results."""
    out = outgoing(text(), images=(image(media),))
    if how == "error":
        instagram_sandbox.fail_processing()
    url = media_host.url_for(image(media).path, publication=out.key)
    out.notes.put("container", ig.client.post("me/media", {"image_url": url})["id"])
    if how == "expired":
        clock.advance(25 * 3600)
    ig.publish(out)
    assert [c["status"] for c in instagram_sandbox.containers(account)] == [how.upper(), "PUBLISHED"]
    assert len(instagram_sandbox.posts(account)) == 1


def test_url_expired_before_instagram_fetched_it_gets_one_fresh_url(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media_host: LoopbackMediaHost, media
) -> None:
    """The first URL had expired when Instagram came for it (9004/2207052): one fresh URL, one post, no duplicate."""
    media_host.expire_next(1)
    before = len(media_host.handed)
    ig.publish(outgoing(text(), images=(image(media),)))
    assert len(media_host.handed) - before == 2
    assert [status for _, status in media_host.served[-2:]] == [403, 200]
    assert len(instagram_sandbox.posts(account)) == 1


def test_url_expired_twice_is_a_clear_error_naming_the_file(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media_host: LoopbackMediaHost, media
) -> None:
    """Two refused URLs for one file end in ContentRejected naming it and what Instagram expected; nothing posted."""
    media_host.expire_next(2)
    with pytest.raises(ContentRejected, match=r"banner-0\.jpg.*2207052.*public URL"):
        ig.publish(outgoing(text(), images=(image(media),)))
    assert instagram_sandbox.posts(account) == []


def test_without_media_host_the_error_names_the_setting(account, clock: GraphClock, media) -> None:
    """No media host configured: a permanent error naming the media_host setting, before any request."""
    adapter = adapter_for(account, wall=clock, sleep=clock.sleep)
    with pytest.raises(PermanentError, match="media_host"):
        adapter.publish(outgoing(text(), images=(image(media),)))


def test_spent_daily_quota_waits_before_making_a_container(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media
) -> None:
    """content_publishing_limit at its total: RateLimited with a wait, and no container is made."""
    instagram_sandbox.set_quota(account, 1)
    ig.publish(outgoing(text(), images=(image(media),)))
    with pytest.raises(RateLimited) as raised:
        ig.publish(outgoing(text(), images=(image(media, 1),)))
    assert raised.value.retry_after and raised.value.retry_after >= 3600
    assert len(instagram_sandbox.containers(account)) == 1


def test_expired_token_names_the_account_and_variable(
    instagram_sandbox: GraphSandbox, account: SandboxAccount, ig: Platform, media
) -> None:
    """Error 190 (expired token) is AuthFailed naming the account and its environment variable, never the token."""
    instagram_sandbox.expire_token(account)
    with pytest.raises(AuthFailed) as raised:
        ig.publish(outgoing(text(), images=(image(media),)))
    [var] = account.entry["credentials"].values()
    assert account.id in str(raised.value) and var in str(raised.value)
    assert account.env[var] not in str(raised.value)


def test_high_usage_slows_down_before_graph_throttles(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media
) -> None:
    """Usage headers at 90% make the adapter pause its next call locally, before any 4/80002 error."""
    instagram_sandbox.set_usage(account, 90)
    ig.whoami()
    sent = len(instagram_sandbox.requests())
    with pytest.raises(RateLimited) as raised:
        ig.publish(outgoing(text(), images=(image(media),)))
    assert 60 <= (raised.value.retry_after or 0) <= 180
    assert len(instagram_sandbox.requests()) == sent


def test_token_refreshed_ahead_of_expiry(instagram_sandbox: GraphSandbox, account, ig: Platform, clock) -> None:
    """credentials_expire_at refreshes the long-lived token (ig_refresh_token): 60 more days, and it works."""
    expires = ig.credentials_expire_at()
    assert expires is not None and abs(expires.timestamp() - (clock() + 60 * 86400)) < 5
    assert ig.whoami().handle == account.handle


def test_check_rules() -> None:
    """bot check's Instagram rules: 30 hashtags, 20 mentions, text-only posts, aspect ratios, Reels codecs."""
    assert Instagram.text_refusals(" ".join(f"#t{n}" for n in range(31))) == [
        "has 31 hashtags (expected at most 30 on instagram)"
    ]
    assert Instagram.text_refusals(" ".join(f"#t{n}" for n in range(30))) == []
    assert Instagram.media_refusals([], None)[0][1].startswith("instagram takes no text-only post")

    class Info:
        def __init__(self, w: int, h: int, **kw: object) -> None:
            self.width, self.height, self.duration = w, h, kw.get("duration")
            self.video_codec, self.audio_codec = kw.get("video_codec"), kw.get("audio_codec")

    [(where, why)] = Instagram.media_refusals([Info(1500, 500)], None)
    assert where == ("media", 0, "file") and "4:5 to 1.91:1" in why
    assert Instagram.media_refusals([Info(1080, 1350), Info(1080, 566)], None) == []
    refusals = Instagram.media_refusals([], Info(1080, 1920, duration=2.0, video_codec="vp9", audio_codec="opus"))
    assert len(refusals) == 3


def test_refreshed_token_is_kept_in_the_state_folder(
    instagram_sandbox: GraphSandbox, account: SandboxAccount, media_host, clock: GraphClock, tmp_path: Path
) -> None:
    """A refreshed token is saved (mode 600) and used by the next process; the log never shows it."""
    first = adapter_for(account, media_host=media_host, wall=clock, state_dir=tmp_path)
    first.credentials_expire_at()
    saved = tmp_path / "graph-tokens" / f"{account.id}.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    refreshed = first._secret("access_token")
    assert refreshed not in account.env.values()
    second = adapter_for(account, media_host=media_host, wall=clock, state_dir=tmp_path)
    assert second._secret("access_token") == refreshed
    before = len([r for r in instagram_sandbox.requests() if r["path"].endswith("refresh_access_token")])
    second.credentials_expire_at()
    after = len([r for r in instagram_sandbox.requests() if r["path"].endswith("refresh_access_token")])
    assert after == before  # 60 days left: no refresh


def test_staged_container_is_the_one_published(
    instagram_sandbox: GraphSandbox, account, ig: Platform, media, clock: GraphClock
) -> None:
    """Staging makes the container ahead of the slot (nothing posted); the slot publishes that very container."""
    out = outgoing(text(), images=(image(media),))
    assert ig.stage(out) is True
    assert ig.stage(out) is False  # once per publication
    assert instagram_sandbox.posts(account) == [] and len(instagram_sandbox.containers(account)) == 1
    clock.advance(60)  # processed meanwhile: the slot only publishes
    slept = len(clock.slept)
    ig.publish(out)
    assert len(clock.slept) == slept
    assert len(instagram_sandbox.containers(account)) == 1 and len(instagram_sandbox.posts(account)) == 1
    assert out.notes.get("container") == instagram_sandbox.containers(account)[0]["id"]
