"""Streaming for the tracker: where a platform pushes tagged posts (Mastodon), take them as they come.

Each stream has a lane: a thread of its own that decides and reshares what the stream
delivers, so a streamed post never waits for the run loop's polls of other networks or
for their reshares. The lane uses the same policy, caps and ledger as the loop; the
tracker's per-account locks keep the caps and the one-reshare-per-post rule race-free.
When a stream fails, or the instance has none, the tracker polls at once and tries
streaming again later.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from bot.core.values import Mention
from bot.resharing.feeds import Feed

STREAM_RETRY = timedelta(minutes=5)
LANE_IDLE = 0.25  # real seconds a lane waits for a post before it looks at stop again
LANE_MIN_IDLE = 0.01  # so a due time the lane cannot act on (no lease) never spins it hot


class Streaming:
    """Mixed into Tracker, which provides adapters, campaign, clock, log, feeds, resharer, _stop, _wake,
    _current and _serve_streamed."""

    stream_connect_timeout = 10.0  # seconds a stream may take to connect before we poll instead
    _stream_threads: dict[int, threading.Thread]
    _lanes: list[threading.Thread]

    def _ensure_stream(self, feed: Feed, now: datetime) -> None:
        adapter = self.adapters[feed.reader]
        if (
            self._stop.is_set()
            or feed.stream.on
            or not hasattr(adapter, "stream_mentions")
            or not getattr(adapter, "supports_streaming", False)
        ):
            return
        if self.campaign.accounts[feed.reader].options.get("streaming") is False:
            return
        if feed.stream.retry_at and now < feed.stream.retry_at:
            return
        feed.stream.on = True
        thread = threading.Thread(target=self._stream, args=(feed, adapter), name=f"stream-{feed.network}", daemon=True)
        self._stream_threads[id(feed.stream)] = thread
        thread.start()

    def _stream(self, feed: Feed, adapter: Any) -> None:
        state = feed.stream
        log = self.log.bind(platform=feed.platform, account=feed.reader, tags=list(feed.tags))
        log.info("stream_started")
        ended = threading.Event()
        lane = threading.Thread(target=self._lane, args=(feed, ended), name=f"lane-{feed.network}", daemon=True)
        self._lanes = [t for t in self._lanes if t.is_alive()] + [lane]
        lane.start()

        params = inspect.signature(adapter.stream_mentions).parameters
        options: dict[str, Any] = {}
        if "on_connected" in params:
            options["on_connected"] = state.connected.set
        if "connect_timeout" in params:
            options["connect_timeout"] = self.stream_connect_timeout
        try:
            adapter.stream_mentions(list(feed.tags), state.inbox.put, self._stop, **options)
            reason = "stream ended"
        except Exception as exc:  # noqa: BLE001  (any stream failure means: poll instead)
            reason = f"{type(exc).__name__}: {exc}"
        ended.set()
        state.on = False
        state.connected.clear()
        if not self._stop.is_set():
            state.retry_at = self.clock.now() + STREAM_RETRY
            state.poll_now = True  # catch up by polling at once; the loop also takes what the lane left
            log.warning("stream_fell_back", reason=reason, retry_in=STREAM_RETRY.total_seconds())
            self._wake.set()

    def _lane(self, feed: Feed, ended: threading.Event) -> None:
        """Decide and reshare streamed posts as they arrive, until the stream ends or the tracker stops.

        The lane also reshares its accounts' waiting posts when they fall due (held back by the
        spacing, or found by the safety poll), so the loop never reshares for them meanwhile.
        """
        inbox = feed.stream.inbox
        while not (ended.is_set() or self._stop.is_set()):
            try:
                got = [inbox.get(timeout=self._lane_idle(feed))]
            except queue.Empty:
                got = []
            got += _take_all(inbox)
            if not got and not self._lane_due(feed):
                continue
            try:
                self._serve_streamed(feed, got)
            except Exception as exc:  # noqa: BLE001  (a bad batch must not end the lane; the safety poll catches up)
                self.log.error("stream_lane_failed", platform=feed.platform, error=f"{type(exc).__name__}: {exc}")

    def _lane_due(self, feed: Feed) -> bool:
        now, due = self.clock.now(), self.resharer.next_due if self.resharer else {}
        accounts = (self._current(feed) or feed).accounts
        return any(t <= now for t in (due.get(a) for a in accounts) if t is not None)

    def _lane_idle(self, feed: Feed) -> float:
        """Real seconds until the lane's next waiting post falls due, at most LANE_IDLE."""
        due = self.resharer.next_due if self.resharer else {}
        times = [t for t in (due.get(a) for a in (self._current(feed) or feed).accounts) if t is not None]
        if not times:
            return LANE_IDLE
        seconds = (min(times) - self.clock.now()).total_seconds() / getattr(self.clock, "speed", 1.0)
        return min(max(seconds, LANE_MIN_IDLE), LANE_IDLE)

    def _laned_accounts(self) -> set[str]:
        return {a for f in self.feeds if self._lane_running(f) for a in f.accounts}

    def _lane_running(self, feed: Feed) -> bool:
        return feed.stream.on and not self._stop.is_set()

    def _take_stream(self, feed: Feed, now: datetime, outcome: Counter[str]) -> None:
        """The loop's share: posts a stream delivered while no lane was there to take them."""
        got = _take_all(feed.stream.inbox)
        if got:
            # Streamed posts do not move the cursor: the slower safety poll does, and skips what is decided.
            self._decide(feed, got, now, outcome, None, None)

    def _join_lanes(self, timeout: float) -> None:
        """Let a reshare in flight on a lane finish and be recorded before the tracker lets go of its lease."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.join(max(deadline - time.monotonic(), 0.0))


def _take_all(inbox: queue.Queue[Mention]) -> list[Mention]:
    got = []
    while True:
        try:
            got.append(inbox.get_nowait())
        except queue.Empty:
            return got
