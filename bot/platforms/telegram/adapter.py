"""Telegram channels through the Bot API, with pyTelegramBotAPI's synchronous ``TeleBot``.

One account is one channel (``handle: "@channel"``, or a numeric chat id) where the campaign's bot is an
administrator allowed to post. Texts go as ``sendMessage``; one image or a video with the text as caption
(``sendPhoto``, ``sendVideo``); several images as an album (``sendMediaGroup``, the caption on the first
item, https://core.telegram.org/bots/api#sendmediagroup). Texts are sent in HTML parse mode, escaped whole
(``html.escape``): the campaign writes plain text, so "<", ">" and "&" reach readers as written and nothing
becomes markup (https://core.telegram.org/bots/api#formatting-options).

Exactly once, or say so: the Bot API has no idempotency key and a bot cannot read a channel's history.
Before each send the adapter writes a "sending" note (``Outgoing.notes``, stored in the ledger) and after
the answer a "sent" note with the message ids. A publication found with "sent" is reported published; one
found with "sending" but no answer (a crash, a timeout, a dropped connection) raises ``OutcomeUnknown``
(from ``_publish`` and from ``_find_published``): it is never sent again by itself.
"""

from __future__ import annotations

import html
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bot.core.errors import AuthFailed, BotError, ContentRejected, OutcomeUnknown, PermanentError, RateLimited
from bot.core.values import (
    AccountLike,
    Identity,
    Limits,
    Mention,
    MentionPage,
    Outgoing,
    Progress,
    Receipt,
)
from bot.platforms.base import Platform, RateStore

if TYPE_CHECKING:
    from telebot import TeleBot

    from bot.platforms.telegram.pacing import Pacer

MB = 1024 * 1024
SENDING = "telegram.sending"  # note: when and what we started to send (the request may have gone out)
SENT = "telegram.sent"  # note: the answer, as JSON {"ids": [...], "url": ...}
# Pacing waits longer than this are not slept through in a worker thread: the publisher retries later.
MAX_PACING_WAIT = 15.0

# pyTelegramBotAPI keeps its server address in one module global, ``apihelper.API_URL`` (its README's
# "Using local Bot API Server"); every adapter of a process must agree on it. Production has one
# (api.telegram.org); tests and the demo have one sandbox at a time.
_API_URL_LOCK = threading.Lock()
_API_URL_USERS: dict[str, int] = {}


def _bind_api_url(base_url: str) -> None:
    from telebot import apihelper

    with _API_URL_LOCK:
        others = [url for url, n in _API_URL_USERS.items() if n > 0 and url != base_url]
        if others:
            raise PermanentError(
                f"telegram accounts of one process must share one Bot API server: {base_url} beside {others[0]}"
            )
        _API_URL_USERS[base_url] = _API_URL_USERS.get(base_url, 0) + 1
        # The global is declared `API_URL = None` upstream, hence the ignore.
        apihelper.API_URL = base_url + "/bot{0}/{1}"  # type: ignore[assignment]


def _unbind_api_url(base_url: str) -> None:
    with _API_URL_LOCK:
        if _API_URL_USERS.get(base_url, 0) > 0:
            _API_URL_USERS[base_url] -= 1


class Telegram(Platform):
    name: ClassVar[str] = "telegram"
    default_base_url: ClassVar[str] = "https://api.telegram.org"
    required_credentials: ClassVar[tuple[str, ...]] = ("bot_token",)
    supports_tracking: ClassVar[bool] = False  # a bot reads no hashtag search and no other channel
    needs_handle: ClassVar[bool] = True  # the channel: "@name" (public) or its numeric chat id (private)
    limits: ClassVar[Limits] = Limits(
        max_text=4096,  # https://core.telegram.org/bots/api#sendmessage: "1-4096 characters after entities parsing"
        max_images=10,  # https://core.telegram.org/bots/api#sendmediagroup: "an array describing messages to be sent, must include 2-10 items"
        image_max_bytes=10
        * MB,  # https://core.telegram.org/bots/api#sendphoto: "The photo must be at most 10 MB in size"
        image_formats=frozenset({"JPEG", "PNG", "WEBP"}),  # sendPhoto takes photos; a GIF would be an animation
        # https://core.telegram.org/bots/api#sending-files: "50 MB max size for other files" (uploads)
        video_max_bytes=50 * MB,
        video_max_seconds=24 * 3600.0,  # the Bot API states no duration limit; the size limit binds first
        video_formats=frozenset(
            {"mp4"}
        ),  # https://core.telegram.org/bots/api#sendvideo: "Telegram clients support MPEG4 videos"
        alt_max=4096,  # Telegram has no alt text: campaign alt texts are not sent (see alt_text)
        captions=False,  # no subtitle files for videos
        max_caption=1024,  # https://core.telegram.org/bots/api#sendphoto: "Photo caption ..., 0-1024 characters after entities parsing"
        alt_text=False,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        # Telegram counts entity offsets and lengths in UTF-16 code units (https://core.telegram.org/api/entities);
        # counting the limit the same way is never shorter than counting characters.
        return len(text.encode("utf-16-le")) // 2

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        """https://core.telegram.org/bots/api#sendphoto: "The photo's width and height must not exceed 10000 in
        total. Width and height ratio must be at most 20."""
        refusals: list[tuple[tuple[str | int, ...], str]] = []
        for i, info in enumerate(images):
            if info is None or not info.width or not info.height:
                continue
            if info.width + info.height > 10000:
                refusals.append(
                    (("media", i, "file"), f"is {info.width}x{info.height}: telegram takes width + height up to 10000")
                )
            if max(info.width, info.height) / min(info.width, info.height) > 20:
                refusals.append((("media", i, "file"), "is more than 20 times longer than wide: telegram refuses it"))
        return refusals

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        self._sleep = sleep
        self._monotonic = monotonic
        self._bot_instance: TeleBot | None = None
        self._me: Identity | None = None
        self._closed = False
        self.chat = str(account.handle or account.options.get("chat_id") or "")
        # Link previews: shown unless the account says ``link_preview: false`` (a text post's link is usually
        # the petition, whose preview card is the call to action). Posts with media show no preview anyway.
        self.link_preview = bool(account.options.get("link_preview", True))
        self.pacing = bool(account.options.get("pacing", True))  # off only to measure the naive way (bench)
        _bind_api_url(self.base_url)

    # ---- the client ----

    @property
    def _bot(self) -> TeleBot:
        if self._bot_instance is None:
            from telebot import TeleBot  # pyTelegramBotAPI loads only when Telegram is used

            # threaded=False: no worker pool of its own (we never poll); the worker's threads call it.
            self._bot_instance = TeleBot(self._secret("bot_token"), threaded=False)
        return self._bot_instance

    @property
    def _pacer(self) -> Pacer:
        from bot.platforms.telegram.pacing import pacer_for

        return pacer_for(self.base_url, self._secret("bot_token"), self._monotonic)

    def share_rates(self, store: RateStore) -> None:
        """As every platform, and the bot's pacing takes this worker's share of the flood limits."""
        super().share_rates(store)
        self._pacer.workers = store.workers

    def prepare(self) -> None:
        """Build the client now (the worker's warm-up), so the first slot does not pay for it."""
        self._bot  # noqa: B018  (the property builds and keeps it)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _unbind_api_url(self.base_url)

    # ---- validation ----

    def validate(self, out: Outgoing) -> None:
        super().validate(out)
        attachments = len(out.images) + (1 if out.video else 0)
        caption_max = self.limits.max_caption or self.limits.max_text
        if attachments and self.measure_text(out.text) > caption_max:
            raise ContentRejected(
                f"text is {self.measure_text(out.text)} characters, and telegram takes at most {caption_max} "
                "as the caption of a photo, video or album"
            )
        if not out.text.strip() and not attachments:
            raise ContentRejected("telegram takes no empty message")

    # ---- publishing ----

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        known = self._from_notes(out)
        if known is not None:
            return known  # a retry of a post whose answer we already have: never send it twice
        if out.notes.get(SENDING):
            raise self._unknown(out, "an earlier attempt was sent without an answer")
        messages = len(out.images) or 1
        ticket = self._pace(messages)
        method = (
            "sendMediaGroup"
            if len(out.images) > 1
            else "sendPhoto"
            if out.images
            else "sendVideo"
            if out.video
            else "sendMessage"
        )
        try:
            # Written (and stored, for the worker: in the ledger) before the request can leave.
            out.notes.put(SENDING, f"{method} at {datetime.now(UTC).isoformat(timespec='seconds')}")
            try:
                sent = self._send(out, method)
            except Exception as exc:  # noqa: BLE001  (every failure is classified: sent, not sent, or unknown)
                mapped = self._mapped(exc, sending=True, what=method)
                if not isinstance(mapped, OutcomeUnknown):
                    out.notes.put(SENDING, "")  # proven not posted: a later attempt may send
                raise mapped from None  # the cause quotes the Bot API URL, token included
        finally:
            if ticket is not None:  # answered (or failed): the message's places free a period from now
                self._pacer.answered(ticket)
        chat_id, ids = sent[0].chat.id, [m.message_id for m in sent]
        receipt = self._receipt(chat_id, ids[0])
        out.notes.put(SENT, json.dumps({"chat": chat_id, "ids": ids, "url": receipt.url}))
        self.log.info("telegram_sent", method=method, messages=len(ids), remote_id=receipt.remote_id)
        return receipt

    def _pace(self, messages: int) -> int | None:
        """Wait for the flood-limit windows (bot.platforms.telegram.pacing); the pacer's ticket, None when off.

        A send blocked behind unanswered ones waits for their answers, up to MAX_PACING_WAIT in all; a wait
        longer than that is not slept through in a worker thread: RateLimited, for the publisher to retry.
        """
        if not self.pacing:
            return None
        pacer = self._pacer
        deadline = self._monotonic() + MAX_PACING_WAIT
        while True:
            left = deadline - self._monotonic()
            slot = pacer.reserve(self.chat, messages, max(0.0, left))
            if slot.ticket is not None:
                if slot.wait > 0:
                    try:
                        self._sleep(slot.wait)
                    except BaseException:
                        pacer.answered(slot.ticket)  # never sent: its places must not stay held
                        raise
                return slot.ticket
            if not slot.blocked or left <= 0 or not pacer.wait_for_answer(left):
                # Blocked to the end: earlier sends are still unanswered after MAX_PACING_WAIT.
                retry = slot.wait if not slot.blocked else MAX_PACING_WAIT
                raise RateLimited(
                    f"telegram flood limits: {self.chat} may take {messages} more message(s) in {retry:.0f}s",
                    retry_after=retry,
                )

    def _send(self, out: Outgoing, method: str) -> list[Any]:
        from telebot import types

        bot, chat = self._bot, self.chat
        text = html.escape(out.text, quote=False)  # plain text, never markup
        timeout = max(1, math.ceil(self.timeout))  # whole seconds (TeleBot's type); connect and read timeout both
        if method == "sendMessage":
            preview = types.LinkPreviewOptions(is_disabled=not self.link_preview)
            message = bot.send_message(chat, text, parse_mode="HTML", link_preview_options=preview, timeout=timeout)
            return [message]
        with ExitStack() as files:
            if method == "sendPhoto":
                photo = files.enter_context(out.images[0].path.open("rb"))
                message = bot.send_photo(chat, photo, caption=text, parse_mode="HTML", timeout=timeout)
                return [message]
            if method == "sendVideo":
                assert out.video is not None
                video = files.enter_context(out.video.path.open("rb"))
                message = bot.send_video(
                    chat, video, caption=text, parse_mode="HTML", supports_streaming=True, timeout=timeout
                )
                return [message]
            media: list[Any] = [
                types.InputMediaPhoto(
                    types.InputFile(files.enter_context(image.path.open("rb"))),
                    caption=text if n == 0 else None,  # the album's caption: Telegram shows the first item's
                    parse_mode="HTML" if n == 0 else None,
                )
                for n, image in enumerate(out.images)
            ]
            return list(bot.send_media_group(chat, media, timeout=timeout))

    def _receipt(self, chat_id: int | str, message_id: int) -> Receipt:
        # The remote id names the chat by its numeric id, which survives a change of the channel's username.
        if self.chat.startswith("@"):
            url = f"https://t.me/{self.chat[1:]}/{message_id}"
        else:  # a private channel: the link works for its members
            url = f"https://t.me/c/{str(chat_id).removeprefix('-100')}/{message_id}"
        return Receipt(remote_id=f"{chat_id}/{message_id}", url=url)

    def _from_notes(self, out: Outgoing) -> Receipt | None:
        raw = out.notes.get(SENT)
        if not raw:
            return None
        sent = json.loads(raw)
        return self._receipt(sent["chat"], int(sent["ids"][0]))

    def _find_published(self, out: Outgoing) -> Receipt | None:
        """What the notes say: sent (its receipt), never started (None: safe to send), or unknown (raised)."""
        known = self._from_notes(out)
        if known is not None:
            return known
        if out.notes.get(SENDING):
            raise self._unknown(
                out, "a send began and no answer was recorded (a crash, a timeout or a lost connection)"
            )
        return None

    def _unknown(self, out: Outgoing, why: str) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"telegram {self.chat}: {why} ({out.notes.get(SENDING)}); a bot cannot read a channel's history, so the "
            "post is not sent again: look in the channel, then resolve it with `bot attention`"
        )

    # ---- reading ----

    def _whoami(self) -> Identity:
        """The channel, after checking that the bot may post there (getMe, getChat, getChatMember)."""
        try:
            me = self._bot.get_me()
            chat = self._bot.get_chat(self.chat)
            member = self._bot.get_chat_member(chat.id, me.id)
        except Exception as exc:  # noqa: BLE001  (mapped here, without the cause: it quotes the URL and token)
            raise self._mapped(exc, sending=False, what="whoami") from None
        problem = self.posting_refusal(member.status, getattr(member, "can_post_messages", None))
        if problem:
            raise AuthFailed(f"account {self.account.id}: {problem} (the token is in {self._variable()})")
        handle = f"@{chat.username}" if getattr(chat, "username", None) else str(chat.id)
        return Identity(id=str(chat.id), handle=handle)

    def posting_refusal(self, status: str, can_post: bool | None) -> str | None:
        """Why the bot cannot post in the channel, from getChatMember (https://core.telegram.org/bots/api#chatmemberadministrator)."""
        if status == "creator":
            return None
        if status != "administrator":
            return f"the bot is not an administrator of {self.chat} (it is '{status}'): add it as an administrator"
        if not can_post:
            return (
                f"the bot is an administrator of {self.chat} without the right to post messages: allow 'Post messages'"
            )
        return None

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        raise PermanentError("telegram: a bot cannot search channels by hashtag; do not track a Telegram account")

    def _reshare(self, mention: Mention) -> Receipt:
        raise PermanentError("telegram: the bot reshares nothing (it cannot read other channels)")

    # ---- errors ----

    def _variable(self) -> str:
        return str(self.account.credentials.get("bot_token", "the bot token variable"))

    def _mapped(self, exc: BaseException, *, sending: bool, what: str) -> BotError:
        from bot.platforms.telegram.errors import map_error

        return map_error(
            exc,
            sending=sending,
            token=self._secrets.get("bot_token", ""),
            account=self.account.id,
            variable=self._variable(),
            chat=self.chat,
            what=what,
        )

    def _map_error(self, exc: Exception) -> BotError:
        return self._mapped(exc, sending=False, what="call")
