"""Mastodon: Mastodon.py against the account's instance."""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from bot.core.errors import (
    AuthFailed,
    BotError,
    ContentRejected,
    NotFound,
    PlatformUnavailable,
    RateLimited,
)
from bot.core.values import (
    AccountLike,
    Identity,
    ImageAttachment,
    Limits,
    Mention,
    MentionPage,
    Outgoing,
    Progress,
    Receipt,
    VideoAttachment,
)
from bot.platforms.base import Platform, environment_read_once
from bot.platforms.mastodon.wire import (
    api_message,
    api_status,
    aware,
    comparable,
    html_to_text,
    network_error,
    seconds_until,
)

MB = 1024 * 1024
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w", re.UNICODE)
# Mastodon.py checks endpoint versions against this instead of probing the server.
_ASSUMED_VERSION = "4.3.0"


class Mastodon(Platform):
    name: ClassVar[str] = "mastodon"
    required_credentials: ClassVar[tuple[str, ...]] = ("access_token",)
    supports_streaming: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        max_text=500,  # the instance may say otherwise: accounts.yaml `max_characters`, or /api/v2/instance
        max_images=4,
        image_max_bytes=16 * MB,
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=99 * MB,
        video_max_seconds=3600.0,
        video_formats=frozenset({"mp4", "mov", "webm"}),
        alt_max=1500,
        captions=False,
    )
    page_limit: ClassVar[int] = 40  # Mastodon's largest timeline page
    max_pages: ClassVar[int] = 5  # per tag per fetch; the cursor resumes where a fetch stopped
    reconcile_window: ClassVar[float] = 24 * 3600.0  # how far back find_published looks

    @classmethod
    def measure_text(cls, text: str) -> int:
        # Mastodon counts every URL as 23 characters and a remote mention by its local part.
        text = _URL.sub("x" * 23, text)
        text = _REMOTE_MENTION.sub(r"\1", text)
        return len(text)

    @classmethod
    def max_text_for(cls, account: AccountLike | None) -> int:
        if account is not None and account.options.get("max_characters"):
            return int(account.options["max_characters"])
        return cls.limits.max_text

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        timeout: float = 30.0,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        processing_wait: float = 600.0,
        stream_reconnect_wait: float = 5.0,
        state_dir: Path | None = None,
    ) -> None:
        super().__init__(account, secrets, timeout=timeout, wall=wall, state_dir=state_dir)
        import requests
        from mastodon import Mastodon as Client

        self._sleep = sleep
        self._wall = wall
        self.poll_interval = poll_interval
        self.processing_wait = processing_wait  # bounded wait for the instance to transcode a video
        self.stream_reconnect_wait = stream_reconnect_wait
        self._session = environment_read_once(requests.Session())
        self._session.hooks["response"].append(self._observe)
        self._last_wait: float | None = None
        self._me: Identity | None = None
        self._max_chars: int | None = None
        self.client = Client(
            access_token=self._secret("access_token"),
            api_base_url=self.base_url,
            request_timeout=timeout,
            version_check_mode="created",
            mastodon_version=_ASSUMED_VERSION,
            ratelimit_method="throw",
            session=self._session,
        )

    def close(self) -> None:
        self._session.close()

    # ---- rate limits: every answer carries X-RateLimit-*; remaining 0 closes the gate ----

    def _observe(self, response: Any, *args: Any, **kwargs: Any) -> None:
        headers = response.headers
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        retry_after = headers.get("Retry-After", "")
        self._last_wait = float(retry_after) if retry_after.isdigit() else None  # a 429 reads this next
        if remaining is None or reset is None:
            return
        try:
            wait = seconds_until(reset, headers.get("Date"))
            left = int(remaining)
        except ValueError:
            return
        if self._last_wait is None:
            self._last_wait = wait
        # Media uploads have their own, stricter throttle; everything else shares the account's.
        upload = response.request.method == "POST" and urlparse(response.request.url).path.endswith("/media")
        self.gate.observe("post" if upload else "*", left, self._wall() + wait)

    def validate(self, out: Outgoing) -> None:
        """The base checks, with the text measured against the instance's own limit once it is known."""
        super().validate(replace(out, text=""))
        limit = self._max_chars  # unknown before the first publish: _publish reads it from the instance
        if limit is not None and self.measure_text(out.text) > limit:
            raise ContentRejected(f"text is {self.measure_text(out.text)} characters, the instance takes {limit}")

    # ---- hooks ----

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        limit = self._instance_limit()
        length = self.measure_text(out.text)
        if length > limit:
            raise ContentRejected(f"text is {length} characters as mastodon counts them, the instance takes {limit}")
        items: list[ImageAttachment | VideoAttachment] = [*out.images, *([out.video] if out.video else [])]
        if out.video is not None and out.video.captions is not None:
            # Mastodon takes no captions track; the alt text carries the description instead.
            self.log.info("captions_skipped", reason="mastodon has no captions upload", video=out.video.path.name)
        total = sum(item.path.stat().st_size for item in items)
        sent, media_ids = 0, []
        for item in items:
            mime = mimetypes.guess_type(item.path.name)[0]
            media = self.client.media_post(
                str(item.path), mime_type=mime, description=item.alt, file_name=item.path.name
            )
            media_ids.append(self._processed(media)["id"])
            sent += item.path.stat().st_size
            if progress is not None:
                progress(sent, total)
        status = self.client.status_post(
            out.text,
            media_ids=media_ids or None,
            language=out.language,
            visibility="public",
            idempotency_key=out.key,
        )
        return Receipt(str(status["id"]), status.get("url") or status.get("uri") or "")

    def _processed(self, media: Any) -> Any:
        """Wait, boundedly, until the instance has processed an upload (202/206 -> 200)."""
        deadline = time.monotonic() + self.processing_wait
        interval = self.poll_interval
        while media.get("url") is None:
            if time.monotonic() >= deadline:
                raise PlatformUnavailable(f"media {media['id']} still processing after {self.processing_wait:.0f}s")
            self._sleep(interval)
            # Short clips are ready in a second; long ones take minutes: back off to spare the rate limit.
            interval = min(interval * 2, max(self.poll_interval, 5.0))
            media = self.client.media(media["id"])
        return media

    def _instance_limit(self) -> int:
        if self._max_chars is None:
            info = self.client.instance_v2()
            limit = (info.get("configuration") or {}).get("statuses", {}).get("max_characters")
            self._max_chars = int(limit) if limit else self.max_text_for(self.account)
        return self._max_chars

    def _find_published(self, out: Outgoing) -> Receipt | None:
        me = self._whoami()
        wanted = comparable(out.text)
        attachments = len(out.images) + (1 if out.video else 0)
        # An identical text posted long ago is another publication, not this attempt (server time, not ours).
        since = time.time() - self.reconcile_window
        for status in self.client.account_statuses(me.id, exclude_reblogs=True, limit=self.page_limit):
            created = aware(status.get("created_at"))
            if created is not None and created.timestamp() < since:
                continue
            if (
                comparable(html_to_text(status.get("content") or "")) == wanted
                and len(status.get("media_attachments") or []) == attachments
            ):
                return Receipt(str(status["id"]), status.get("url") or status.get("uri") or "")
        return None

    def _reshare(self, mention: Mention) -> Receipt:
        status = self.client.status_reblog(mention.remote_id)
        original = status.get("reblog") or {}
        return Receipt(str(status["id"]), status.get("url") or original.get("url") or mention.url)

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        positions: dict[str, str] = json.loads(cursor) if cursor else {}
        found: dict[str, Mention] = {}
        for tag in (t.lstrip("#") for t in hashtags):
            statuses, positions[tag] = self._read_tag(tag, positions.get(tag))
            for status in statuses:
                found.setdefault(str(status["id"]), self._mention(status))
        ordered = sorted(found.values(), key=lambda m: (len(m.remote_id), m.remote_id))
        return MentionPage(ordered, json.dumps(positions, sort_keys=True))

    def _read_tag(self, tag: str, since: str | None) -> tuple[list[Any], str]:
        """Statuses newer than ``since`` (oldest pages first); without a cursor, the newest page only."""
        if since is None:
            page = self.client.timeline_hashtag(tag, limit=self.page_limit)
            return list(page), str(max((int(s["id"]) for s in page), default=0))
        out: list[Any] = []
        for _ in range(self.max_pages):
            page = self.client.timeline_hashtag(tag, min_id=since, limit=self.page_limit)
            if not page:
                break
            out.extend(page)
            since = str(max(int(s["id"]) for s in page))
            if len(page) < self.page_limit:
                break
        return out, since

    def _whoami(self) -> Identity:
        if self._me is None:
            me = self.client.account_verify_credentials()
            self._me = Identity(str(me["id"]), me["acct"])
        return self._me

    def _mention(self, status: Mapping[str, Any]) -> Mention:
        """A status as the tracker sees it (a boost carries its original's text)."""
        shown = status.get("reblog") or status
        account = status["account"]
        # Mastodon 4.4+ quotes: {"state": ..., "quoted_status": {...}}; older servers have no such field.
        quoted = (shown.get("quote") or {}).get("quoted_status") or {}
        return Mention(
            remote_id=str(status["id"]),
            url=status.get("url") or shown.get("url") or status.get("uri") or "",
            author_id=str(account["id"]),
            author_handle=account["acct"],
            author_name=account.get("display_name") or "",
            text=html_to_text(shown.get("content") or ""),
            created_at=aware(status.get("created_at")),
            is_reply=status.get("in_reply_to_id") is not None,
            is_reshare=status.get("reblog") is not None,
            sensitive=bool(shown.get("sensitive") or shown.get("spoiler_text")),
            spoiler_text=shown.get("spoiler_text") or "",
            lang=shown.get("language"),
            ref={"account_url": account.get("url") or ""},
            alt_texts=tuple(m["description"] for m in shown.get("media_attachments") or [] if m.get("description")),
            card_title=(shown.get("card") or {}).get("title") or "",
            quoted_text=html_to_text(quoted.get("content") or ""),
        )

    # ---- streaming ----

    def stream_mentions(
        self,
        hashtags: Sequence[str],
        on_mention: Callable[[Mention], None],
        stop: threading.Event,
        *,
        connect_timeout: float = 10.0,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        """Deliver tagged posts as they arrive until ``stop`` is set.

        Raises PlatformUnavailable when the instance does not stream a tag (no answer
        within ``connect_timeout``): the caller then polls ``fetch_mentions`` instead.
        Dropped connections reconnect on their own; posts made during a gap are
        found by the caller's regular, slower poll with its persisted cursor.
        """
        _stream_hashtags(self, hashtags, on_mention, stop, connect_timeout, on_connected)

    # ---- errors ----

    def _map_error(self, exc: Exception) -> BotError:
        from mastodon import errors as m

        if isinstance(exc, m.MastodonRatelimitError):
            return RateLimited(f"{self.base_url} rate limit reached", retry_after=self._last_wait)
        if isinstance(exc, m.MastodonUnauthorizedError):
            var = self.account.credentials.get("access_token", "?")
            return AuthFailed(
                f"mastodon account {self.account.id}: {self.base_url} refused the access token; "
                f"check environment variable {var}"
            )
        if isinstance(exc, m.MastodonNotFoundError):
            return NotFound(f"{self.base_url}: {api_message(exc)}")
        if isinstance(exc, m.MastodonNetworkError):
            return network_error(exc)
        if isinstance(exc, m.MastodonServerError):
            return PlatformUnavailable(f"{self.base_url}: HTTP {api_status(exc)} {api_message(exc)}")
        if isinstance(exc, m.MastodonAPIError):
            status = api_status(exc)
            if status == 403 and "scope" in api_message(exc):
                var = self.account.credentials.get("access_token", "?")
                return AuthFailed(f"mastodon account {self.account.id}: token in {var} lacks a scope")
            if status is not None and 400 <= status < 500:
                return ContentRejected(f"{self.base_url}: HTTP {status} {api_message(exc)}")
            return PlatformUnavailable(f"{self.base_url}: {api_message(exc)}")
        if isinstance(exc, (m.MastodonIllegalArgumentError, m.MastodonIOError, OSError)):
            return ContentRejected(f"cannot send to mastodon: {exc}")
        return self._unavailable(exc)


# ---- streaming: server-sent events through Mastodon.py, one stream per tag ----


def _stream_hashtags(
    adapter: Mastodon,
    hashtags: Sequence[str],
    on_mention: Callable[[Mention], None],
    stop: threading.Event,
    connect_timeout: float,
    on_connected: Callable[[], None] | None,
) -> None:
    """Block until ``stop``; see ``Mastodon.stream_mentions``."""
    from mastodon.streaming import StreamListener

    seen: set[str] = set()
    lock = threading.Lock()

    class Listener(StreamListener):
        def __init__(self) -> None:
            self.connected = threading.Event()

        def handle_heartbeat(self) -> None:
            # Mastodon opens every stream with a comment line: the subscription is live.
            self.connected.set()

        def on_update(self, status: Any) -> None:
            with lock:
                if str(status["id"]) in seen:  # a post with two tracked tags arrives twice
                    return
                seen.add(str(status["id"]))
            try:
                on_mention(adapter._mention(status))
            except Exception as exc:  # noqa: BLE001  (one bad callback must not end the stream)
                adapter.log.error("mention_handler_failed", remote_id=str(status["id"]), error=repr(exc))

        def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
            pass  # newer event kinds (status.update, notifications) are not ours to track

    tags = [t.lstrip("#") for t in hashtags]
    listeners = [Listener() for _ in tags]
    handles = []
    try:
        for tag, listener in zip(tags, listeners):
            handles.append(
                adapter.client.stream_hashtag(
                    tag,
                    listener,
                    run_async=True,
                    reconnect_async=True,
                    reconnect_async_wait_sec=adapter.stream_reconnect_wait,
                )
            )
        deadline = time.monotonic() + connect_timeout
        for tag, listener in zip(tags, listeners):
            if not listener.connected.wait(max(deadline - time.monotonic(), 0)):
                raise PlatformUnavailable(f"{adapter.base_url} does not stream hashtag {tag!r}")
        adapter.log.info("stream_connected", hashtags=tags)
        if on_connected is not None:
            on_connected()
        stop.wait()
    finally:
        for handle in handles:
            handle.close()
