"""Mastodon hashtag streaming (server-sent events) through Mastodon.py, one stream per tag."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.errors import PlatformUnavailable
from bot.platforms.base import Mention

if TYPE_CHECKING:
    from bot.platforms.mastodon import Mastodon


def stream_hashtags(
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
            except Exception as exc:  # one bad callback must not end the stream
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
