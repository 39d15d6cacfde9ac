"""Streaming for the tracker: where a platform pushes tagged posts (Mastodon), take them as they come.

A stream thread only queues posts and wakes the run loop; deciding stays on the
loop's thread. When a stream fails, or the instance has none, the tracker polls
at once and tries streaming again later.
"""

from __future__ import annotations

import inspect
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from bot.platforms.base import Mention
from bot.tracking_feeds import Feed

STREAM_RETRY = timedelta(minutes=5)


class Streaming:
    """Mixed into Tracker, which provides adapters, campaign, clock, log, _stop, _wake and _decide."""

    stream_connect_timeout = 10.0  # seconds a stream may take to connect before we poll instead
    _stream_threads: dict[int, threading.Thread]

    def _ensure_stream(self, feed: Feed, now: datetime) -> None:
        adapter = self.adapters[feed.reader]
        if feed.streaming or not hasattr(adapter, "stream_mentions") or not getattr(adapter, "supports_streaming", False):
            return
        if self.campaign.accounts[feed.reader].options.get("streaming") is False:
            return
        if feed.stream_retry_at and now < feed.stream_retry_at:
            return
        feed.streaming = True
        thread = threading.Thread(target=self._stream, args=(feed, adapter), name=f"stream-{feed.network}", daemon=True)
        self._stream_threads[id(feed)] = thread
        thread.start()

    def _stream(self, feed: Feed, adapter: Any) -> None:
        log = self.log.bind(platform=feed.platform, account=feed.reader, tags=list(feed.tags))
        log.info("stream_started")

        def deliver(mention: Mention) -> None:
            feed.inbox.put(mention)
            self._wake.set()

        params = inspect.signature(adapter.stream_mentions).parameters
        options: dict[str, Any] = {}
        if "on_connected" in params:
            options["on_connected"] = feed.connected.set
        if "connect_timeout" in params:
            options["connect_timeout"] = self.stream_connect_timeout
        try:
            adapter.stream_mentions(list(feed.tags), deliver, self._stop, **options)
            reason = "stream ended"
        except Exception as exc:  # noqa: BLE001  (any stream failure means: poll instead)
            reason = f"{type(exc).__name__}: {exc}"
        feed.streaming = False
        feed.connected.clear()
        if not self._stop.is_set():
            feed.stream_retry_at = self.clock.now() + STREAM_RETRY
            feed.next_at = self.clock.now()  # catch up by polling at once
            log.warning("stream_fell_back", reason=reason, retry_in=STREAM_RETRY.total_seconds())
            self._wake.set()

    def _take_stream(self, feed: Feed, now: datetime, outcome: Counter[str]) -> None:
        got = []
        while not feed.inbox.empty():
            got.append(feed.inbox.get_nowait())
        if got:
            # Streamed posts do not move the cursor: the slower safety poll does, and skips what is decided.
            self._decide(feed, got, now, outcome, None, None)
