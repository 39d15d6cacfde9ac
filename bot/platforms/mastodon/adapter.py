"""Mastodon: Mastodon.py against the account's instance."""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
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
from bot.platforms.base import Platform, PostChange, environment_read_once
from bot.platforms.mastodon.server import ServerInfo, parse_instance
from bot.platforms.mastodon.uploads import UploadMemo, fingerprint
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
# Mastodon.py checks endpoint versions against this instead of probing the server: with an explicit
# version it never asks ``/api/v1/instance/`` itself, so a server of another family (or one that
# answers 404 there) costs no probe, let alone one per call.
_ASSUMED_VERSION = "4.3.0"
# 502/503/504 say the server is briefly away; another 5xx on the same upload, again and again,
# says it cannot take the file (Takahē answers a video with 500).
_PASSING = frozenset({502, 503, 504})


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
        # No daily cap is published: each instance sets its own rate limits (see X-RateLimit-* headers).
        posts_per_day=None,
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
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        processing_wait: float = 600.0,
        stream_reconnect_wait: float = 5.0,
        upload_tries: int = 3,
        server_retry: float = 600.0,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        import requests
        from mastodon import Mastodon as Client

        self._sleep = sleep
        self.poll_interval = poll_interval
        self.processing_wait = processing_wait  # bounded wait for the instance to transcode a video
        self.stream_reconnect_wait = stream_reconnect_wait
        self._session = environment_read_once(requests.Session())
        self._session.hooks["response"].append(self._observe)
        self._last_wait: float | None = None
        self._me: Identity | None = None
        self._server: ServerInfo | None = None
        self._server_until = 0.0  # defaults taken for an unanswered look-up stand until then
        self._server_lock = threading.Lock()
        self.server_retry = server_retry
        self.upload_tries = upload_tries  # server errors on one file before it counts as refused
        self._upload_failures: dict[tuple[str, str], int] = {}
        folder = self.state_dir / "mastodon-uploads" if self.state_dir is not None else None
        self._uploads = UploadMemo(folder)
        self.client = Client(
            access_token=self._secret("access_token"),
            api_base_url=self.base_url,
            request_timeout=self.timeout,
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
        """The base checks, with the text and media measured against the instance's own limits once known."""
        super().validate(replace(out, text=""))
        known = self._server  # unknown before the first publish: _publish reads it from the instance
        if known is None:
            return
        limit = known.max_characters
        if limit is not None and self.measure_text(out.text) > limit:
            raise ContentRejected(f"text is {self.measure_text(out.text)} characters, the instance takes {limit}")
        refusal = known.refusal([*out.images, *([out.video] if out.video else [])])
        if refusal:
            raise ContentRejected(refusal)

    # ---- the instance: optional knowledge, never a reason to fail ----

    def server(self) -> ServerInfo:
        """What the instance says about itself (read once); documented defaults when it says nothing."""
        with self._server_lock:
            known = self._server
            if known is not None and (known.source != "defaults" or self._wall() < self._server_until):
                return known
            info, problems = self._ask_instance()
            first = known is None
            # A server without the documents is asked again now and then; one briefly away, at the next call.
            absent = all(" HTTP 404" in p or " HTTP 410" in p or "not JSON" in p for p in problems)
            self._server, self._server_until = info, self._wall() + (self.server_retry if absent else 0.0)
        if info.source == "defaults":
            if first:  # once, not at every retry of the lookup
                self.log.warning("instance_lookup_failed", problems=problems, fallback="defaults")
        else:
            self.log.info("instance_detected", family=info.family, version=info.version, source=info.source)
        return info

    def know_server(self, info: ServerInfo) -> None:
        """Take what another account's adapter read from the same instance (one look-up per server)."""
        with self._server_lock:
            if self._server is None or self._server.source == "defaults":
                self._server = info

    def _ask_instance(self) -> tuple[ServerInfo, list[str]]:
        # Mastodon.py 2.3.3 asks for "/api/v2/instance/" and "/api/v1/instance/" with a trailing
        # slash, which Takahē answers 404; the documented paths have none, so the client's own
        # session asks them directly. No answer here may fail a publication.
        problems: list[str] = []
        headers = {"Authorization": f"Bearer {self._secret('access_token')}"}
        for source, path in (("v2", "/api/v2/instance"), ("v1", "/api/v1/instance")):
            try:
                response = self._session.get(f"{self.base_url}{path}", headers=headers, timeout=self.timeout)
                if response.status_code == 200:
                    data = response.json()
                    if isinstance(data, dict):
                        return parse_instance(data, source), problems
                problems.append(f"{path}: HTTP {response.status_code}")
            except ValueError:
                problems.append(f"{path}: not JSON")
            except Exception as exc:  # noqa: BLE001  (network or anything else: the defaults still publish)
                problems.append(f"{path}: {type(exc).__name__}")
        return ServerInfo(), problems

    def media_refusal(self, out: Outgoing) -> str | None:
        """Why this account's server will refuse ``out``'s media (reads the instance), or None."""
        return self.server().refusal([*out.images, *([out.video] if out.video else [])])

    # ---- hooks ----

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        limit = self._instance_limit()
        length = self.measure_text(out.text)
        if length > limit:
            raise ContentRejected(f"text is {length} characters as mastodon counts them, the instance takes {limit}")
        items: list[ImageAttachment | VideoAttachment] = [*out.images, *([out.video] if out.video else [])]
        refusal = self.server().refusal(items)
        if refusal:
            self._uploads.forget(out.key)
            raise ContentRejected(refusal)
        if out.video is not None and out.video.captions is not None:
            # Mastodon takes no captions track; the alt text carries the description instead.
            self.log.info("captions_skipped", reason="mastodon has no captions upload", video=out.video.path.name)
        total = sum(item.path.stat().st_size for item in items)
        sent, media_ids = 0, []
        earlier = self._uploads.recall(out.key) if items else {}
        for item in items:
            media_ids.append(self._upload(out.key, item, earlier))
            sent += item.path.stat().st_size
            if progress is not None:
                progress(sent, total)
        try:
            status = self.client.status_post(
                out.text,
                media_ids=media_ids or None,
                language=out.language,
                visibility="public",
                idempotency_key=out.key,
            )
        except Exception as exc:
            if isinstance(self._map_error(exc), ContentRejected):
                self._uploads.forget(out.key)  # refused for good: no retry will want the media
            raise
        self._uploads.forget(out.key)
        return Receipt(str(status["id"]), status.get("url") or status.get("uri") or "")

    def _upload(self, key: str, item: ImageAttachment | VideoAttachment, earlier: Mapping[str, str]) -> str:
        """The processed media id of ``item``: an earlier attempt's upload if the server still holds it unattached."""
        from mastodon import errors as m

        print_ = fingerprint(item)
        if print_ in earlier:
            try:
                media = self._processed(self.client.media(earlier[print_]))
                self.log.info("media_reused", media_id=str(media["id"]), file=item.path.name)
                return str(media["id"])
            except m.MastodonNotFoundError:
                pass  # attached, expired or removed: upload it again
        mime = mimetypes.guess_type(item.path.name)[0]
        try:
            media = self.client.media_post(
                str(item.path), mime_type=mime, description=item.alt, file_name=item.path.name
            )
        except m.MastodonServerError as exc:
            status = api_status(exc)
            if status in _PASSING:
                raise
            tries = self._upload_failures.get((key, print_), 0) + 1
            self._upload_failures[(key, print_)] = tries
            if tries < self.upload_tries:
                raise
            self._upload_failures.pop((key, print_), None)
            raise ContentRejected(
                f"{self.base_url} failed the upload of {item.path.name} {tries} times "
                f"(HTTP {status} {api_message(exc)}): the server does not take this file"
            ) from exc
        self._upload_failures.pop((key, print_), None)
        # Written before the wait for processing: a crash while a video transcodes leaves its id here.
        self._uploads.remember(key, print_, str(media["id"]))
        return str(self._processed(media)["id"])

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
        return self.server().max_characters or self.max_text_for(self.account)

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
        if status.get("reblog") is None and str(status["id"]) == mention.remote_id:
            # Takahē answers a reblog with the original status: the boost's own id is on our timeline.
            status = self._own_boost(mention.remote_id) or status
        original = status.get("reblog") or {}
        return Receipt(str(status["id"]), status.get("url") or status.get("uri") or original.get("url") or mention.url)

    def _own_boost(self, remote_id: str) -> Any:
        me = self._whoami()
        for status in self.client.account_statuses(me.id, limit=self.page_limit):
            if str((status.get("reblog") or {}).get("id")) == remote_id:
                return status
        self.log.warning("reshare_id_unknown", remote_id=remote_id, reason="the boost is not on the account's timeline")
        return None

    def _withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        from mastodon.errors import MastodonNotFoundError

        try:
            self.client.status_unreblog(mention.remote_id)
        except MastodonNotFoundError:
            # The original was deleted, and Mastodon deletes its boosts with it.
            self.log.info("reshare_already_gone", remote_id=mention.remote_id)

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
            author_created_at=_when(account.get("created_at")),
            author_followers=_count(account.get("followers_count")),
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
        on_change: Callable[[PostChange], None] | None = None,
    ) -> None:
        """Deliver tagged posts as they arrive until ``stop`` is set; edits and deletions to ``on_change``.

        Raises PlatformUnavailable when the instance does not stream a tag (no answer
        within ``connect_timeout``): the caller then polls ``fetch_mentions`` instead.
        Dropped connections reconnect on their own; posts made during a gap are
        found by the caller's regular, slower poll with its persisted cursor.
        """
        info = self.server()
        if not info.streams:
            raise PlatformUnavailable(f"{self.base_url} ({info.label}) does not stream over HTTP: poll it")
        _stream_hashtags(self, hashtags, on_mention, stop, connect_timeout, on_connected, on_change)

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
    on_change: Callable[[PostChange], None] | None = None,
) -> None:
    """Block until ``stop``; see ``Mastodon.stream_mentions``."""
    from mastodon.streaming import StreamListener

    seen: set[str] = set()
    seen_changes: set[tuple[str, str, str]] = set()
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

        def on_status_update(self, status: Any) -> None:
            # status.update: the post was edited; the tracker judges the new version against its reshare.
            changed(PostChange("edited", str(status["id"]), adapter._mention(status)))

        def on_delete(self, status_id: Any) -> None:
            changed(PostChange("deleted", str(status_id)))

        def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
            pass  # newer event kinds (notifications, ...) are not ours to track

    def changed(change: PostChange) -> None:
        with lock:
            key = (change.kind, change.remote_id, change.mention.text if change.mention else "")
            if key in seen_changes:  # each tag's stream tells the same change once
                return
            seen_changes.add(key)
        if on_change is None:
            return
        try:
            on_change(change)
        except Exception as exc:  # noqa: BLE001  (one bad callback must not end the stream)
            adapter.log.error("change_handler_failed", remote_id=change.remote_id, error=repr(exc))

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


def _when(value: Any) -> datetime | None:
    """An account's creation time (Mastodon gives the day, at midnight UTC); None where absent or unreadable."""
    try:
        return aware(value)
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    # Some servers send a negative count for a hidden follower list: unknown, not few.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
