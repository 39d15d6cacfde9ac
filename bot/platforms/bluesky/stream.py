"""Bluesky in real time: tagged posts, edits and deletions from the network's event stream.

Two kinds of stream, chosen per account in ``accounts.yaml`` options:

- the repository firehose ``com.atproto.sync.subscribeRepos`` (default): ``firehose_url`` (a
  ``wss://…/xrpc`` base), else the relay ``wss://bsky.network/xrpc`` for accounts on bsky.social,
  else the account's own PDS (a self-hosted or reference PDS serves its repositories' events);
  commits carry the records as CAR blocks, decoded by the atproto SDK;
- a Jetstream (JSON over WebSocket) where ``jetstream_url`` is set (``wss://…/subscribe``).

Either way a post's tags are read from its record (facets, else the text), as the search does.
An event names the author only by DID: the handle and display name (which the policy reads) come
from the author's profile, kept for a few minutes. Polling stays the fallback: the tracker polls
when this raises, and at a slower pace while the stream runs, for what a reconnect dropped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

from bot.core.errors import PlatformUnavailable
from bot.core.values import Mention
from bot.platforms.base import PostChange
from bot.platforms.bluesky.search import to_mention
from bot.platforms.bluesky.text import tags_in

# The adapter is typed loosely here: importing its class, even for type checking, makes an import cycle.
Bluesky = Any

POST = "app.bsky.feed.post"
RELAY = "wss://bsky.network/xrpc"  # the network's relay: every repository's events, for bsky.social accounts
PROFILE_TTL = 300.0  # seconds a looked-up handle and display name are trusted (people rename themselves)
RECV_TIMEOUT = 30.0  # seconds of silence before the SDK reconnects (its default for the firehose)


def stream_url(base_url: str, options: dict[str, Any]) -> tuple[str, str]:
    """Which stream an account follows: ``("jetstream", url)`` or ``("firehose", base)``."""
    if options.get("jetstream_url"):
        return "jetstream", str(options["jetstream_url"])
    if options.get("firehose_url"):
        return "firehose", str(options["firehose_url"]).rstrip("/")
    parts = urlsplit(base_url)
    if parts.hostname in ("bsky.social", "www.bsky.social"):
        return "firehose", RELAY
    scheme = "wss" if parts.scheme == "https" else "ws"
    return "firehose", f"{scheme}://{parts.netloc}/xrpc"


class Authors:
    """Handles and display names by DID, looked up once per ``PROFILE_TTL``."""

    def __init__(self, adapter: Bluesky, wall: Callable[[], float] = time.monotonic) -> None:
        self._adapter = adapter
        self._wall = wall
        self._known: dict[str, tuple[float, str, str]] = {}

    def of(self, did: str) -> tuple[str, str]:
        known = self._known.get(did)
        if known is not None and self._wall() - known[0] < PROFILE_TTL:
            return known[1], known[2]
        try:
            profile = self._adapter._call(lambda c: c.app.bsky.actor.get_profile({"actor": did}))
            handle, name = profile.handle, profile.display_name or ""
        except Exception as exc:  # noqa: BLE001  (no AppView, or a new account it has not indexed yet)
            handle, name = self._from_repo(did, exc)
        self._known[did] = (self._wall(), handle, name)
        if len(self._known) > 50_000:  # a busy relay meets many authors: forget the oldest half
            for key in sorted(self._known, key=lambda k: self._known[k][0])[:25_000]:
                self._known.pop(key, None)
        return handle, name

    def _from_repo(self, did: str, exc: Exception) -> tuple[str, str]:
        # The PDS knows its own repositories' handles and profile records without an AppView.
        try:
            repo = self._adapter._call(lambda c: c.com.atproto.repo.describe_repo({"repo": did}))
            handle = repo.handle
        except Exception:  # noqa: BLE001
            self._adapter.log.warning("stream_author_unknown", did=did, error=type(exc).__name__)
            return did, ""
        try:
            got = self._adapter._call(
                lambda c: c.com.atproto.repo.get_record(
                    {"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self"}
                )
            )
            value = got.value if isinstance(got.value, dict) else got.value.model_dump(by_alias=True)
            return handle, str(value.get("displayName") or "")
        except Exception:  # noqa: BLE001  (no profile record: no display name)
            return handle, ""


class Events:
    """Turns repository events into Mentions (tagged posts) and PostChanges (edits, deletions)."""

    def __init__(
        self,
        adapter: Bluesky,
        hashtags: Sequence[str],
        on_mention: Callable[[Mention], None],
        on_change: Callable[[PostChange], None] | None,
    ) -> None:
        self.adapter = adapter
        self.tags = {t.lstrip("#").lower() for t in hashtags}
        self.on_mention = on_mention
        self.on_change = on_change
        self.authors = Authors(adapter)

    def created(self, did: str, rkey: str, cid: str, record: dict[str, Any], edited: bool = False) -> None:
        if not self.tags & tags_in(record):
            return  # an untagged post, or an edit that took the tag away (nothing of ours to judge)
        uri = f"at://{did}/{POST}/{rkey}"
        handle, name = self.authors.of(did)
        view = SimpleNamespace(
            uri=uri,
            cid=cid,
            author=SimpleNamespace(did=did, handle=handle, display_name=name),
            labels=[],  # labels from moderation services are not in the stream: self-labels are in the record
            embed=self._quoted(record),
            indexed_at=None,
        )
        mention = to_mention(view, record)
        if edited:
            if self.on_change is not None:
                self.on_change(PostChange("edited", uri, mention))
        else:
            self.on_mention(mention)

    def deleted(self, did: str, rkey: str) -> None:
        if self.on_change is not None:
            self.on_change(PostChange("deleted", f"at://{did}/{POST}/{rkey}"))

    def _quoted(self, record: dict[str, Any]) -> Any:
        """The quoted post's record, as a view would carry it, so the filter reads its text too."""
        embed = record.get("embed") or {}
        ref = (embed.get("record") or {}).get("record") or embed.get("record") or {}
        uri = ref.get("uri") if isinstance(ref, dict) else None
        if not uri:
            return None
        try:
            posts = self.adapter._call(lambda c: c.app.bsky.feed.get_posts({"uris": [uri]})).posts
        except Exception as exc:  # noqa: BLE001
            self.adapter.log.warning("stream_quote_unavailable", uri=uri, error=type(exc).__name__)
            return None
        if not posts:
            return None
        value = posts[0].record
        value = value if isinstance(value, dict) else value.model_dump(by_alias=True)
        return SimpleNamespace(record=SimpleNamespace(value=value))


def follow(
    adapter: Bluesky,
    hashtags: Sequence[str],
    on_mention: Callable[[Mention], None],
    stop: threading.Event,
    *,
    connect_timeout: float,
    on_connected: Callable[[], None] | None,
    on_change: Callable[[PostChange], None] | None,
) -> None:
    """Block until ``stop``, delivering tagged posts; raises PlatformUnavailable when no stream answers."""
    kind, url = stream_url(adapter.base_url, dict(adapter.account.options))
    events = Events(adapter, hashtags, on_mention, on_change)
    if kind == "jetstream":
        _jetstream(adapter, url, events, stop, connect_timeout, on_connected)
    else:
        _firehose(adapter, url, events, stop, connect_timeout, on_connected)


def _firehose(
    adapter: Bluesky,
    base: str,
    events: Events,
    stop: threading.Event,
    connect_timeout: float,
    on_connected: Callable[[], None] | None,
) -> None:
    from atproto import CAR, FirehoseSubscribeReposClient, models, parse_subscribe_repos_message

    connected = threading.Event()
    failure: list[BaseException] = []

    class Client(FirehoseSubscribeReposClient):  # type: ignore[misc]
        # atproto 0.0.73 tells no one when its WebSocket is open (no on-open callback in
        # atproto_subscription.websocket.WebsocketClient): we wrap the protected ``_get_client``,
        # which returns once the handshake is done. Pin atproto to 0.0.73 for this.
        def _get_client(self) -> Any:
            client = super()._get_client()
            connected.set()
            return client

    def on_message(message: Any) -> None:
        commit = parse_subscribe_repos_message(message)
        if not isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit):
            return
        blocks = CAR.from_bytes(commit.blocks).blocks if commit.blocks else {}
        for op in commit.ops:
            collection, _, rkey = op.path.partition("/")
            if collection != POST:
                continue
            if op.action == "delete":
                events.deleted(commit.repo, rkey)
            elif op.action in ("create", "update") and op.cid is not None:
                record = blocks.get(op.cid)
                if isinstance(record, dict):
                    events.created(commit.repo, rkey, str(op.cid), record, edited=op.action == "update")

    def on_error(exc: BaseException) -> None:
        adapter.log.error("stream_event_failed", error=f"{type(exc).__name__}: {exc}")

    client = Client(base_uri=base, recv_timeout=RECV_TIMEOUT)

    def run() -> None:
        try:
            client.start(on_message, on_error)
        except BaseException as exc:  # noqa: BLE001  (reported to the caller below)
            failure.append(exc)

    thread = threading.Thread(target=run, name="bluesky-firehose", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + connect_timeout
        while not connected.wait(0.05):
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                raise PlatformUnavailable(f"{base}: no repository event stream ({_why(failure)})")
        adapter.log.info("stream_connected", url=base, kind="firehose")
        if on_connected is not None:
            on_connected()
        while not stop.wait(0.25):
            if not thread.is_alive():
                raise PlatformUnavailable(f"{base}: the event stream ended ({_why(failure)})")
    finally:
        client.stop()
        thread.join(5)


def _jetstream(
    adapter: Bluesky,
    url: str,
    events: Events,
    stop: threading.Event,
    connect_timeout: float,
    on_connected: Callable[[], None] | None,
) -> None:
    """Jetstream's JSON events through the websockets library; reconnects resume from the last event's time."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    cursor: int | None = None
    first = True
    while not stop.is_set():
        params: list[tuple[str, str]] = [("wantedCollections", POST)]
        if cursor is not None:
            params.append(("cursor", str(cursor)))
        target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        try:
            socket = connect(target, open_timeout=connect_timeout, close_timeout=0.1, max_size=2**21)
        except Exception as exc:
            if first:
                raise PlatformUnavailable(f"{url}: no Jetstream ({type(exc).__name__}: {exc})") from exc
            stop.wait(2.0)
            continue
        with socket:
            if first:
                adapter.log.info("stream_connected", url=url, kind="jetstream")
                if on_connected is not None:
                    on_connected()
                first = False
            while not stop.is_set():
                try:
                    raw = socket.recv(0.25)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    break
                try:
                    event = json.loads(raw)
                    cursor = int(event.get("time_us") or cursor or 0) or cursor
                    _jetstream_event(event, events)
                except Exception as exc:  # noqa: BLE001  (one bad event must not end the stream)
                    adapter.log.error("stream_event_failed", error=f"{type(exc).__name__}: {exc}")


def _jetstream_event(event: dict[str, Any], events: Events) -> None:
    commit = event.get("commit") or {}
    if event.get("kind") != "commit" or commit.get("collection") != POST:
        return
    did, rkey, operation = event.get("did", ""), commit.get("rkey", ""), commit.get("operation")
    if operation == "delete":
        events.deleted(did, rkey)
    elif operation in ("create", "update") and isinstance(commit.get("record"), dict):
        events.created(did, rkey, str(commit.get("cid") or ""), commit["record"], edited=operation == "update")


def _why(failure: list[BaseException]) -> str:
    return f"{type(failure[0]).__name__}: {failure[0]}" if failure else "no answer"
