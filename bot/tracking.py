"""Hashtag tracking: read tagged posts per platform, decide each once, reshare the allowed ones slowly.

The worker starts one ``Tracker`` per campaign and calls ``run(stop)`` in a thread;
tests and the demo call ``poll_once()`` with a FakeClock. Only the holder of the
ledger's tracker lease reads and reshares, so overlapping workers never double up.
Streams are served on lanes of their own (bot.tracking_stream); the loop and the lanes
decide and reshare for an account only under that account's lock, so caps, spacing and
the one-reshare-per-post rule hold across threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Engine

from bot.clock import Clock, FakeClock
from bot.errors import PermanentError, RetryableError
from bot.ledger.reshares import NewDecision, ReshareLedger
from bot.platforms.base import Mention, Platform
from bot.policy import Context, Rules, decide, judge
from bot.resharing import Resharer
from bot.tracking_stream import Streaming
from bot.tracking_feeds import DEFAULT_INTERVALS, Feed, build_feeds, fair_order, instance_of, network_of

__all__ = ["DEFAULT_INTERVALS", "Tracker", "network_of", "start_tracking", "tracked_adapters"]

STREAM_SAFETY_FACTOR = 10  # while a stream is up, poll this many times less often, to catch what it dropped
LEASE_TTL = timedelta(minutes=3)
WAKE_AT_LEAST = timedelta(seconds=30)
PERMANENT_PAUSE = timedelta(hours=1)  # between polls of a feed whose reads are refused (auth, ...)
MIN_REAL_PAUSE = 0.1  # real seconds between two passes of the run loop
LANE_JOIN = 20.0  # real seconds a stopping tracker waits for reshares in flight on its lanes


class Tracker(Streaming):
    """Polls (or streams) every tracked feed, records a decision per post, and reshares within caps."""

    def __init__(self, campaign: Any, engine: Engine, adapters: Mapping[str, Platform], clock: Clock, owner: str) -> None:
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
            self.log = structlog.get_logger("bot.tracking").bind(campaign=campaign.name)
            config = campaign.reshare
            self.rules = Rules.from_policy(config.policy) if config else None
            old = {(f.network, f.key): f for f in getattr(self, "feeds", [])}
            self.feeds = build_feeds(campaign, self.adapters, self.log)
            for feed in self.feeds:  # keep poll times and stream state across reloads
                prev = old.get((feed.network, feed.key))
                if prev:
                    feed.next_at, feed.stream = prev.next_at, prev.stream
            self.resharer = Resharer(self.ledger, self.adapters, self.clock, self.rules, self.log) if self.rules else None

    # ---- the loop ----

    def run(self, stop: threading.Event) -> None:
        """Track until ``stop`` is set; never raises (a failing poll is logged and retried next time)."""
        self._stop = stop
        self.log.info("tracking_started", feeds=[f"{f.network}:{f.key}" for f in self.feeds], owner=self.owner)
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                    if self._leader:
                        for feed in self.feeds:
                            self._ensure_stream(feed, self.clock.now())
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
            times += list(self.resharer.next_due.values())
        return min(times)

    def _wait(self, stop: threading.Event, until: datetime) -> None:
        while not stop.is_set() and not self._wake.is_set():
            remaining = (until - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            if isinstance(self.clock, FakeClock):
                self._wake.wait(0.05)  # a test moves this clock; do not run it forward from here
            else:
                # Real seconds (a demo clock runs `speed` times faster); short chunks so stop and streams wake us.
                self._wake.wait(min(remaining / getattr(self.clock, "speed", 1.0), 0.25))

    def poll_once(self) -> dict[str, int]:
        """Poll every feed that is due, decide what it found, reshare what may go now; counts by outcome."""
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
            # A stream's lane serves its posts as they come; the loop only takes what arrived while no
            # lane ran (a stream that just dropped, or poll_once called without run).
            for feed in self.feeds:
                if not self._lane_running(feed):
                    self._take_stream(feed, now, outcome)
            for feed in self.feeds:
                if feed.stream.poll_now or feed.next_at is None or feed.next_at <= now:
                    self._poll(feed, now, outcome)
            for account in sorted({a for f in self.feeds for a in f.accounts}):
                outcome[self._drain(account)] += 1
            outcome.pop(None, None)
            return dict(outcome)

    def _serve_streamed(self, feed: Feed, got: list[Mention]) -> None:
        """A lane's batch: decide the streamed posts and reshare what may go now, as the loop would."""
        with self._config_lock:
            now = self.clock.now()
            current = next((f for f in self.feeds if (f.network, f.key) == (feed.network, feed.key)), None)
            if self.rules is None or current is None or self._stop.is_set():
                return  # tracking of these tags was removed by a reload, or we are stopping
            if not (self._leader and self._lease_until is not None and now < self._lease_until):
                # Not ours to act on: the leader's poll finds these, since streamed posts never move the cursor.
                self.log.debug("stream_posts_left", platform=feed.platform, count=len(got))
                return
            outcome: Counter[str] = Counter()
            self._decide(current, got, now, outcome, None, None)
            for account in sorted(current.accounts):
                if self._stop.is_set():
                    return  # what was decided stays pending in the ledger for the next start
                self._drain(account)

    @contextmanager
    def _holding(self, accounts: Iterable[str]) -> Iterator[None]:
        """Hold these accounts' locks (in one order, so a lane and the loop cannot deadlock)."""
        with self._account_locks_guard:
            locks = [self._account_locks.setdefault(a, threading.Lock()) for a in sorted(set(accounts))]
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

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
            level("mentions_fetch_failed", error=type(err).__name__, reason=str(err),
                  reads=self.reads[feed.network], next_poll_in=wait)
            return
        feed.failing = False
        log.info("mentions_fetched", found=len(page.mentions), reads=self.reads[feed.network])
        self._decide(feed, page.mentions, now, outcome, cursor_key, page.cursor or cursor)

    # ---- deciding ----

    def _context(self, feed: Feed, account: str, now: datetime, **counts: Any) -> Context:
        own_ids, own_handles = self._own(feed.platform)
        return Context(rules=self.rules, own_ids=own_ids, own_handles=own_handles,
                       instance=instance_of(self.campaign.accounts[feed.reader]), now=now, **counts)

    def _own(self, platform: str) -> tuple[frozenset[str], tuple[str, ...]]:
        ids, handles = set(), []
        for account in self.campaign.accounts.values():
            if account.platform != platform:
                continue
            who = self._identity(account.id)
            handle = account.handle or (who.handle if who else None)
            if who:
                ids.add(who.id)
            if handle:
                domain = instance_of(account)
                bare = handle.lstrip("@")
                handles.append(f"{bare}@{domain}" if domain and "@" not in bare else bare)
        return frozenset(ids), tuple(handles)

    def _identity(self, account_id: str) -> Any:
        if account_id not in self._identities and account_id in self.adapters and account_id not in self._whoami_failed:
            try:
                self._identities[account_id] = self.adapters[account_id].whoami()
            except Exception as exc:  # noqa: BLE001  (handles in accounts.yaml still identify it)
                self._whoami_failed.add(account_id)
                self.log.warning("whoami_failed", account=account_id, error=type(exc).__name__)
                return None
        return self._identities.get(account_id)

    def _decide(self, feed: Feed, mentions: list[Mention], now: datetime, outcome: Counter[str],
                cursor_key: tuple[str, str, str] | None, cursor: str | None) -> None:
        unique = list({m.remote_id: m for m in mentions}.values())
        base = self._context(feed, feed.reader, now)  # may ask the platform who we are: before the locks
        with self._holding(feed.accounts):
            # Counting the caps and recording against them is one step per account: a lane and the
            # loop deciding for one account at once could otherwise both take its last slot.
            self._decide_locked(feed, unique, base, now, outcome, cursor_key, cursor)

    def _decide_locked(self, feed: Feed, unique: list[Mention], base: Context, now: datetime,
                       outcome: Counter[str], cursor_key: tuple[str, str, str] | None, cursor: str | None) -> None:
        rules = self.rules
        across = rules.across_accounts
        scopes = list(feed.accounts) if across else ["*"]
        known = self.ledger.decided(feed.network, [m.remote_id for m in unique], scopes)
        items: list[NewDecision] = []
        candidates = []
        for m in unique:
            fresh = [s for s in scopes if (m.remote_id, s) not in known]
            if not fresh:
                continue
            verdict = judge(m, base)
            if verdict.action == "skip":
                for scope in fresh:
                    items.append(self._item(feed, scope, feed.reader if scope == "*" else scope, m, verdict))
            else:
                candidates.append((m, fresh))
        acted = self.resharer.acted_statuses
        state: dict[str, list[Any]] = {}
        authors: dict[tuple[str, str], datetime | None] = {}

        def ctx_for(account: str, m: Mention) -> Context:
            if account not in state:
                hour, day, _ = self.ledger.counts(account, now, acted)
                state[account] = [hour, day]
            if (account, m.author_id) not in authors:
                authors[(account, m.author_id)] = self.ledger.author_last(
                    account, m.author_id, ["pending", "resharing", "queued", *acted])
            hour, day = state[account]
            return self._context(feed, account, now, last_hour=hour, last_day=day,
                                 author_last=authors[(account, m.author_id)])

        for m, fresh in fair_order(candidates):
            for scope in fresh:
                tries = [scope] if across else list(feed.accounts)
                verdicts = [(a, decide(m, ctx_for(a, m))) for a in tries]
                account, verdict = next(((a, v) for a, v in verdicts if v.action != "skip"), verdicts[0])
                items.append(self._item(feed, scope, account, m, verdict))
                if verdict.action == "allow":  # scheduled: counts against the caps from now on
                    state[account][0] += 1
                    state[account][1] += 1
                if verdict.action != "skip":
                    authors[(account, m.author_id)] = now
        ids = self.ledger.record(now, items, cursor_key, cursor)
        for item, row_id in zip(items, ids):
            if row_id is not None:
                outcome[item.status] += 1
                self._log_decision(item, row_id)

    def _item(self, feed: Feed, scope: str, account: str, m: Mention, verdict: Any) -> NewDecision:
        status = {"skip": "skipped", "review": "queued", "allow": "pending"}[verdict.action]
        return NewDecision(feed.network, feed.platform, scope, account, m, verdict.action, status,
                           verdict.reason, verdict.detail)

    def _log_decision(self, item: NewDecision, row_id: int) -> None:
        event = {"skipped": "reshare_skipped", "queued": "reshare_queued", "pending": "reshare_scheduled"}[item.status]
        m = item.mention
        self.log.info(event, platform=item.platform, account=item.account, remote_id=m.remote_id,
                      author=m.author_handle, reason=item.reason, detail=item.detail, url=m.url, decision_id=row_id)


def tracked_adapters(campaign: Any, get_adapter: Callable[[Any], Platform]) -> dict[str, Platform]:
    """Adapters of every tracking account; one whose secrets are missing is logged and left out."""
    log = structlog.get_logger("bot.tracking").bind(campaign=campaign.name)
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


def start_tracking(campaign: Any, engine: Engine, get_adapter: Callable[[Any], Platform], clock: Clock,
                   owner: str, stop: threading.Event) -> tuple[Tracker, threading.Thread] | None:
    """The worker's entry point: a Tracker running in a daemon thread, or None when nothing is tracked."""
    if campaign.reshare is None or not campaign.reshare.track:
        return None
    tracker = Tracker(campaign, engine, tracked_adapters(campaign, get_adapter), clock, owner)
    thread = threading.Thread(target=tracker.run, args=(stop,), name="tracking", daemon=True)
    thread.start()
    return tracker, thread
