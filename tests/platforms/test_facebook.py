"""Facebook Page adapter against the Graph sandbox: text, photos with alt text, video with captions, vertical
video as a Reel (never a silent draft), and reconciling by reading the Page's published posts back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.errors import ContentRejected, OutcomeUnknown, UncertainOutcome
from bot.core.values import ImageAttachment, VideoAttachment
from bot.platforms.base import Platform
from bot.platforms.facebook.adapter import vtt_to_srt
from sandboxes import SandboxAccount
from sandboxes.graph.sandbox import GraphSandbox
from tests.platforms.graph_support import jpeg_folder
from tests.platforms.support import adapter_for, fresh_name, outgoing


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return jpeg_folder(tmp_path_factory.mktemp("fb-media"))


@pytest.fixture
def account(facebook_sandbox: GraphSandbox) -> Iterator[SandboxAccount]:
    yield facebook_sandbox.create_account(fresh_name("page"))
    facebook_sandbox.restore_defaults()


@pytest.fixture
def fb(account: SandboxAccount) -> Iterator[Platform]:
    adapter = adapter_for(account, timeout=1)
    yield adapter
    adapter.close()


def text() -> str:
    return f"Free Andrei and Irina https://example.org #FreeAndreiandIrina {uuid.uuid4().hex[:6]}"


def test_text_and_photos_with_alt_text(facebook_sandbox: GraphSandbox, account, fb: Platform, media: Path) -> None:
    """A text post, then two unpublished photos joined in one feed post keeping their alt texts."""
    fb.publish(outgoing(text()))
    images = (ImageAttachment(media / "banner-0.png", "Banner one"), ImageAttachment(media / "banner-1.jpg", "Two"))
    receipt = fb.publish(outgoing(text(), images=images))
    posts = facebook_sandbox.posts(account)
    assert len(posts) == 2 and posts[1].remote_id == receipt.remote_id
    assert [m["alt"] for m in posts[1].media] == ["Banner one", "Two"]


def test_wide_video_with_captions_and_vertical_as_reel(facebook_sandbox: GraphSandbox, account, fb, media) -> None:
    """A wide video goes through the resumable upload with captions; a vertical one is published as a Reel."""
    fb.publish(outgoing(text(), video=VideoAttachment(media / "wide.mp4", "Wide", captions=media / "clip.vtt")))
    fb.publish(outgoing(text(), video=VideoAttachment(media / "clip.mp4", "Tall")))
    posts = facebook_sandbox.posts(account)
    assert [p.media[0]["captions"] for p in posts] == [True, False]
    assert [facebook_sandbox.state.posts[p.remote_id].kind for p in posts] == ["video", "reel"]


def test_lost_feed_answer_is_matched_in_published_posts(facebook_sandbox: GraphSandbox, account, fb) -> None:
    """The feed post was stored but its answer lost: the read-back finds it, and nothing is posted twice."""
    out = outgoing(text())
    facebook_sandbox.crash_after("/feed")
    with pytest.raises(UncertainOutcome):
        fb.publish(out)
    [post] = facebook_sandbox.posts(account)
    found = fb.find_published(out)
    assert found is not None and found.remote_id == post.remote_id


def test_lost_feed_request_is_not_found_and_may_be_sent(facebook_sandbox: GraphSandbox, account, fb) -> None:
    """Nothing went out (the Page has no such post since the attempt): find_published says None."""
    out = outgoing(text())
    out.notes.put("intent_at", "0")
    assert fb.find_published(out) is None


def test_unreadable_page_is_outcome_unknown(facebook_sandbox: GraphSandbox) -> None:
    """When the read-back is refused (no pages_read_engagement) the bot does not guess: OutcomeUnknown."""
    page = facebook_sandbox.create_account(fresh_name("page"), scopes={"pages_manage_posts"})
    adapter = adapter_for(page)
    out = outgoing(text())
    out.notes.put("intent_at", "0")
    with pytest.raises(OutcomeUnknown, match="cannot be read back"):
        adapter.find_published(out)


def test_two_matching_posts_are_outcome_unknown(facebook_sandbox: GraphSandbox, account, fb) -> None:
    """Two posts with this text since the attempt: the bot cannot tell which is ours and asks a person."""
    out = outgoing(text())
    out.notes.put("intent_at", "0")
    facebook_sandbox.post_as(account, out.text)
    facebook_sandbox.post_as(account, out.text)
    with pytest.raises(OutcomeUnknown):
        fb.find_published(out)


def test_reel_left_as_draft_is_an_error(facebook_sandbox: GraphSandbox, account, fb, media) -> None:
    """A Reel Facebook did not publish is reported, never recorded as published."""
    facebook_sandbox.draft_reels(1)
    with pytest.raises(ContentRejected, match="draft"):
        fb.publish(outgoing(text(), video=VideoAttachment(media / "clip.mp4", "Tall")))
    assert facebook_sandbox.posts(account) == []


def test_vtt_becomes_srt() -> None:
    """WebVTT cues become numbered SubRip cues with comma milliseconds."""
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.500 line:90%\nFree them\n\n00:01.500 --> 00:03.000\nNow\n"
    assert (
        vtt_to_srt(vtt).decode()
        == "1\n00:00:00,000 --> 00:00:01,500\nFree them\n\n2\n00:00:01,500 --> 00:00:03,000\nNow\n"
    )
