"""The Telegram adapter against our Bot API sandbox: escaping, captions, albums, flood control, unknown outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.core.errors import AuthFailed, ContentRejected, OutcomeUnknown, PlatformUnavailable, RateLimited
from bot.core.values import ImageAttachment, MemoryNotes, VideoAttachment
from bot.platforms.base import Platform
from bot.platforms.telegram.adapter import SENDING, SENT
from sandboxes.base import SandboxAccount
from sandboxes.telegram.sandbox import TelegramSandbox
from tests.platforms.support import adapter_for, fresh_name, opened, outgoing, restored

REPO = Path(__file__).resolve().parents[2]
BANNERS = tuple(ImageAttachment(REPO / "posts" / "media" / f"banner-{n}.png", f"Banner {n}") for n in (1, 2, 3))
VIDEO = VideoAttachment(REPO / "posts" / "media" / "videos" / "001-supporter.mp4", "A supporter speaks")


@pytest.fixture
def sandbox(telegram_sandbox: TelegramSandbox) -> Iterator[TelegramSandbox]:
    yield from restored(telegram_sandbox)


@pytest.fixture
def channel(sandbox: TelegramSandbox) -> SandboxAccount:
    return sandbox.create_account(fresh_name("belarus"))


@pytest.fixture
def adapter(channel: SandboxAccount) -> Iterator[Platform]:
    yield from opened(channel)


def campaign_texts() -> list[str]:
    """Every text the shipped campaign writes (posts/), each with the characters HTML would take as markup."""
    texts = []
    for path in sorted((REPO / "posts").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data.get("text"), str):
            texts.append(data["text"].strip())
    return texts


def test_campaign_texts_with_markup_characters_arrive_intact(sandbox, channel, adapter) -> None:
    """The campaign's own texts, with < > & and tag-like words added, reach readers exactly as written."""
    texts = campaign_texts()
    assert len(texts) >= 10
    for text in texts[:6]:
        written = f"{text} <b>Andrei</b> & Irina > 365 days; 1 < 2 &amp; 'quotes' \"too\""
        receipt = adapter.publish(outgoing(written))
        [post] = [p for p in sandbox.posts(channel) if p.remote_id == receipt.remote_id]
        assert post.text == written


def test_caption_limit_is_1024_with_media_and_4096_without(sandbox, channel, adapter) -> None:
    """A text over 1,024 characters is refused with a photo before sending; the same text alone goes out."""
    text = "Free Andrei and Irina. " * 45  # 1,035 characters
    before = len(sandbox.messages(channel))
    with pytest.raises(ContentRejected, match="1024"):
        adapter.publish(outgoing(text, images=BANNERS[:1]))
    assert len(sandbox.messages(channel)) == before
    adapter.publish(outgoing(text))
    adapter.publish(outgoing(text[:1024], images=BANNERS[:1]))
    with pytest.raises(ContentRejected):
        adapter.publish(outgoing("x" * 4097))
    assert len(sandbox.messages(channel)) == before + 2


def test_album_is_one_media_group_with_the_caption_on_its_first_item(sandbox, channel, adapter) -> None:
    """Three images go as one sendMediaGroup: three messages in one group, the text only on the first."""
    text = f"Three banners & one hashtag #FreeAndreiandIrina {uuid.uuid4().hex[:6]}"
    receipt = adapter.publish(outgoing(text, images=BANNERS))
    messages = [m for m in sandbox.messages(channel) if m.get("media_group_id")]
    assert len(messages) == 3 and len({m["media_group_id"] for m in messages}) == 1
    assert [m["caption"] for m in messages] == [text, "", ""]
    assert receipt.remote_id.endswith(f"/{messages[0]['message_id']}")
    assert receipt.url == f"https://t.me/{channel.handle[1:]}/{messages[0]['message_id']}"


def test_video_goes_with_its_caption(sandbox, channel, adapter) -> None:
    """A video is one sendVideo message carrying the text as its caption."""
    receipt = adapter.publish(outgoing("A message for Andrei & Irina", video=VIDEO))
    [post] = [p for p in sandbox.posts(channel) if p.remote_id == receipt.remote_id]
    assert post.text == "A message for Andrei & Irina"
    assert [m["kind"] for m in post.media] == ["video"]


def test_link_previews_are_shown_unless_the_account_turns_them_off(sandbox, channel) -> None:
    """By default a text post's link gets its preview; ``link_preview: false`` sends it without."""
    for option, shown in ((None, True), (False, False)):
        options = {} if option is None else {"link_preview": option}
        adapter = adapter_for(channel, options=options)
        try:
            adapter.publish(outgoing(f"Sign the petition https://example.org/petition {uuid.uuid4().hex[:4]}"))
        finally:
            adapter.close()
        assert sandbox.messages(channel)[-1]["_preview"] is shown


def test_429_retry_after_is_honoured_exactly(sandbox, channel) -> None:
    """A 429's parameters.retry_after becomes RateLimited.retry_after and the gate's wait, to the second."""
    now = [1_000_000.0]
    adapter = adapter_for(channel, wall=lambda: now[0])
    try:
        sandbox.fail_next("rate_limited", retry_after=17, path="sendMessage")
        with pytest.raises(RateLimited) as raised:
            adapter.publish(outgoing("Flood"))
        assert raised.value.retry_after == 17
        assert adapter.gate.wait_needed("post") == 17
        now[0] += 17
        adapter.publish(outgoing("After the wait"))  # refused, so not sent: the retry may send
    finally:
        adapter.close()
    assert [p.text for p in sandbox.posts(channel)] == ["After the wait"]


def test_server_flood_control_answers_429_with_retry_after(sandbox, channel) -> None:
    """Our sandbox enforces 20 messages a minute per channel, answering the Bot API's 429 envelope."""
    adapter = adapter_for(channel, options={"pacing": False})
    try:
        for n in range(20):
            adapter.publish(outgoing(f"Message {n}"))
        with pytest.raises(RateLimited) as raised:
            adapter.publish(outgoing("One too many"))
    finally:
        adapter.close()
    assert raised.value.retry_after is not None and 1 <= raised.value.retry_after <= 60
    assert sandbox.requests()[-1]["status"] == 429


def test_timeout_after_sending_raises_outcome_unknown_and_never_resends(sandbox, channel) -> None:
    """The server stores the post but answers after the client's timeout: OutcomeUnknown, then no second send."""
    adapter = adapter_for(channel, timeout=1)
    out = outgoing(f"Unanswered {uuid.uuid4().hex[:6]}")
    try:
        sandbox.fail_with_delay(2.5, path="sendMessage")
        with pytest.raises(OutcomeUnknown, match="bot attention"):
            adapter.publish(out)
        assert out.notes.get(SENDING)
        with pytest.raises(OutcomeUnknown):
            adapter.find_published(out)
        sent = len(sandbox.requests())
        with pytest.raises(OutcomeUnknown):
            adapter.publish(out)
        assert len(sandbox.requests()) == sent  # nothing asked of the server
    finally:
        adapter.close()
    assert [p.text for p in sandbox.posts(channel)] == [out.text]


def test_a_refusal_proves_nothing_was_sent_so_a_retry_sends(sandbox, channel, adapter) -> None:
    """A 400 or a 503 clears the 'sending' note: the next attempt posts, once."""
    out = outgoing(f"Refused then sent {uuid.uuid4().hex[:6]}")
    sandbox.fail_next("unavailable", path="sendMessage")
    with pytest.raises(PlatformUnavailable):
        adapter.publish(out)
    assert adapter.find_published(out) is None
    receipt = adapter.publish(out)
    assert [p.remote_id for p in sandbox.posts(channel)] == [receipt.remote_id]


def test_crash_after_the_answer_is_reconciled_from_the_notes(sandbox, channel, adapter) -> None:
    """Notes that hold the answer give the receipt again without a request (a crash before the ledger write)."""
    notes = MemoryNotes()
    receipt = adapter.publish(outgoing("Answered", notes=notes))
    assert notes.get(SENT)
    asked = len(sandbox.requests())
    again = outgoing("Answered", notes=notes)
    assert adapter.find_published(again) == receipt
    assert adapter.publish(again) == receipt
    assert len(sandbox.requests()) == asked and len(sandbox.posts(channel)) == 1


def test_no_error_carries_the_token(sandbox, channel, adapter) -> None:
    """A proxy page quoting the URL, and a refused connection, never put the bot token in the error or its cause."""
    token = next(iter(channel.env.values()))
    sandbox.fail_next("echo_auth", path="sendMessage")
    with pytest.raises(OutcomeUnknown) as echoed:
        adapter.publish(outgoing("Echo"))
    adapter.close()  # one Bot API server per process at a time (pyTelegramBotAPI's API_URL is global)
    dead = dict(channel.entry, base_url="http://127.0.0.1:9")
    refused_account = SandboxAccount(channel.id, channel.handle, dead, channel.env)
    unreachable = adapter_for(refused_account, timeout=2)
    try:
        with pytest.raises(PlatformUnavailable) as refused:
            unreachable.publish(outgoing("Nobody listens"))
    finally:
        unreachable.close()
    for err in (echoed.value, refused.value):
        assert token not in str(err) and token.split(":")[1] not in str(err)
        assert err.__cause__ is None and err.__suppress_context__


def test_whoami_says_when_the_bot_may_not_post(sandbox, channel, adapter) -> None:
    """whoami names the channel; a bot without admin rights, or without the right to post, fails with what to fix."""
    assert adapter.whoami().handle == channel.handle
    sandbox.set_rights(channel, admin=True, can_post=False)
    with pytest.raises(AuthFailed, match="right to post"):
        adapter.whoami()
    sandbox.set_rights(channel, admin=False)
    with pytest.raises(AuthFailed, match="not an administrator"):
        adapter.whoami()
    with pytest.raises(AuthFailed, match="administrator"):
        adapter.publish(outgoing("Not allowed"))
    sandbox.set_rights(channel)
