"""Bluesky (AT Protocol): the atproto SDK against the account's PDS.

The logged-in client and its refreshes live in ``bluesky_session``, error mapping in
``bluesky_errors``, embeds in ``bluesky_media`` and videos in ``bluesky_video``. Posts and
reposts are created with record keys derived from the publication key, so a retry after a
crash meets the first record instead of making a second one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from bot.core.errors import BotError, ConfigError, NotFound, UncertainOutcome
from bot.core.values import AccountLike, Identity, Limits, Mention, MentionPage, Outgoing, Progress, Receipt
from bot.platforms.base import Platform, PostChange
from bot.platforms.bluesky.errors import map_error, maybe_sent, xrpc_error
from bot.platforms.bluesky.session import Connection, FileSessionStore, SessionStore
from bot.platforms.bluesky.text import build_facets, patterns, post_url, tid_for

MB = 1024 * 1024
POST, REPOST = "app.bsky.feed.post", "app.bsky.feed.repost"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Bluesky(Platform):
    name: ClassVar[str] = "bluesky"
    default_base_url: ClassVar[str] = "https://bsky.social"
    required_credentials: ClassVar[tuple[str, ...]] = ("app_password",)
    needs_handle: ClassVar[bool] = True
    supports_streaming: ClassVar[bool] = True  # the repository firehose, or a Jetstream (bluesky.stream)
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
        # 35,000 points a day per account, 3 a created record: at most 11,666 records (posts, and the reposts
        # resharing makes) a day. https://docs.bsky.app/docs/advanced-guides/rate-limits
        posts_per_day=11_666,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        return len(patterns().grapheme.findall(text))

    @classmethod
    def option_problems(cls, base_url: str | None, options: Mapping[str, Any]) -> dict[str, str]:
        """What is wrong with an account's ``options``, by key; ``bot check`` reports it with the key's line."""
        from bot.platforms.bluesky.video import service_for

        try:
            service_for(base_url or cls.default_base_url, options.get("video_service"))
        except ValueError as exc:
            return {"video_service": str(exc)}
        return {}

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        session_store: SessionStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        processing_wait: float = 600.0,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        self._sleep = sleep
        self.poll_interval = poll_interval
        self.processing_wait = processing_wait  # bounded wait for the video service to transcode
        self._video: Any = None
        self._lock = threading.Lock()
        if session_store is None and self.state_dir is not None:
            session_store = FileSessionStore(self.state_dir / "sessions")
        # Keyed by server and handle too: a session from another PDS or account would only cost a failed call.
        where = hashlib.sha256(f"{self.base_url}|{account.handle}".encode()).hexdigest()[:10]
        self._conn = Connection(
            self.base_url,
            account.handle or "",
            lambda: self._secret("app_password"),
            gate=self.gate,
            timeout=self.timeout,
            store=session_store,
            store_key=f"{account.id}-{where}",
        )
        self._call = self._conn.call
        self._session = self._conn.session

    @property
    def logins(self) -> int:
        """Password logins made by this adapter (each one costs rate-limit budget)."""
        return self._conn.logins

    def close(self) -> None:
        self._conn.close()
        with self._lock:
            if self._video is not None:
                self._video.close()
                self._video = None

    # ---- video service ----

    def _video_service(self) -> Any:
        """The account's video service client, or None when videos go to the PDS as plain blobs."""
        from bot.platforms.bluesky.video import VideoService, service_for

        try:
            url = service_for(self.base_url, self.account.options.get("video_service"))
        except ValueError as exc:
            raise ConfigError([f"accounts.yaml: accounts.{self.account.id}.options.video_service: {exc}"]) from exc
        if url is None:
            return None
        with self._lock:
            if self._video is None:
                self._video = VideoService(
                    url,
                    did=self._session().did,
                    call=self._call,
                    gate=self.gate,
                    wall=self._wall,
                    sleep=self._sleep,
                    poll_interval=self.poll_interval,
                    processing_wait=self.processing_wait,
                    timeout=self.timeout,
                    log=self.log,
                )
            return self._video

    # ---- hooks ----

    def _whoami(self) -> Identity:
        session = self._session()
        return Identity(id=session.did, handle=session.handle)

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        from bot.platforms.bluesky.media import embed_for

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
            made: str = self._call(lambda client: client.com.atproto.repo.create_record(data)).uri
            return made
        except NetworkError as exc:  # timeouts included
            if exc.response is None and maybe_sent(exc):
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
            got = self._call(
                lambda client: client.com.atproto.repo.get_record({"repo": did, "collection": collection, "rkey": rkey})
            )
        except BadRequestError as exc:
            if xrpc_error(exc) in ("RecordNotFound", "NotFound"):
                return None
            raise
        uri: str = got.uri
        return uri

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

    def _withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        session = self._session()
        uri = mention.ref.get("uri") or mention.remote_id
        # The repost's record key is derived from the post, so it is known even without the receipt.
        rkey = reshare_id.rsplit("/", 1)[-1] if reshare_id else tid_for(f"repost|{session.did}|{uri}")
        # deleteRecord of a record that is not there succeeds: withdrawing twice is harmless.
        data = {"repo": session.did, "collection": REPOST, "rkey": rkey}
        self._call(lambda client: client.com.atproto.repo.delete_record(data))

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        from bot.platforms.bluesky.search import search_tags

        return search_tags(
            lambda params: self._call(lambda c: c.app.bsky.feed.search_posts(params)),
            hashtags,
            cursor,
            self._profiles,
        )

    def _profiles(self, dids: list[str]) -> Sequence[Any]:
        """Authors' profiles (follower counts, creation times) for the trust signals; none when the AppView fails."""
        try:
            got: Sequence[Any] = self._call(lambda c: c.app.bsky.actor.get_profiles({"actors": dids})).profiles
            return got
        except Exception as exc:  # noqa: BLE001  (unknown counts are the policy's to judge, not a failed poll)
            self.log.warning("author_profiles_failed", count=len(dids), error=type(exc).__name__)
            return []

    # ---- streaming ----

    def warm_stream(self) -> None:
        """Import the stream's libraries and log in, in the caller's thread (the tracker's, before the stream's)."""
        import atproto  # noqa: F401  (the firehose client and CAR decoding)

        import bot.platforms.bluesky.stream  # noqa: F401

        self._session()  # profile look-ups for the stream's authors need the session

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
        """Deliver tagged posts from the network's event stream until ``stop``; deletions and edits to ``on_change``.

        Raises PlatformUnavailable when no stream answers within ``connect_timeout`` or it ends:
        the caller then polls ``fetch_mentions``. See ``bluesky.stream`` for which stream.
        """
        from bot.platforms.bluesky.stream import follow

        self.warm_stream()
        follow(
            self,
            hashtags,
            on_mention,
            stop,
            connect_timeout=connect_timeout,
            on_connected=on_connected,
            on_change=on_change,
        )

    def _resolve_handle(self, handle: str) -> str | None:
        from atproto_client.exceptions import BadRequestError

        try:
            did: str = self._call(lambda client: client.com.atproto.identity.resolve_handle({"handle": handle})).did
            return did
        except BadRequestError:
            return None  # not a known handle: leave the text as it is, without a mention facet

    # ---- errors ----

    def _map_error(self, exc: Exception) -> BotError:
        return map_error(exc, self.account, timeout=self.timeout, wall=self._wall) or self._unavailable(exc)
