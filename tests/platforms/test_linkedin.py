"""The LinkedIn adapter against the LinkedIn sandbox: little text, media flows, exactly once, errors, tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.core.errors import (
    AuthFailed,
    ContentRejected,
    DuplicateContent,
    OutcomeUnknown,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.core.values import ImageAttachment, MemoryNotes, VideoAttachment
from bot.platforms.base import Platform
from bot.platforms.linkedin import LinkedIn
from bot.platforms.linkedin.adapter import srt_from_vtt
from bot.platforms.linkedin.text import escape, unescape
from sandboxes import SandboxAccount
from sandboxes.linkedin.sandbox import LinkedInSandbox
from tests.platforms.support import Sleeps, adapter_for, fresh_name, media_folder, opened, outgoing, restored

ROOT = Path(__file__).resolve().parents[2]
PRESS_RELEASE = ROOT.parent / "shared" / "campaign" / "press-release.txt"


def campaign_texts() -> list[str]:
    """Every text the campaign's post files give LinkedIn (text or variant, link appended), and the press
    release's lines with reserved characters (the post files themselves hold only '#')."""
    texts = []
    for path in sorted((ROOT / "posts").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for text in [data.get("text"), *(data.get("variants") or {}).values()]:
            if isinstance(text, str) and text.strip():
                link = data.get("link")
                texts.append(f"{text.strip()}\n{link}" if link and link not in text else text.strip())
    if PRESS_RELEASE.exists():
        texts += [line for line in PRESS_RELEASE.read_text(encoding="utf-8").splitlines() if set(line) & set("()[]_*@")]
    return texts


@pytest.fixture
def sandbox(linkedin_sandbox: LinkedInSandbox) -> Iterator[LinkedInSandbox]:
    yield from restored(linkedin_sandbox)


@pytest.fixture
def page(sandbox: LinkedInSandbox) -> SandboxAccount:
    return sandbox.create_account(fresh_name("a19"))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(page: SandboxAccount, sleeps: Sleeps) -> Iterator[Platform]:
    yield from opened(page, sleep=sleeps)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_folder(
        tmp_path_factory.mktemp("linkedin-media"),
        banner_size=(1200, 627),
        clip="supporter",
        seconds=3,
        clip_size=(640, 360),
        captions=["Andrei and Irina have been jailed", "for doing their jobs"],
    )


def test_campaign_texts_arrive_intact(sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform) -> None:
    """Every campaign text, reserved characters and all, reads on the page exactly as staff wrote it."""
    texts = campaign_texts()
    assert any(set(t) & set("()[]") for t in texts), "no campaign text with reserved characters to test with"
    for text in texts:
        receipt = adapter.publish(outgoing(text))
        [post] = [p for p in sandbox.posts(page) if p.remote_id == receipt.remote_id]
        assert post.text == text


def test_unescaped_text_would_be_cut(sandbox: LinkedInSandbox, page: SandboxAccount) -> None:
    """The sandbox cuts commentary at a stray reserved character, as LinkedIn does, so the test above means something."""
    text = "Jessica Ní Mhainín, Index on Censorship, (address withheld) #FreeAndreiandIrina"
    from sandboxes.linkedin.server import displayed

    assert displayed(text) == "Jessica Ní Mhainín, Index on Censorship, "
    assert displayed(escape(text)) == text


def test_hashtags_stay_hashtags_and_everything_else_is_escaped() -> None:
    """A '#word' hashtag is sent as a hashtag; '#' inside a word, '@' and the other reserved characters are escaped."""
    sent = escape("Free them #FreeAndreiandIrina (now) @index C# a_b #_x")
    assert "#FreeAndreiandIrina" in sent and "\\#FreeAndreiandIrina" not in sent
    assert "\\(now\\)" in sent and "\\@index" in sent and "C\\#" in sent and "a\\_b" in sent and "\\#\\_x" in sent
    assert unescape(sent) == "Free them #FreeAndreiandIrina (now) @index C# a_b #_x"


def test_images_go_up_with_alt_text_as_one_multi_image_post(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform, media: Path
) -> None:
    """Three images are each initialized and PUT, then posted together as multiImage with each alt text."""
    images = tuple(ImageAttachment(media / f"banner-{n}.png", f"Banner {n}: Free Andrei and Irina") for n in range(3))
    before = len(sandbox.requests())
    receipt = adapter.publish(outgoing(f"Banners {uuid.uuid4().hex[:6]}", images=images))
    [post] = [p for p in sandbox.posts(page) if p.remote_id == receipt.remote_id]
    assert [(m["kind"], m["alt"]) for m in post.media] == [("image", i.alt) for i in images]
    calls = [(r["method"], r["path"]) for r in sandbox.requests()[before:]]
    assert calls.count(("POST", "/rest/images")) == 3
    assert sum(1 for m, p in calls if m == "PUT" and p.startswith("/dms-uploads/")) == 3
    assert receipt.url == f"https://www.linkedin.com/feed/update/{receipt.remote_id}/"


def test_video_goes_up_in_parts_finalized_with_their_etags_and_captions(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform, media: Path, sleeps: Sleeps
) -> None:
    """A video cut in parts is finalized with each part's ETag in order, its captions go up as SRT, and the
    post waits (on the injected clock) until the video is AVAILABLE."""
    video_file = media / "supporter.mp4"
    sandbox.part_size(max(1, video_file.stat().st_size // 3))
    sandbox.processing(2)
    out = outgoing(
        f"A message {uuid.uuid4().hex[:6]}",
        video=VideoAttachment(video_file, "A supporter speaks", captions=media / "supporter.vtt"),
    )
    receipt = adapter.publish(out)
    [post] = [p for p in sandbox.posts(page) if p.remote_id == receipt.remote_id]
    [upload] = [v for v in sandbox.videos() if v["urn"] == post.media[0]["id"]]
    assert len(upload["parts"]) >= 3
    assert upload["finalized_with"] == upload["etags"] and all(upload["etags"])
    assert "00:00:00,000 -->" in upload["captions"] and "Andrei and Irina" in upload["captions"]
    assert post.media[0]["alt"] == "A supporter speaks" and post.media[0]["captions"]
    assert sleeps == [5.0, 5.0]
    assert out.notes.get("linkedin.video") == upload["urn"]


def test_a_retry_after_a_failed_post_reuses_the_uploaded_video(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform, media: Path
) -> None:
    """When the post call fails after the upload, the retry posts the video named in the notes without uploading again."""
    notes = MemoryNotes()
    out = outgoing(
        f"Retry {uuid.uuid4().hex[:6]}",
        video=VideoAttachment(media / "supporter.mp4", "A supporter speaks", captions=media / "supporter.vtt"),
        notes=notes,
    )
    sandbox.fail_next("unavailable", path="/rest/posts")
    with pytest.raises(PlatformUnavailable):
        adapter.publish(out)
    before = len(sandbox.requests())
    receipt = adapter.publish(out)
    calls = [(r["method"], r["path"]) for r in sandbox.requests()[before:]]
    assert ("POST", "/rest/videos") not in calls and not any(m == "PUT" for m, _ in calls)
    [post] = [p for p in sandbox.posts(page) if p.remote_id == receipt.remote_id]
    assert post.media[0]["id"] == notes.get("linkedin.video")


def test_a_duplicate_answer_is_recorded_as_the_publication(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform
) -> None:
    """Sending identical content again gets LinkedIn's 422 naming the first post, which becomes the receipt."""
    out = outgoing(f"Once only (really) {uuid.uuid4().hex[:6]} #FreeAndreiandIrina")
    first = adapter.publish(out)
    again = adapter.publish(out)
    assert again == first
    assert [p.remote_id for p in sandbox.posts(page) if p.text == out.text] == [first.remote_id]
    assert [r["status"] for r in sandbox.requests() if r["path"] == "/rest/posts"][-1] == 422


def test_a_duplicate_on_a_first_attempt_is_refused_not_claimed(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform
) -> None:
    """Words the page already carries, sent by a publication that never sent before, are DuplicateContent naming
    the post, not recorded as if this publication had made it."""
    text = f"Said before {uuid.uuid4().hex[:6]}"
    earlier = adapter.publish(outgoing(text))
    with pytest.raises(DuplicateContent, match=earlier.remote_id):
        adapter.publish(outgoing(text))
    assert len([p for p in sandbox.posts(page) if p.text == text]) == 1


def test_read_back_after_a_timeout_finds_the_post(sandbox: LinkedInSandbox, page: SandboxAccount) -> None:
    """A post stored by LinkedIn whose answer never came is uncertain, and reading the page back finds it."""
    adapter = adapter_for(page, timeout=0.3)
    out = outgoing(f"Timed out [but posted] {uuid.uuid4().hex[:6]}")
    sandbox.fail_next("timeout", path="/rest/posts", delay=1.0)
    with pytest.raises(UncertainOutcome):
        adapter.publish(out)
    found = adapter.find_published(out)
    [post] = [p for p in sandbox.posts(page) if p.text == out.text]
    assert found is not None and found.remote_id == post.remote_id
    adapter.close()


def test_without_read_permission_an_unknown_outcome_is_said_not_guessed(
    sandbox: LinkedInSandbox, page: SandboxAccount
) -> None:
    """A token without r_organization_social cannot reconcile: find_published raises OutcomeUnknown and nothing is resent."""
    adapter = adapter_for(page, timeout=0.3)
    sandbox.revoke(page, "r_organization_social")
    out = outgoing(f"No read-back {uuid.uuid4().hex[:6]}")
    sandbox.fail_next("timeout", path="/rest/posts", delay=1.0)
    with pytest.raises(UncertainOutcome):
        adapter.publish(out)
    with pytest.raises(OutcomeUnknown) as raised:
        adapter.find_published(out)
    assert "r_organization_social" in str(raised.value) and out.key in str(raised.value)
    assert len([p for p in sandbox.posts(page) if p.text == out.text]) == 1
    adapter.close()


def test_a_sunset_version_names_the_setting(page: SandboxAccount) -> None:
    """HTTP 426 becomes a permanent error naming the pinned version, the account and the option to change."""
    adapter = adapter_for(page, options={"linkedin_version": "202401"})
    with pytest.raises(PermanentError) as raised:
        adapter.publish(outgoing(f"Old version {uuid.uuid4().hex[:6]}"))
    message = str(raised.value)
    assert "202401" in message and "options.linkedin_version" in message and page.id in message
    adapter.close()


def test_errors_name_what_to_fix(sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform) -> None:
    """401 names the account's token variable, 403 the missing permission, 422 the field, 429 its Retry-After."""
    token_var = page.entry["credentials"]["access_token"]
    sandbox.fail_next("auth")
    with pytest.raises(AuthFailed, match=token_var):
        adapter.publish(outgoing(f"a {uuid.uuid4().hex[:6]}"))
    sandbox.fail_next("rejected")
    with pytest.raises(ContentRejected, match="field /commentary"):
        adapter.publish(outgoing(f"b {uuid.uuid4().hex[:6]}"))
    sandbox.revoke(page, "w_organization_social")
    with pytest.raises(AuthFailed, match="w_organization_social"):
        adapter.publish(outgoing(f"c {uuid.uuid4().hex[:6]}"))
    sandbox.fail_next("rate_limited", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        adapter.whoami()
    assert limited.value.retry_after == 7


def test_an_echoed_token_never_reaches_the_error(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform
) -> None:
    """A proxy page quoting the Authorization header is reported without the token in it."""
    sandbox.fail_next("echo_auth")
    with pytest.raises(PlatformUnavailable) as raised:
        adapter.publish(outgoing(f"Echo {uuid.uuid4().hex[:6]}"))
    token = page.env[page.entry["credentials"]["access_token"]]
    assert token not in str(raised.value) and "[redacted]" in str(raised.value)


def test_reshares_a_partner_post_by_url_with_commentary(
    sandbox: LinkedInSandbox, page: SandboxAccount, adapter: Platform
) -> None:
    """A post scheduled with reshare_of (a LinkedIn URL) is a reshare of that post, carrying our commentary."""
    partner = sandbox.create_account(fresh_name("index"))
    parent = sandbox.post_as(partner, f"Index on Censorship statement {uuid.uuid4().hex[:6]}")
    url = f"https://www.linkedin.com/feed/update/{parent}/"
    receipt = adapter.publish(outgoing("Read our partners (Index on Censorship)", reshare_of=url))
    [post] = [p for p in sandbox.posts(page) if p.remote_id == receipt.remote_id]
    assert post.reshare_of == parent and post.text == "Read our partners (Index on Censorship)"


def test_token_expiry_is_read_and_refreshed_when_near(sandbox: LinkedInSandbox, page: SandboxAccount) -> None:
    """Introspection tells the token's expiry; with a refresh token and expiry near, the adapter refreshes and keeps working."""
    import time

    plain = adapter_for(page)
    expires = plain.credentials_expire_at()
    assert expires is not None and 59 * 86400 < expires.timestamp() - time.time() <= 60 * 86400
    sandbox.expire(page, time.time() + 3 * 86400)
    refreshing = adapter_for(page, secrets={"refresh_token": sandbox.refresh_token(page)})
    renewed = refreshing.credentials_expire_at()
    assert renewed is not None and renewed.timestamp() - time.time() > 59 * 86400
    assert refreshing.publish(outgoing(f"After refresh {uuid.uuid4().hex[:6]}")).remote_id
    plain.close()
    refreshing.close()


def test_bot_check_warns_about_an_old_pinned_version() -> None:
    """A version over ten months old (on the given day) is warned about; a malformed one is an error."""
    assert "linkedin_version" in LinkedIn.option_warnings({"linkedin_version": "202501"}, date(2026, 12, 7))
    assert LinkedIn.option_warnings({"linkedin_version": "202605"}, date(2026, 12, 7)) == {}
    assert LinkedIn.option_warnings({}, date(2027, 6, 1))  # the default ages too
    assert "linkedin_version" in LinkedIn.option_problems(None, {"linkedin_version": "2026-05"})


def test_vtt_captions_become_srt() -> None:
    """WebVTT cues become numbered SubRip cues with comma milliseconds."""
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.500\nFree them\n\n00:01.500 --> 00:03.000\nnow\n"
    assert srt_from_vtt(vtt) == "1\n00:00:00,000 --> 00:00:01,500\nFree them\n\n2\n00:00:01,500 --> 00:00:03,000\nnow\n"
