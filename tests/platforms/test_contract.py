"""The contract every platform adapter keeps, run over each adapter against its sandbox server.

Only the public Platform and Sandbox interfaces are used here: whatever passes for one
platform passes for all, and a new platform joins by adding its adapter and sandbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.core.errors import ContentRejected, RateLimited
from bot.core.values import ImageAttachment, Outgoing, VideoAttachment
from bot.platforms import platform_class
from bot.platforms.base import Platform
from sandboxes import Sandbox, SandboxAccount
from tests.platforms.support import FAULT_ERRORS, fresh_name, media_folder, opened, outgoing

pytestmark = pytest.mark.slow


@pytest.fixture
def campaign_account(sandbox: Sandbox) -> SandboxAccount:
    return sandbox.create_account(fresh_name("index"))


@pytest.fixture
def adapter(campaign_account: SandboxAccount, request: pytest.FixtureRequest) -> Iterator[Platform]:
    # Platforms that fetch media from a URL (Instagram, Threads) get the loopback media host, as the worker
    # hands them the configured one.
    needs_host = getattr(platform_class(campaign_account.entry["platform"]), "needs_media_host", False)
    host = request.getfixturevalue("media_host") if needs_host else None
    yield from opened(campaign_account, **({"media_host": host} if host else {}))


def media_of(adapter: Platform, media_dir: Path, n: int) -> Path:
    """Banner ``n`` in a format the platform takes (Instagram takes JPEG only)."""
    return media_dir / f"banner-{n}.{'png' if 'PNG' in adapter.limits.image_formats else 'jpg'}"


def plain(adapter: Platform, media_dir: Path, text: str) -> Outgoing:
    """A post of ``text``, with one image on a platform that takes no text-only post (Instagram)."""
    image = (ImageAttachment(media_of(adapter, media_dir, 0), "Campaign banner"),)
    return outgoing(text, images=image if getattr(adapter, "needs_media", False) else ())


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = media_folder(
        tmp_path_factory.mktemp("contract-media"),
        banner_size=(1200, 675),
        clip="supporter",
        seconds=3,
        clip_size=(640, 360),
        captions=["Andrei and Irina have been jailed", "for doing their jobs"],
    )
    for n in range(4):  # the same banners as JPEG, for platforms that take no PNG
        Image.open(root / f"banner-{n}.png").convert("RGB").save(root / f"banner-{n}.jpg", "JPEG", quality=85)
    return root


def only_post_by(sandbox: Sandbox, account: SandboxAccount, remote_id: str):
    matches = [p for p in sandbox.posts(account) if p.remote_id == remote_id]
    assert len(matches) == 1, f"expected one post {remote_id} on the server, found {len(matches)}"
    return matches[0]


def test_publishes_text(sandbox: Sandbox, campaign_account: SandboxAccount, adapter: Platform, media_dir) -> None:
    """A text post (with an image where text alone is refused) reaches the server once, hashtag intact."""
    text = f"Andrei and Irina must be freed. #FreeAndreiandIrina {uuid.uuid4().hex[:6]}"
    receipt = adapter.publish(plain(adapter, media_dir, text))
    post = only_post_by(sandbox, campaign_account, receipt.remote_id)
    assert post.text.strip() == text
    assert receipt.url


def test_publishes_four_images_with_alt_text(
    sandbox: Sandbox, campaign_account: SandboxAccount, adapter: Platform, media_dir: Path
) -> None:
    """Four images go up with their own alt texts, in order."""
    images = tuple(
        ImageAttachment(media_of(adapter, media_dir, n), f"Campaign banner number {n + 1}") for n in range(4)
    )
    receipt = adapter.publish(outgoing(f"Banners #FreeAndreiandIrina {uuid.uuid4().hex[:6]}", images=images))
    post = only_post_by(sandbox, campaign_account, receipt.remote_id)
    assert [m["kind"] for m in post.media] == ["image"] * 4
    if adapter.limits.alt_text:  # Telegram shows no alt text: the server holds none to compare
        assert [m["alt"] for m in post.media] == [i.alt for i in images]


def test_publishes_video_with_alt_text(
    sandbox: Sandbox, campaign_account: SandboxAccount, adapter: Platform, media_dir: Path
) -> None:
    """A supporter video goes up through the platform's upload flow with its alt text (and captions where taken)."""
    video = VideoAttachment(
        media_dir / "supporter.mp4", "A supporter speaks to camera", captions=media_dir / "supporter.vtt"
    )
    receipt = adapter.publish(outgoing(f"A message for Andrei {uuid.uuid4().hex[:6]}", video=video))
    post = only_post_by(sandbox, campaign_account, receipt.remote_id)
    assert [m["kind"] for m in post.media] == ["video"]
    if adapter.limits.alt_text and getattr(adapter, "video_alt_text", True):  # Reels, Page videos: no alt text
        assert post.media[0]["alt"] == video.alt
    if adapter.limits.captions:
        assert post.media[0].get("captions"), "platform takes captions but the server holds none"


def test_staging_posts_nothing_and_the_post_still_carries_its_image(
    sandbox: Sandbox, campaign_account: SandboxAccount, adapter: Platform, media_dir: Path
) -> None:
    """Media staged before the slot (where the platform stages) puts no post up; the post made after it has the image and alt."""
    image = ImageAttachment(media_of(adapter, media_dir, 0), "Banner: Free Andrei and Irina")
    out = outgoing(f"Staged banner #FreeAndreiandIrina {uuid.uuid4().hex[:6]}", images=(image,))
    before = len(sandbox.posts(campaign_account))
    assert adapter.stage(out) is (adapter.stage_group > 0)
    assert len(sandbox.posts(campaign_account)) == before
    post = only_post_by(sandbox, campaign_account, adapter.publish(out).remote_id)
    assert [m["kind"] for m in post.media] == ["image"]
    if adapter.limits.alt_text:
        assert [m["alt"] for m in post.media] == ["Banner: Free Andrei and Irina"]


def test_text_over_limit_is_refused_before_sending(sandbox: Sandbox, adapter: Platform, campaign_account) -> None:
    """Text the platform would refuse raises ContentRejected and nothing is posted; text is never cut."""
    before = len(sandbox.posts(campaign_account))
    with pytest.raises(ContentRejected):
        adapter.publish(outgoing("Free Andrei and Irina! " * (adapter.max_text_for(adapter.account) // 23 + 1)))
    assert len(sandbox.posts(campaign_account)) == before


def test_find_published_returns_the_post(sandbox: Sandbox, adapter: Platform, media_dir: Path) -> None:
    """After a publish, the reconcile hook finds the same post; before it, finds nothing."""
    out = plain(adapter, media_dir, f"Reconcile me #FreeAndreiandIrina {uuid.uuid4().hex[:8]}")
    assert adapter.find_published(out) is None
    receipt = adapter.publish(out)
    sandbox.index()
    found = adapter.find_published(out)
    assert found is not None and found.remote_id == receipt.remote_id


def test_reads_hashtag_posts_and_reshares_one(sandbox: Sandbox, adapter: Platform, campaign_account) -> None:
    """A supporter's tagged post is found, the cursor moves past it, and a reshare lands on the server."""
    if not adapter.supports_tracking:
        pytest.skip(f"{adapter.name} has no hashtag search: bot check refuses tracking on it")
    if not adapter.supports_tracking:
        pytest.skip(f"{adapter.name} has no hashtag search (its reshares are scheduled by reference)")
    tag = f"Free{uuid.uuid4().hex[:6]}"
    first = adapter.fetch_mentions([tag], None)
    supporter = sandbox.create_account(fresh_name("supporter"))
    remote_id = sandbox.post_as(supporter, f"Solidarity with Andrei and Irina #{tag}")
    sandbox.index()
    page = adapter.fetch_mentions([tag], first.cursor)
    assert [m.remote_id for m in page.mentions] == [remote_id]
    mention = page.mentions[0]
    assert mention.author_handle.lstrip("@").split("@")[0] == supporter.handle.lstrip("@").split("@")[0]
    adapter.reshare(mention)
    reshares = [p for p in sandbox.posts(campaign_account) if p.reshare_of]
    assert [p.reshare_of for p in reshares] == [remote_id]
    sandbox.index()
    assert adapter.fetch_mentions([tag], page.cursor).mentions == []


def test_whoami_names_the_account(adapter: Platform, campaign_account: SandboxAccount) -> None:
    """whoami answers with the handle the account logged in as."""
    me = adapter.whoami()
    assert me.id
    assert me.handle.lstrip("@").split("@")[0] == campaign_account.handle.lstrip("@").split("@")[0]


@pytest.mark.parametrize(("fault", "error"), FAULT_ERRORS)
def test_maps_each_error_class(sandbox: Sandbox, adapter: Platform, fault: str, error: type, media_dir) -> None:
    """Each kind of platform failure reaches the caller as the bot's error for it."""
    adapter.whoami()  # log in first, so the fault hits the publish call itself
    sandbox.fail_next(fault, retry_after=1)
    with pytest.raises(error) as raised:
        adapter.publish(plain(adapter, media_dir, f"Fault {fault} {uuid.uuid4().hex[:6]}"))
    if fault == "rate_limited":
        assert raised.value.retry_after is not None
    if fault == "auth":
        assert any(var in str(raised.value) for var in adapter.account.credentials.values())


def test_no_request_while_rate_limited(sandbox: Sandbox, adapter: Platform, media_dir: Path) -> None:
    """After a 429 the adapter refuses locally until the reset, sending nothing."""
    adapter.whoami()
    sandbox.fail_next("rate_limited", retry_after=30)
    with pytest.raises(RateLimited):
        adapter.publish(plain(adapter, media_dir, f"First {uuid.uuid4().hex[:6]}"))
    with pytest.raises(RateLimited) as second:
        adapter.publish(plain(adapter, media_dir, f"Second {uuid.uuid4().hex[:6]}"))
    assert 0 < second.value.retry_after <= 31
