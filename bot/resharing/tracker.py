"""Hashtag tracking: read tagged posts per platform, decide each once, reshare the allowed ones slowly.

The worker starts one ``Tracker`` per campaign and calls ``run(stop)`` in a thread;
tests and the demo call ``poll_once()`` with a FakeClock. Only the holder of the
ledger's tracker lease reads and reshares, so overlapping workers never double up.
Streams are served on lanes of their own (bot.resharing.streams); the loop and the lanes
decide and reshare for an account only under that account's lock, so caps, spacing and
the one-reshare-per-post rule hold across threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Engine

from bot.core.clock import Clock
from bot.core.errors import PermanentError, RetryableError
from bot.core.values import Mention
from bot.ledger.reshares import ReshareLedger
from bot.platforms.base import Platform
from bot.resharing.decide import Deciding
from bot.resharing.feeds import DEFAULT_INTERVALS, Feed, build_feeds, network_of
from bot.resharing.policy import Rules
from bot.resharing.resharer import Resharer
from bot.resharing.streams import Streaming

__all__ = ["DEFAULT_INTERVALS", "Tracker", "network_of", "start_tracking", "tracked_adapters"]

STREAM_SAFETY_FACTOR = 10  # while a stream is up, poll this many times less often, to catch what it dropped
LEASE_TTL = timedelta(minutes=3)
WAKE_AT_LEAST = timedelta(seconds=30)
PERMANENT_PAUSE = timedelta(hours=1)  # between polls of a feed whose reads are refused (auth, ...)
MIN_REAL_PAUSE = 0.1  # real seconds between two passes of the run loop
LANE_JOIN = 20.0  # real seconds a stopping tracker waits for reshares in flight on its lanes


class Tracker(Deciding, Streaming):
    """Polls (or streams) every tracked feed, records a decision per post, and reshares within caps."""

    def __init__(
        self, campaign: Any, engine: Engine, adapters: Mapping[str, Platform], clock: Clock, owner: str
    ) -> None:
        self.clock = clock
        self.owner = owner
        self.adapters = dict(adapters)
        self.ledger = ReshareLedger(engine, campaign.name)
        self.reads: Counter[str] = Counter()  # read calls per network since start (X bills each)
        self._lock = threading.RLock()  # the run loop's pass, against reload
        self._config_lock = threading.RLock()  # a lane's batch, against reload (never waits for the loop)
        self._account_locks: dict[str, threading.Lock] = {}
        self._account_locks_guard = threading.Lock()
        self._lanes: list[threading.Thread] = []
        self._identities: dict[str, Any] = {}
        self._whoami_failed: set[str] = set()  # tried this poll already; retried next poll
        self._lease_until: datetime | None = None
        self._stream_threads: dict[int, threading.Thread] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()  # a stream delivered a post, or fell back to polling
        self._leader = False
        self.reload(campaign)

    # ---- configuration ----

    def reload(self, campaign: Any, adapters: Mapping[str, Platform] | None = None) -> None:
        """Take a new campaign (after a valid edit); cursors and decisions live on in the ledger."""
        with self._lock, self._config_lock:
            if adapters is not None:
                self.adapters = dict(adapters)
                self._identities.clear()
            self.campaign = campaign
            self.log = structlog.get_logger("bot.resharing.tracker").bind(campaign=campaign.name)
            config = campaign.reshare
            self.rules = Rules.from_policy(config.policy) if config else None
            old = {(f.network, f.key): f for f in getattr(self, "feeds", [])}
            self.feeds = build_feeds(campaign, self.adapters, self.log)
            for feed in self.feeds:  # keep poll times and stream state across reloads
                prev = old.get((feed.network, feed.key))
                if prev:
                    feed.next_at, feed.stream = prev.next_at, prev.stream
            self.resharer = (
                Resharer(self.ledger, self.adapters, self.clock, self.rules, self.log) if self.rules else None
            )

    # ---- the loop ----

    def run(self, stop: threading.Event) -> None:
        """Track until ``stop`` is set; never raises (a failing poll is logged and retried next time)."""
        self._stop = stop
        self.log.info("tracking_started", feeds=[f"{f.network}:{f.key}" for f in self.feeds], owner=self.owner)
        try:
            while not stop.is_set():
                try:
                    self._pass(start_streams=True)
                except Exception as exc:  # noqa: BLE001  (the tracker must outlive any one bad poll)
                    self.log.error("tracking_failed", error=f"{type(exc).__name__}: {exc}")
                # A floor in real time, so a fast demo clock cannot spin the loop (and the ledger) hot.
                # A stream falling back (real, so it cannot spin us) cuts the floor short.
                self._wake.wait(MIN_REAL_PAUSE)
                self._wait(stop, self.next_wake())
        finally:
            self._join_lanes(LANE_JOIN)
            if self._leader:
                self.ledger.release_lease(self.owner)
                self._leader, self._lease_until = False, None
            self.log.info("tracking_stopped", reads=dict(self.reads))

    def next_wake(self) -> datetime:
        now = self.clock.now()
        times = [now + WAKE_AT_LEAST] + [f.next_at for f in self.feeds if f.next_at]
        if self.resharer is not None:
            laned = self._laned_accounts()  # their lanes wake for them
            times += [t for a, t in list(self.resharer.next_due.items()) if a not in laned]
        return min(times)

    def _wait(self, stop: threading.Event, until: datetime) -> None:
        while not stop.is_set() and not self._wake.is_set():
            remaining = (until - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            wall = self.clock.wall_seconds(remaining)
            if wall <= 0:
                self._wake.wait(0.05)  # a clock real time does not move (a test's): look again soon
            else:
                # Real seconds (a demo clock runs faster); short chunks so stop and streams wake us.
                self._wake.wait(min(wall, 0.25))

    def poll_once(self) -> dict[str, int]:
        """Poll every feed that is due, decide what it found, reshare what may go now; counts by outcome."""
        return self._pass(start_streams=False)

    def _pass(self, *, start_streams: bool) -> dict[str, int]:
        with self._lock:
            outcome: Counter[str] = Counter()
            if self.rules is None or not self.feeds:
                return dict(outcome)
            self._wake.clear()
            self._whoami_failed.clear()
            now = self.clock.now()
            leader = self._hold_lease(now)
            if leader != self._leader:
                self.log.info("tracking_lease_taken" if leader else "tracking_lease_lost", owner=self.owner)
                self._leader = leader
            if not leader:
                return dict(outcome)
            self.resharer.recover_stuck(now, LEASE_TTL)
            if start_streams:  # before the polls, which may take seconds: a post made meanwhile is streamed
                for feed in self.feeds:
                    self._ensure_stream(feed, now)
            # A stream's lane serves its posts as they come; the loop only takes what arrived while no
            # lane ran (a stream that just dropped, or poll_once called without run).
            for feed in self.feeds:
                if not self._lane_running(feed):
                    self._take_stream(feed, now, outcome)
            # A feed's accounts reshare right after its poll: what X found does not wait for Bluesky's poll.
            # Accounts a stream's lane serves are the lane's to reshare for; the loop only tells it when
            # its safety poll scheduled something.
            drained: set[str] = set()
            for feed in self.feeds:
                if feed.stream.poll_now or feed.next_at is None or feed.next_at <= now:
                    self._poll(feed, now, outcome)
                    self._drain_all(set(feed.accounts) - drained, now, outcome)
                    drained.update(feed.accounts)
            self._drain_all({a for f in self.feeds for a in f.accounts} - drained, now, outcome)
            outcome.pop(None, None)
            return dict(outcome)

    def _serve_streamed(self, feed: Feed, got: list[Mention]) -> None:
        """A lane's batch: decide the streamed posts and reshare what may go now, as the loop would."""
        with self._config_lock:
            now = self.clock.now()
            current = self._current(feed)
            if self.rules is None or current is None or self._stop.is_set():
                return  # tracking of these tags was removed by a reload, or we are stopping
            if not (self._leader and self._lease_until is not None and now < self._lease_until):
                # Not ours to act on: the leader's poll finds these, since streamed posts never move the cursor.
                self.log.debug("stream_posts_left", platform=feed.platform, count=len(got))
                for account in current.accounts:
                    self.resharer.next_due.pop(account, None)
                return
            outcome: Counter[str] = Counter()
            if got:
                self._decide(current, got, now, outcome, None, None)
            for account in sorted(current.accounts):
                if self._stop.is_set():
                    return  # what was decided stays pending in the ledger for the next start
                self._drain(account)

    def _current(self, feed: Feed) -> Feed | None:
        """The feed now configured for ``feed``'s tags (a reload replaces Feed objects; a stream keeps its own)."""
        return next((f for f in self.feeds if (f.network, f.key) == (feed.network, feed.key)), None)

    def _drain_all(self, accounts: set[str], now: datetime, outcome: Counter[str]) -> None:
        laned = self._laned_accounts()
        for account in sorted(accounts):
            if account in laned:
                self.resharer.next_due[account] = min(self.resharer.next_due.get(account, now), now)
            else:
                outcome[self._drain(account)] += 1

    def _drain(self, account: str) -> str | None:
        # Held across the reshare call: spacing and caps count only finished reshares.
        with self._holding([account]):
            return self.resharer.drain(account)

    def _hold_lease(self, now: datetime) -> bool:
        # Renew only when half the lease is gone: a poll every few seconds need not write every time.
        if self._leader and self._lease_until is not None and self._lease_until - now > LEASE_TTL / 2:
            return True
        if self.ledger.acquire_lease(self.owner, now, LEASE_TTL):
            self._lease_until = now + LEASE_TTL
            return True
        self._lease_until = None
        return False

    # ---- reading ----

    def _poll(self, feed: Feed, now: datetime, outcome: Counter[str]) -> None:
        adapter = self.adapters[feed.reader]
        cursor_key = (feed.network, feed.reader, feed.key)
        cursor = self.ledger.cursor(*cursor_key)
        interval = feed.interval * (STREAM_SAFETY_FACTOR if feed.stream.on else 1)
        feed.next_at = now + timedelta(seconds=interval)
        feed.stream.poll_now = False
        log = self.log.bind(platform=feed.platform, account=feed.reader, tags=list(feed.tags))
        self.reads[feed.network] += 1
        try:
            page = adapter.fetch_mentions(list(feed.tags), cursor)
        except (RetryableError, PermanentError) as err:
            wait = max(interval, getattr(err, "retry_after", None) or 0.0)
            level = log.warning
            if isinstance(err, PermanentError):
                # Refused credentials stay refused until staff act: report once, then poll rarely.
                level = log.debug if feed.failing else log.error
                feed.failing = True
                wait = max(wait, PERMANENT_PAUSE.total_seconds())
            feed.next_at = now + timedelta(seconds=wait)
            level(
                "mentions_fetch_failed",
                error=type(err).__name__,
                reason=str(err),
                reads=self.reads[feed.network],
                next_poll_in=wait,
            )
            return
        feed.failing = False
        log.info("mentions_fetched", found=len(page.mentions), reads=self.reads[feed.network])
        self._decide(feed, page.mentions, now, outcome, cursor_key, page.cursor or cursor)


def tracked_adapters(campaign: Any, get_adapter: Callable[[Any], Platform]) -> dict[str, Platform]:
    """Adapters of every tracking account; one whose secrets are missing is logged and left out."""
    log = structlog.get_logger("bot.resharing.tracker").bind(campaign=campaign.name)
    out: dict[str, Platform] = {}
    for track in campaign.reshare.track if campaign.reshare else []:
        for account_id in track.accounts:
            account = campaign.accounts.get(account_id)
            if account is None or account_id in out:
                continue
            try:
                out[account_id] = get_adapter(account)
            except Exception as err:  # noqa: BLE001  (MissingSecret names the variable, never its value)
                log.error("tracking_account_unavailable", account=account_id, reason=f"{type(err).__name__}: {err}")
    return out


def start_tracking(
    campaign: Any,
    engine: Engine,
    get_adapter: Callable[[Any], Platform],
    clock: Clock,
    owner: str,
    stop: threading.Event,
) -> tuple[Tracker, threading.Thread] | None:
    """The worker's entry point: a Tracker running in a daemon thread, or None when nothing is tracked."""
    if campaign.reshare is None or not campaign.reshare.track:
        return None
    tracker = Tracker(campaign, engine, tracked_adapters(campaign, get_adapter), clock, owner)
    thread = threading.Thread(target=tracker.run, args=(stop,), name="tracking", daemon=True)
    thread.start()
    return tracker, thread
