"""Bluesky (AT Protocol): the atproto SDK against the account's PDS.

One login per adapter (or none, with a stored session); the SDK refreshes the
session, and an expired or revoked token is refreshed once, then replaced by a
new login, before the call is given up as AuthFailed. Posts and reposts are
created with record keys derived from the publication key, so a retry after a
crash meets the first record instead of making a second one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import regex

from bot.errors import (
    AuthFailed,
    BotError,
    ConfigError,
    ContentRejected,
    NotFound,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.platforms.base import (
    AccountLike,
    Identity,
    Limits,
    Mention,
    MentionPage,
    Outgoing,
    Platform,
    Progress,
    Receipt,
)
from bot.platforms.bluesky_session import FileSessionStore, SessionStore
from bot.platforms.bluesky_text import build_facets, post_url, tid_for

MB = 1024 * 1024
_GRAPHEME = regex.compile(r"\X")
POST, REPOST = "app.bsky.feed.post", "app.bsky.feed.repost"
_AUTH_ERRORS = {"ExpiredToken", "InvalidToken"}
# Which of our rate buckets a server's ratelimit-* headers speak for, by XRPC method.
_BUCKETS = {
    "com.atproto.repo.createRecord": ("post", "reshare"),
    "com.atproto.repo.putRecord": ("post", "reshare"),
    "com.atproto.repo.deleteRecord": ("post", "reshare"),
    "com.atproto.repo.applyWrites": ("post", "reshare"),
    "com.atproto.repo.uploadBlob": ("post",),
    "com.atproto.server.createSession": ("login",),
    "app.bsky.feed.searchPosts": ("search",),
}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Bluesky(Platform):
    name: ClassVar[str] = "bluesky"
    default_base_url: ClassVar[str] = "https://bsky.social"
    required_credentials: ClassVar[tuple[str, ...]] = ("app_password",)
    needs_handle: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        max_text=300,  # graphemes
        max_images=4,
        image_max_bytes=50 * MB,  # source cap: images are re-encoded to fit the 1,000,000-byte blob limit
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=100 * MB,
        video_max_seconds=180.0,
        video_formats=frozenset({"mp4"}),
        alt_max=2000,
        captions=True,
        images_reencoded=True,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        return len(_GRAPHEME.findall(text))

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        timeout: float = 30.0,
        wall: Callable[[], float] = time.time,
        state_dir: Path | None = None,
        session_store: SessionStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        processing_wait: float = 600.0,
    ) -> None:
        super().__init__(account, secrets, timeout=timeout, wall=wall, state_dir=state_dir)
        self._wall = wall
        self._sleep = sleep
        self.poll_interval = poll_interval
        self.processing_wait = processing_wait  # bounded wait for the video service to transcode
        self._video: Any = None
        if session_store is None and state_dir is not None:
            session_store = FileSessionStore(state_dir / "sessions")
        self._store = session_store
        # Keyed by server and handle too: a session from another PDS or account would only cost a failed call.
        where = hashlib.sha256(f"{self.base_url}|{account.handle}".encode()).hexdigest()[:10]
        self._store_key = f"{account.id}-{where}"
        self._client: Any = None
        self._lock = threading.RLock()
        self.logins = 0  # password logins made by this adapter (each one costs rate-limit budget)

    # ---- session ----

    def _api(self) -> Any:
        with self._lock:
            if self._client is None:
                from atproto import Client
                from atproto_client.request import Request

                request = Request(timeout=self.timeout, event_hooks={"response": [self._observe]})
                client = Client(base_url=self.base_url, request=request)
                client.on_session_change(lambda _event, session: self._save(session.export()))
                saved = self._store.load(self._store_key) if self._store else None
                if saved:
                    client.login(session_string=saved, fetch_bsky_profile=False)  # no request: used on first call
                else:
                    self._login(client)
                self._client = client
            return self._client

    def _login(self, client: Any) -> None:
        wait = self.gate.wait_needed("login")
        if wait > 0:
            raise RateLimited(f"bluesky login rate limit: waiting {wait:.0f}s", retry_after=wait)
        self.logins += 1
        # No profile fetch: it needs an AppView, and the session already says who we are.
        client.login(self.account.handle, self._secret("app_password"), fetch_bsky_profile=False)

    def _save(self, session: str) -> None:
        if self._store is not None:
            self._store.save(self._store_key, session)

    def _session(self) -> Any:
        from atproto_client.client.session import Session

        return Session.decode(self._api().export_session_string())

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(client)``; on an expired or revoked token refresh once, else log in again, then retry."""
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        client = self._api()
        try:
            return fn(client)
        except (UnauthorizedError, BadRequestError) as exc:
            if _xrpc_error(exc) not in _AUTH_ERRORS:
                raise
        with self._lock:
            try:
                client._refresh_and_set_session()  # the SDK's own refresh, so session callbacks fire
            except (UnauthorizedError, BadRequestError):
                self._login(client)
        return fn(client)

    def _observe(self, response: Any) -> None:
        headers = response.headers
        remaining, reset = headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")
        if remaining is None or reset is None:
            return
        nsid = response.request.url.path.rsplit("/", 1)[-1]
        for bucket in _BUCKETS.get(nsid, ("read",)):
            self.gate.observe(bucket, int(remaining), float(reset))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.request.close()
                self._client = None
            if self._video is not None:
                self._video.close()
                self._video = None

    # ---- video service ----

    def _video_service(self) -> Any:
        """The account's video service client, or None when videos go to the PDS as plain blobs."""
        from bot.platforms.bluesky_video import VideoService, service_for

        try:
            url = service_for(self.base_url, self.account.options.get("video_service"))
        except ValueError as exc:
            raise ConfigError([f"accounts.yaml: accounts.{self.account.id}.options: {exc}"]) from exc
        if url is None:
            return None
        with self._lock:
            if self._video is None:
                self._video = VideoService(
                    url, did=self._session().did, call=self._call, gate=self.gate, wall=self._wall, sleep=self._sleep, poll_interval=self.poll_interval,
                    processing_wait=self.processing_wait, timeout=self.timeout, log=self.log)
            return self._video

    # ---- hooks ----

    def _whoami(self) -> Identity:
        session = self._session()
        return Identity(id=session.did, handle=session.handle)

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        from bot.platforms.bluesky_media import embed_for

        session = self._session()
        video = self._video_service() if out.video else None
        embed = self._call(lambda client: embed_for(client, out, progress, video))
        record: dict[str, Any] = {
            "$type": POST,
            "text": out.text,
            "createdAt": _now_iso(),
            "facets": build_facets(out.text, self._resolve_handle),
        }
        if out.language:
            record["langs"] = [out.language]
        if embed:
            record["embed"] = embed
        uri = self._create_once(session, POST, tid_for(out.key), record)
        return Receipt(remote_id=uri, url=post_url(session.handle, uri))

    def _create_once(self, session: Any, collection: str, rkey: str, record: dict[str, Any]) -> str:
        """Create the record under ``rkey``, or find the one an earlier attempt made; its at:// URI."""
        from atproto_client.exceptions import BadRequestError, NetworkError, RequestException

        data = {"repo": session.did, "collection": collection, "rkey": rkey, "record": record}
        try:
            return self._call(lambda client: client.com.atproto.repo.create_record(data)).uri
        except NetworkError as exc:  # timeouts included
            if exc.response is None and _maybe_sent(exc):
                cause = type(exc.__cause__).__name__
                raise UncertainOutcome(f"bluesky {collection} {rkey}: sent, but no answer ({cause})") from exc
            raise
        except (BadRequestError, RequestException) as exc:
            # The reference PDS answers a taken record key with a 500 (its database refuses the row);
            # a 400 may mean the same elsewhere. Either way, if the record is there, the first
            # attempt made it. Other answers (429, 503) end here, with no further request.
            status = exc.response.status_code if exc.response is not None else 0
            if status not in (400, 500):
                raise
            existing = self._get_record(session.did, collection, rkey)
            if existing is None:
                raise
            self.log.info("publish_deduplicated", remote_id=existing, rkey=rkey)
            return existing

    def _get_record(self, did: str, collection: str, rkey: str) -> str | None:
        from atproto_client.exceptions import BadRequestError

        try:
            got = self._call(lambda client: client.com.atproto.repo.get_record(
                {"repo": did, "collection": collection, "rkey": rkey}))
        except BadRequestError as exc:
            if _xrpc_error(exc) in ("RecordNotFound", "NotFound"):
                return None
            raise
        return got.uri

    def _find_published(self, out: Outgoing) -> Receipt | None:
        session = self._session()
        uri = self._get_record(session.did, POST, tid_for(out.key))
        return Receipt(remote_id=uri, url=post_url(session.handle, uri)) if uri else None

    def _reshare(self, mention: Mention) -> Receipt:
        session = self._session()
        uri, cid = mention.ref.get("uri") or mention.remote_id, mention.ref.get("cid")
        if not cid:
            posts = self._call(lambda client: client.app.bsky.feed.get_posts({"uris": [uri]})).posts
            if not posts:
                raise NotFound(f"bluesky post {uri} not found")
            cid = posts[0].cid
        record = {"$type": REPOST, "subject": {"uri": uri, "cid": cid}, "createdAt": _now_iso()}
        made = self._create_once(session, REPOST, tid_for(f"repost|{session.did}|{uri}"), record)
        # A repost has no page of its own: the receipt links the reposted post.
        return Receipt(remote_id=made, url=mention.url or post_url(uri.split("/")[2], uri))

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        from bot.platforms.bluesky_search import search_tags

        return search_tags(lambda params: self._call(lambda c: c.app.bsky.feed.search_posts(params)), hashtags, cursor)

    def _resolve_handle(self, handle: str) -> str | None:
        from atproto_client.exceptions import BadRequestError

        try:
            return self._call(lambda client: client.com.atproto.identity.resolve_handle({"handle": handle})).did
        except BadRequestError:
            return None  # not a known handle: leave the text as it is, without a mention facet

    # ---- errors ----

    def _map_error(self, exc: Exception) -> BotError:
        from atproto_client import exceptions as ex

        if isinstance(exc, ex.RateLimitExceededError):
            reset = exc.reset_at.timestamp() - self._wall() if exc.reset_at else exc.retry_after
            return RateLimited(f"bluesky rate limit ({exc.policy or 'no policy given'})", retry_after=reset)
        if isinstance(exc, ex.UnauthorizedError) or (
            isinstance(exc, ex.BadRequestError) and _xrpc_error(exc) in _AUTH_ERRORS | {"AuthFactorTokenRequired", "AccountTakedown"}
        ):
            names = ", ".join(sorted(self.account.credentials.values()))
            return AuthFailed(
                f"account {self.account.id}: Bluesky refused the credentials ({_xrpc_error(exc) or 'unauthorized'}); "
                f"check the app password in {names} and the handle {self.account.handle}"
            )
        if isinstance(exc, ex.BadRequestError):
            if _xrpc_error(exc) in ("RecordNotFound", "NotFound"):
                return NotFound(f"bluesky: {exc}")
            return ContentRejected(f"bluesky rejected the request: {exc}")
        if isinstance(exc, ex.InvokeTimeoutError):
            return PlatformUnavailable(f"bluesky did not answer within {self.timeout:.0f}s")
        if isinstance(exc, ex.NetworkError) and exc.response is not None and exc.response.status_code == 413:
            return ContentRejected(f"bluesky: upload too large ({exc})")
        if isinstance(exc, ex.RequestErrorBase):
            return PlatformUnavailable(f"bluesky: {exc}")
        return self._unavailable(exc)


def _maybe_sent(exc: Exception) -> bool:
    """Whether a transport failure may have happened after the server got the request."""
    import httpx

    return not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _xrpc_error(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return getattr(content, "error", None)
