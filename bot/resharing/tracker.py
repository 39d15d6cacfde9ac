"""Hashtag tracking: read tagged posts per platform, decide each once, reshare the allowed ones slowly.

The worker starts one ``Tracker`` per campaign and calls ``run(stop)`` in a thread;
tests call ``poll_once()`` with a clock they move. Only the holder of the ledger's tracker
lease reads and reshares, so overlapping workers never double up. One module, top to bottom:
configuration, the run loop and its polls, deciding (each post judged once, caps counted and
recorded under the account's lock), and streaming (where a platform pushes tagged posts, each
stream has a lane: a thread that decides and reshares what it delivers, so a streamed post never
waits for the loop's polls of other networks). The loop and the lanes decide and reshare for an
account only under that account's lock, so caps, spacing and the one-reshare-per-post rule hold
across threads. When a stream fails, or the instance has none, the tracker polls at once and
tries streaming again later.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Engine

from bot.core.clock import Clock
from bot.core.errors import PermanentError, RetryableError
from bot.core.values import Mention
from bot.ledger.reshares import NewDecision, ReshareLedger, mention_from_json
from bot.platforms.base import EARLIER_VERSIONS, Platform, PostChange
from bot.resharing.feeds import DEFAULT_INTERVALS, Feed, build_feeds, fair_order, instance_of, network_of
from bot.resharing.policy import Context, Rules, decide, judge
from bot.resharing.resharer import Resharer, mark_withdrawing

__all__ = ["DEFAULT_INTERVALS", "Tracker", "network_of", "start_tracking", "tracked_adapters"]

STREAM_SAFETY_FACTOR = 10  # while a stream is up, poll this many times less often, to catch what it dropped
LEASE_TTL = timedelta(minutes=3)
WAKE_AT_LEAST = timedelta(seconds=30)
PERMANENT_PAUSE = timedelta(hours=1)  # between polls of a feed whose reads are refused (auth, ...)
MIN_REAL_PAUSE = 0.1  # real seconds between two passes of the run loop
LANE_JOIN = 20.0  # real seconds a stopping tracker waits for reshares in flight on its lanes

STREAM_RETRY = timedelta(minutes=5)
LANE_IDLE = 0.25  # real seconds a lane waits for a post before it looks at stop again
LANE_MIN_IDLE = 0.01  # so a due time the lane cannot act on (no lease) never spins it hot


class Tracker:
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
            previous: Rules | None = getattr(self, "rules", None)
            previous_never = previous.never_from if previous is not None else ()
            self.campaign = campaign
            self.log = structlog.get_logger("bot.resharing.tracker").bind(campaign=campaign.name)
            config = campaign.reshare
            self.rules = Rules.from_policy(config.policy) if config else None
            old = {(f.network, f.key): f for f in getattr(self, "feeds", [])}
            self.feeds = build_feeds(campaign, self.adapters, self.log)
            for feed in self.feeds:  # what a read costs is the reader's adapter's business (X bills per post)
                self.adapters[feed.reader].configure_search(
                    daily_reads=feed.daily_reads, max_interval=feed.max_interval, interval=feed.interval
                )
            for feed in self.feeds:  # keep poll times and stream state across reloads
                prev = old.get((feed.network, feed.key))
                if prev:
                    feed.next_at, feed.stream = prev.next_at, prev.stream
            self.resharer = (
                Resharer(self.ledger, self.adapters, self.clock, self.rules, self.log) if self.rules else None
            )
            if self.rules is not None and self.rules.never_from and self.rules.never_from != previous_never:
                self._withdraw_never_from()

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
            assert self.resharer is not None  # built with the rules
            self.resharer.recover_stuck(now, LEASE_TTL)
            outcome["withdrawn"] += self.resharer.withdraw_due(now)
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
            return dict(outcome)

    def _serve_streamed(self, feed: Feed, got: list[Mention | PostChange]) -> None:
        """A lane's batch: decide the streamed posts and reshare what may go now, as the loop would."""
        with self._config_lock:
            now = self.clock.now()
            current = self._current(feed)
            if self.rules is None or self.resharer is None or current is None or self._stop.is_set():
                return  # tracking of these tags was removed by a reload, or we are stopping
            if not (self._leader and self._lease_until is not None and now < self._lease_until):
                # Not ours to act on: the leader's poll finds these, since streamed posts never move the cursor.
                self.log.debug("stream_posts_left", platform=feed.platform, count=len(got))
                for account in current.accounts:
                    self.resharer.next_due.pop(account, None)
                return
            outcome: Counter[str] = Counter()
            posts = self._changes_first(current, got, now)
            if posts:
                self._decide(current, posts, now, outcome, None, None)
            for account in sorted(current.accounts):
                if self._stop.is_set():
                    return  # what was decided stays pending in the ledger for the next start
                self._drain(account)

    def _current(self, feed: Feed) -> Feed | None:
        """The feed now configured for ``feed``'s tags (a reload replaces Feed objects; a stream keeps its own)."""
        return next((f for f in self.feeds if (f.network, f.key) == (feed.network, feed.key)), None)

    def _drain_all(self, accounts: set[str], now: datetime, outcome: Counter[str]) -> None:
        assert self.resharer is not None  # only called while tracking is configured
        laned = self._laned_accounts()
        for account in sorted(accounts):
            if account in laned:
                self.resharer.next_due[account] = min(self.resharer.next_due.get(account, now), now)
            elif (drained := self._drain(account)) is not None:
                outcome[drained] += 1

    def _drain(self, account: str) -> str | None:
        # Held across the reshare call: spacing and caps count only finished reshares.
        with self._holding([account]):
            return self.resharer.drain(account) if self.resharer else None

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
        posts = self._new_versions_as_edits(feed, page.mentions, now)
        self._decide(feed, posts, now, outcome, cursor_key, page.cursor or cursor)

    # ---- deciding: judge each post once, caps counted and recorded under the account's lock ----

    _account_locks: dict[str, threading.Lock]
    _account_locks_guard: threading.Lock
    _identities: dict[str, Any]
    _whoami_failed: set[str]

    @contextmanager
    def _holding(self, accounts: Iterable[str]) -> Iterator[None]:
        """Hold these accounts' locks (in one order, so a lane and the loop cannot deadlock)."""
        with self._account_locks_guard:
            locks = [self._account_locks.setdefault(a, threading.Lock()) for a in sorted(set(accounts))]
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

    def _context(self, feed: Feed, account: str, now: datetime, **counts: Any) -> Context:
        own_ids, own_handles = self._own(feed.platform)
        assert self.rules is not None  # only called while tracking is configured
        return Context(
            rules=self.rules,
            own_ids=own_ids,
            own_handles=own_handles,
            instance=instance_of(self.campaign.accounts[feed.reader]),
            now=now,
            platform=feed.platform,
            **counts,
        )

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

    def _decide(
        self,
        feed: Feed,
        mentions: list[Mention],
        now: datetime,
        outcome: Counter[str],
        cursor_key: tuple[str, str, str] | None,
        cursor: str | None,
    ) -> None:
        unique = list({m.remote_id: m for m in mentions}.values())
        base = self._context(feed, feed.reader, now)  # may ask the platform who we are: before the locks
        with self._holding(feed.accounts):
            # Counting the caps and recording against them is one step per account: a lane and the
            # loop deciding for one account at once could otherwise both take its last slot.
            self._decide_locked(feed, unique, base, now, outcome, cursor_key, cursor)

    def _decide_locked(
        self,
        feed: Feed,
        unique: list[Mention],
        base: Context,
        now: datetime,
        outcome: Counter[str],
        cursor_key: tuple[str, str, str] | None,
        cursor: str | None,
    ) -> None:
        rules, resharer = self.rules, self.resharer
        assert rules is not None and resharer is not None  # only called while tracking is configured
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
        acted = resharer.acted_statuses
        state: dict[str, list[Any]] = {}
        # Per (account, author): [last row, rows in 24 hours, reshared before by the campaign].
        authors: dict[tuple[str, str], list[Any]] = {}
        counted, reshared = ["pending", "resharing", "queued", *acted], ["pending", "resharing", *acted]

        def ctx_for(account: str, m: Mention) -> Context:
            if account not in state:
                hour, day, _ = self.ledger.counts(account, now, acted)
                state[account] = [hour, day]
            if (account, m.author_id) not in authors:
                got = self.ledger.author_record(feed.network, account, m.author_id, now, counted, reshared)
                authors[(account, m.author_id)] = [got.last, got.day, got.reshared_before]
            hour, day = state[account]
            last, author_day, known = authors[(account, m.author_id)]
            return self._context(
                feed,
                account,
                now,
                last_hour=hour,
                last_day=day,
                author_last=last,
                author_day=author_day,
                author_known=known,
            )

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
                    record = authors[(account, m.author_id)]
                    record[0], record[1] = now, record[1] + 1
                    if verdict.action == "allow":
                        for key, other in authors.items():  # reshared by the campaign now, whichever account
                            if key[1] == m.author_id:
                                other[2] = True
        ids = self.ledger.record(now, items, cursor_key, cursor)
        for item, row_id in zip(items, ids):
            if row_id is not None:
                outcome[item.status] += 1
                self._log_decision(item, row_id)

    def _item(self, feed: Feed, scope: str, account: str, m: Mention, verdict: Any) -> NewDecision:
        status = {"skip": "skipped", "review": "queued", "allow": "pending"}[verdict.action]
        return NewDecision(
            feed.network, feed.platform, scope, account, m, verdict.action, status, verdict.reason, verdict.detail
        )

    def _log_decision(self, item: NewDecision, row_id: int) -> None:
        event = {"skipped": "reshare_skipped", "queued": "reshare_queued", "pending": "reshare_scheduled"}[item.status]
        m = item.mention
        self.log.info(
            event,
            platform=item.platform,
            account=item.account,
            remote_id=m.remote_id,
            author=m.author_handle,
            reason=item.reason,
            detail=item.detail,
            url=m.url,
            decision_id=row_id,
        )

    # ---- streaming: where a platform pushes tagged posts (Mastodon), a lane per stream ----

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
        warm = getattr(adapter, "warm_stream", None)
        if warm is not None:
            try:  # here, in the loop's thread: two threads importing one client library at once can deadlock
                warm()
            except Exception as exc:  # noqa: BLE001  (the stream then fails and falls back to polling)
                self.log.warning("stream_warm_up_failed", platform=feed.platform, error=f"{type(exc).__name__}: {exc}")
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
        if "on_change" in params:
            options["on_change"] = state.inbox.put
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
            got: list[Mention | PostChange]
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
        ahead = (min(times) - self.clock.now()).total_seconds()
        # A clock that real time does not move (a test's) gets there only when told: look again at the lane's pace.
        seconds = self.clock.wall_seconds(ahead) or (LANE_IDLE if ahead > 0 else 0.0)
        return min(max(seconds, LANE_MIN_IDLE), LANE_IDLE)

    def _laned_accounts(self) -> set[str]:
        return {a for f in self.feeds if self._lane_running(f) for a in f.accounts}

    def _lane_running(self, feed: Feed) -> bool:
        return feed.stream.on and not self._stop.is_set()

    def _take_stream(self, feed: Feed, now: datetime, outcome: Counter[str]) -> None:
        """The loop's share: posts a stream delivered while no lane was there to take them."""
        posts = self._changes_first(feed, _take_all(feed.stream.inbox), now)
        if posts:
            # Streamed posts do not move the cursor: the slower safety poll does, and skips what is decided.
            self._decide(feed, posts, now, outcome, None, None)

    def _join_lanes(self, timeout: float) -> None:
        """Let a reshare in flight on a lane finish and be recorded before the tracker lets go of its lease."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.join(max(deadline - time.monotonic(), 0.0))

    # ---- undo: reshares the campaign no longer stands behind ----

    def _changes_first(self, feed: Feed, got: list[Mention | PostChange], now: datetime) -> list[Mention]:
        """Act on the edits and deletions a stream told of; the new posts, for deciding."""
        posts = [m for m in got if isinstance(m, Mention)]
        for change in (c for c in got if isinstance(c, PostChange)):
            # A post deleted (or spoiled by an edit) before its reshare is not decided again when a poll meets it.
            posts = [m for m in posts if m.remote_id != change.remote_id]
            self._on_change(feed, change, now)
        return posts

    def _new_versions_as_edits(self, feed: Feed, found: list[Mention], now: datetime) -> list[Mention]:
        """Where an edit is a new post (X: a new id listing the earlier ones), a poll that meets a new version of
        a post already decided acts on it as on a stream's edit of that post; the rest, for deciding.

        The new version is not decided again: its earlier version's decision stands unless the edit spoils it
        (then the reshare is withdrawn), so an edit can take a reshare back but never win one.
        """
        earlier = {m.remote_id: m.ref[EARLIER_VERSIONS].split(",") for m in found if m.ref.get(EARLIER_VERSIONS)}
        if not earlier or self.rules is None:
            return found
        scopes = list(feed.accounts) if self.rules.across_accounts else ["*"]
        decided = {
            rid for rid, _ in self.ledger.decided(feed.network, [v for vs in earlier.values() for v in vs], scopes)
        }
        replaced = set()
        for m in found:
            for version in (v for v in earlier.get(m.remote_id, []) if v in decided):
                self._on_change(feed, PostChange("edited", version, m), now)
                replaced.add(m.remote_id)
        return [m for m in found if m.remote_id not in replaced]

    def _on_change(self, feed: Feed, change: PostChange, now: datetime) -> None:
        if change.kind == "deleted":
            self._take_back(feed.network, change.remote_id, "deleted", "the post was deleted")
            return
        if change.mention is None:
            return
        verdict = judge(change.mention, self._context(feed, feed.reader, now))
        if verdict.action == "skip" and verdict.reason != "own":
            self._take_back(feed.network, change.remote_id, "edited", f"after an edit: {verdict.detail}")

    def _take_back(self, network: str, remote_id: str, reason: str, detail: str) -> None:
        """Withdraw every standing reshare of this post, and skip the ones not made yet."""
        assert self.resharer is not None  # only called while tracking is configured
        for row in self.ledger.waiting(network, remote_id):
            if self.ledger.transition(row.id, ["pending", "queued"], status="skipped", reason=reason, detail=detail):
                self.log.info(
                    "reshare_skipped", platform=row.platform, account=row.account, remote_id=remote_id, reason=reason
                )
        for row in self.ledger.standing(network=network, remote_id=remote_id):
            if row.status == "done":
                self.resharer.withdraw(row, reason, detail)

    def _withdraw_never_from(self) -> None:
        """After a reload that changed never_from: mark the listed authors' standing reshares for withdrawal.

        Only recorded here (reload must stay quick); the loop's next pass takes them back on the platforms.
        """
        assert self.rules is not None  # only called while tracking is configured
        now = self.clock.now()
        for row in self.ledger.standing():
            account = self.campaign.accounts.get(row.account)
            ctx = Context(rules=self.rules, instance=instance_of(account) if account is not None else None, now=now)
            verdict = judge(mention_from_json(row.mention), ctx)
            if verdict.reason == "never_from" and row.status == "done":
                if mark_withdrawing(self.ledger, row, "never_from", verdict.detail, not_before=now):
                    self.log.info("reshare_withdrawal_planned", account=row.account, url=row.url, reason="never_from")
        self._wake.set()


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


def _take_all(inbox: queue.Queue[Mention | PostChange]) -> list[Mention | PostChange]:
    got: list[Mention | PostChange] = []
    while True:
        try:
            got.append(inbox.get_nowait())
        except queue.Empty:
            return got
