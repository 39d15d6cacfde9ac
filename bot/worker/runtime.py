"""The worker's engine: slot jobs, fan-out, recovery from the ledger, reload, tracking, warm stop.

Slots become jobs of a clock-driven scheduler (bot.worker.jobs; APScheduler triggers give their times);
each firing fans out to its accounts on a thread pool, one task per account, through ``Publisher.fire``
(claim, publish, record).
``bot run`` (bot.cli.run) drives it; tests drive it directly on a clock they move by hand.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from bot.core.clock import Clock, clock_rate
from bot.core.errors import ConfigError
from bot.observability.progress import LogProgress
from bot.publishing import faults, staging
from bot.worker import jobs as jobs_mod
from bot.worker import recovery
from bot.worker.jobs import ClockScheduler, Job, SlotJob
from bot.worker.ops import Operations
from bot.worker.reload import Watcher

log = structlog.get_logger()


class Worker:
    """Jobs, fan-out, recovery, reload and warm stop; the CLI and tests drive it."""

    def __init__(
        self,
        root: Path,
        *,
        clock: Clock,
        database_url: str,
        threads: int = 256,
        heartbeat: float = 60.0,
        sweep: float = 60.0,
        lease: float = 600.0,
        owner: str | None = None,
        on_progress: Callable[[dict[str, Any], int, int], None] | None = None,
        catch_up_spacing: float | None = None,
        catch_up_limit: int | None = None,
        ledger_check: float = 5.0,
    ) -> None:
        from bot.campaign.isolated import load_isolated as load
        from bot.ledger.db import open_engine
        from bot.ledger.publications import UNRECORDED, Ledger, Unrecorded
        from bot.publishing.publisher import AdapterPool, Publisher

        self.root = root
        self.clock = clock
        rate = clock_rate(clock)  # clock seconds per wall second: 1 in production, the speed of a demo clock
        # At most one heartbeat per wall second: a demo clock running 10,000x would otherwise flood the log.
        self.heartbeat_every = max(heartbeat, rate)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.campaign = load(root)  # ConfigError here: refuse to start
        self._check_secrets(self.campaign)
        self.ledger = Ledger(open_engine(database_url, migrate_in_child=True), clock)
        (root / "state").mkdir(parents=True, exist_ok=True)
        self.ledger.unrecorded = Unrecorded(root / "state" / UNRECORDED)
        self.catch_up_spacing = recovery.spacing_seconds() if catch_up_spacing is None else catch_up_spacing
        self.catch_up_limit = recovery.limit_per_platform() if catch_up_limit is None else catch_up_limit
        # Like the heartbeat, at most one look per wall second under a fast demo clock.
        self.ledger_check_every = max(ledger_check, rate)
        self.exit_code = 0  # non-zero once the worker stopped because it could not go on (the ledger was lost)
        self._rejected: set[str] = set()  # files the last refused reload named: slots keep their last good version
        self.stopping = threading.Event()
        # A lease guards wall-time work (an upload), so under a compressed clock it spans more clock time.
        lease_clock = timedelta(seconds=lease * rate)
        # Look for dead workers' claims a few times per lease: sooner is pointless, later delays their slots.
        self.sweep_every = max(sweep, lease_clock.total_seconds() / 4)
        state_dir = root / "state"
        from bot.mediahost import from_settings

        # One media host for every adapter (its boto3 client and hash cache are shared); secrets checked above.
        media_host = from_settings(self.campaign.media_host)
        from bot.ledger.budgets import RateBudgets

        # Rate limits any worker of this ledger learns (429s, headers, app-wide caps) stop all of them.
        self.rates = RateBudgets(self.ledger.engine)
        adapters = AdapterPool(
            faults.adapter_builder(state_dir, media_host), state_dir=state_dir, media_host=media_host, rates=self.rates
        )
        # Upload progress: bars when bot run is on a terminal, else upload_progressed log lines.
        self.publisher = Publisher(
            self.campaign,
            self.ledger,
            adapters,
            clock,
            self.owner,
            lease=lease_clock,
            stop=self.stopping,
            on_progress=on_progress or LogProgress(),
        )
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="publish")
        # Like the heartbeat, at most one look per wall second under a fast demo clock.
        self.stager = staging.Stager(
            self.publisher, clock, lambda lane: self._track(("stage", id(lane)), lane), every=max(staging.EVERY, rate)
        )
        self.scheduler = ClockScheduler(clock, self._dispatch)
        self.slots: dict[str, SlotJob] = {}
        self._inflight: dict[object, tuple[Any, ...]] = {}  # a token per task running or queued -> its key
        self._waiting = 0  # threads waiting on ``_idle`` for tasks to end (``_room``, ``wait_idle``)
        self._idle = threading.Condition()
        self._counts_lock = threading.Lock()
        self._counts = {"published": 0, "skipped": 0, "failed": 0, "retries": 0}
        self._reload_lock = threading.Lock()
        self.watcher: Watcher | None = None
        self._prepared: dict[str, SlotJob] | None = None  # slot jobs built by warm_up for start
        self.tracker: Any = None
        self._tracking: threading.Thread | None = None
        from bot.ledger.workers import Workers

        self.workers = Workers(self.ledger.engine)  # heartbeats: a dead worker's claims are taken over in seconds
        from bot.ledger.shares import Shares

        # PostgreSQL: a slot's accounts are offered as pending rows and taken in batches by whichever worker
        # has free threads (bot.ledger.shares); SQLite (one worker): each account is claimed as before.
        shares = Shares(self.ledger.engine)
        self.fanout = (
            jobs_mod.Fanout(
                shares,
                clock,
                self.owner,
                lease_clock,
                self.submit_many,
                self._room,
                self.stopping,
                prepare=self.prepare,
            )
            if shares.enabled
            else None
        )
        self._liveness: threading.Thread | None = None
        self.ops = Operations(self)  # alerts, metrics, health (BOT_ALERT_*, BOT_HTTP_*)

    # ---- start-up ----

    def start(self) -> None:
        """Schedule the campaign's slots, heartbeat and sweep, and hand over what the ledger says is due."""
        self.scheduler.start()
        prepared, self._prepared = self._prepared, None
        self._install(prepared or jobs_mod.slot_jobs(self.campaign), removed=[])
        self.scheduler.add_every(self._heartbeat, self.heartbeat_every, "heartbeat")
        self.scheduler.add_every(lambda at: self.resume_from_ledger(), self.sweep_every, "sweep")
        self.scheduler.add_every(lambda at: self.stage_upcoming(), self.stager.every, "stage")
        if self.ledger.guard is not None:
            self.scheduler.add_every(lambda at: self.check_ledger(), self.ledger_check_every, "ledger")
        self.scheduler.add_every(lambda at: self.ops.check(), max(60.0, clock_rate(self.clock)), "ops")
        self.ops.started()
        from bot.ledger.db import open_connections

        # A slot's first publications would otherwise each wait for a new PostgreSQL connection.
        open_connections(self.ledger.engine, self.threads)
        # Dead workers' claims first: reconciling them before new posts keeps the platform look-up short.
        self.beat()
        self._liveness = threading.Thread(target=self._beat_until_stopped, name="liveness", daemon=True)
        self._liveness.start()
        self.resume_from_ledger()
        self.recover_missed()
        self.stage_upcoming()
        now = self.clock.now()
        log.info(
            "worker_started",
            campaign=self.campaign.name,
            owner=self.owner,
            jobs=len(self.slots),
            now=now.isoformat(),
            next_slot_at=_iso(self.scheduler.next_run_at(jobs_mod.SLOT_PREFIX)),
        )

    def recover_missed(self) -> None:
        """Hand over the slots that fell due while no worker ran, spaced per account and limited per platform.

        Those over a platform's limit are recorded ``missed`` (the Publisher does, with no grace);
        the others go out ``catch_up_spacing`` apart per account, and the Publisher skips any past its grace.
        """
        now = self.clock.now()
        plan = recovery.plan_catch_up(
            self.campaign, self.ledger, now, spacing=self.catch_up_spacing, limit=self.catch_up_limit
        )
        if not plan.runs and not plan.dropped:
            return
        log.info("catch_up_planned", since=plan.since.isoformat(), **plan.counts(self.campaign))
        for occurrence, account in plan.dropped:
            self.submit(dataclasses.replace(occurrence, grace=timedelta(0)), account)
        self.prepare([account for when, _, account in plan.runs if when <= now])  # nothing was staged for them
        for when, occurrence, account in plan.runs:
            if when <= now:
                self.submit(occurrence, account)
            else:
                job_id = f"catch-up:{occurrence.target}@{occurrence.at.isoformat()}:{account}"
                self.scheduler.add_once(self._retry, when, job_id, args=(occurrence, account))

    def check_ledger(self) -> bool:
        """Stop publishing, for good, once the SQLite ledger file is deleted or replaced; False then."""
        from bot.ledger.db import LedgerUnavailable

        try:
            if self.ledger.guard is not None:
                self.ledger.guard.check()
        except LedgerUnavailable as err:
            self._ledger_lost(err)
            return False
        return True

    def _ledger_lost(self, err: Exception) -> None:
        from bot.ledger.db import lost_marker

        with self._idle:
            first, self.exit_code = self.exit_code == 0, LEDGER_LOST
        if not first:
            return
        log.error("ledger_lost", campaign=self.campaign.name, error=str(err))
        guard = self.ledger.guard
        if guard is not None:
            # The next start must not make a new, empty ledger and publish the grace window again.
            try:
                lost_marker(guard.path).write_text(f"{self.clock.now().isoformat()} {err}\n", encoding="utf-8")
            except OSError as exc:
                log.error("ledger_lost_marker_failed", error=f"{type(exc).__name__}: {exc}")
        self.request_stop("ledger_lost")

    def beat(self) -> int:
        """Say this worker is alive; release what workers that stopped beating held. Claims released."""
        wall = datetime.now(UTC)  # liveness is real time, whatever clock the campaign runs on
        self.workers.beat(self.owner, wall)
        dead = [owner for owner in self.workers.dead(wall) if owner != self.owner]
        if not dead:
            return 0
        released = self.workers.release(dead, self.clock.now())
        log.warning("worker_lost", owners=dead, **released)
        return released["claims"]

    def _beat_until_stopped(self) -> None:
        """The liveness thread: beats every ``BEAT_EVERY`` wall seconds and does nothing else that could hold it.

        Taking over what it finds (``resume_from_ledger``, ``resume_shares``) is the ``takeover`` thread's:
        a long look in the ledger must not delay this worker's next beat and get it declared dead.
        """
        takeover = threading.Event()
        lost = threading.Event()
        thread = threading.Thread(target=self._take_over, args=(takeover, lost), name="takeover", daemon=True)
        thread.start()
        next_at = time.monotonic()
        while True:
            next_at += BEAT_EVERY
            if self.stopping.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at = max(next_at, time.monotonic() - BEAT_EVERY)  # behind (a suspended host): no burst of beats
            try:
                if self.beat():
                    lost.set()
                takeover.set()
            except Exception as exc:  # noqa: BLE001  (a missed beat is retried; a lost ledger is check_ledger's)
                log.warning("worker_beat_failed", error=f"{type(exc).__name__}: {exc}")
        takeover.set()

    def _take_over(self, takeover: threading.Event, lost: threading.Event) -> None:
        """After each beat: a dead worker's publications (``lost``) or rows a stopped worker handed back."""
        while takeover.wait() and not self.stopping.is_set():
            takeover.clear()
            try:
                if lost.is_set():
                    lost.clear()
                    self.resume_from_ledger()  # take the dead worker's publications over now
                else:
                    self.resume_shares()  # rows a stopped worker handed back: taken within a beat
            except Exception as exc:  # noqa: BLE001  (tried again after the next beat)
                log.warning("worker_takeover_failed", error=f"{type(exc).__name__}: {exc}")

    def resume_from_ledger(self) -> None:
        """Take over retries whose time has come, claims whose worker died and slots' rows left pending."""
        recovery.resume(self.campaign, self.ledger, self._in_flight_keys(), self.submit)
        self.resume_shares()

    def resume_shares(self) -> int:
        """Feed this worker from slots whose ``pending`` rows nobody holds (a dead or stopped worker's); slots fed."""
        if self.fanout is None:
            return 0
        return recovery.resume_shares(self.campaign, self.fanout, self.clock.now())

    def _room(self, wait: float, want: int = 1) -> int:
        """Tasks the pool can take now, after waiting up to ``wait`` wall seconds for ``want`` of them.

        Its threads, and as many again queued: the fan-out's feeding thread competes for the GIL with
        the pool's busy threads, and one of its takes lasted 0.2 to 0.5 s during a fan-out; tasks queued
        ahead keep the threads busy meanwhile (with none queued, most of a 256-thread pool sat idle).
        """
        capacity = 2 * self.threads
        if wait <= 0:
            return capacity - len(self._inflight)
        with self._idle:
            self._waiting += 1  # before looking: a task that ends after the look notifies us
            try:
                self._idle.wait_for(lambda: capacity - len(self._inflight) >= want, wait)
            finally:
                self._waiting -= 1
            return capacity - len(self._inflight)

    def stage_upcoming(self) -> int:
        """Upload the media of slots due in the next minutes now, so their posts go out on time (bot.publishing.staging)."""
        # One pass over the job store (a look per job would take its lock once per slot).
        next_runs = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        return self.stager.look(self.slots, next_runs.get)

    def start_tracking(self) -> None:
        """Hashtag tracking and resharing (bot.resharing.tracker) in its own thread, when config/reshare.yaml asks for it."""
        from bot.resharing.tracker import start_tracking

        started = start_tracking(
            self.campaign, self.ledger.engine, self.publisher.adapters.get, self.clock, self.owner, self.stopping
        )
        if started is not None:
            self.tracker, self._tracking = started

    def _adapters(self, campaign: Any) -> dict[str, Any]:
        built = {}
        for account in campaign.accounts.values():
            try:
                built[account.id] = self.publisher.adapters.get(account)
            except Exception as exc:  # noqa: BLE001  (the Publisher reports it, with its remedy, at the first slot)
                log.warning("adapter_unavailable", account=account.id, error=f"{type(exc).__name__}: {exc}")
        return built

    def warm_up(self) -> None:
        """Build every account's adapter now (client libraries load slowly), so the first slot is not late."""
        from bot.platforms import warm_up

        # Adapters import their client libraries on first use, not when built: import them here.
        platforms = {account.platform for account in self.campaign.accounts.values()}
        warm_up(platforms, {(p, post.text_for(p)) for post in self.campaign.posts.values() for p in platforms})
        for adapter in self._adapters(self.campaign).values():
            prepare = getattr(adapter, "prepare", None)  # builds its client now, where a platform offers it
            if prepare is not None:
                prepare()
        self.check_servers()
        self._start_threads(max((len(s.accounts) for sch in self.campaign.schedules for s in sch.slots), default=1))
        # The slots' triggers too (a quarter of a second for 1,000 slots): start() then only schedules them.
        self._prepared = jobs_mod.slot_jobs(self.campaign)

    def check_servers(self) -> None:
        """Log, before the first slot, the posts whose media their server will refuse (as `bot check --online`)."""
        if not any(account.platform == "mastodon" for account in self.campaign.accounts.values()):
            return  # only Mastodon servers are asked; without one, the Mastodon adapter stays out of memory
        from bot.platforms.mastodon.online import refused_media

        try:
            refused, unasked = refused_media(self.campaign, self.publisher.adapters.get)
        except Exception as exc:  # noqa: BLE001  (a look-up that failed must not stop the worker)
            log.warning("server_check_failed", error=f"{type(exc).__name__}: {exc}")
            return
        for line in refused:
            log.warning("media_refused_by_server", problem=line)
        for line in unasked:
            log.info("server_not_checked", problem=line)

    def _start_threads(self, count: int) -> None:
        """Start the pool's threads a fan-out will need (at most its size) now, not one per task at the slot."""
        count = min(count, self.threads)
        ready, go = threading.Barrier(count + 1, timeout=30), threading.Event()

        def park() -> None:
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                pass
            go.wait()

        # Each parked task holds its thread until all are parked, so the pool must start a new one for the next.
        for _ in range(count):
            self.pool.submit(park)
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            pass  # fewer threads now only means more started at the slot, as before
        finally:
            go.set()

    # ---- jobs ----

    def _install(self, new: dict[str, SlotJob], removed: list[str], added: list[str] | None = None) -> None:
        """Swap in ``new``; only ``added`` jobs (all when None) are scheduled anew, from now on.

        A job kept keeps its next run time: a reload at the instant a slot falls due never loses it.
        """

        def add() -> None:
            self.slots = new
            for job_id in new if added is None else added:
                job = new[job_id]
                self.scheduler.add_timed(self._fire_slot, job.trigger, job.id, args=(job.id,))

        self.scheduler.swap(removed, add)

    def _dispatch(self, job: Job, run_time: datetime) -> None:
        job.func(run_time, *job.args)

    def _fire_slot(self, run_time: datetime, job_id: str) -> None:
        slot = self.slots.get(job_id)
        if slot is None:
            return
        occurrence = jobs_mod.occurrence_at(slot, run_time)
        self._edit_too_late(occurrence)
        accounts = occurrence.accounts
        if self.fanout is not None and occurrence.post:
            known = self.campaign.accounts
            platforms = {a: (str(known[a].platform) if a in known else None) for a in accounts}
            self.fanout.fire(occurrence, platforms, self.campaign.name)
            return
        # Workers sharing a ledger start a fan-out at different accounts (an offset from the owner's
        # name), so they claim different rows instead of racing for the same key one by one.
        start = zlib.crc32(self.owner.encode()) % len(accounts) if accounts else 0
        ordered = [*accounts[start:], *accounts[:start]]
        for at in range(0, len(ordered), PREPARE_AHEAD):
            chunk = ordered[at : at + PREPARE_AHEAD]
            self.prepare(chunk)
            self.submit_many(occurrence, chunk)

    def prepare(self, accounts: list[str]) -> None:
        """Build the adapters of accounts about to be published to, before the first of them sends.

        An X adapter joins its process's shared uploads when it is built (bot.platforms.x.upload): built
        together, a fan-out's accounts share one upload of the post's media per 100 accounts; built one by
        one on the publishing threads, each of the first hundreds uploaded the file itself (four requests
        more per account). Building costs no request; a failure here is met again, and reported, at the send.
        """
        self.publisher.adapters.ready(self.campaign.accounts, accounts)

    def _edit_too_late(self, occurrence: Any) -> None:
        """Log ``post_edit_too_late`` when the slot's post file is being edited or was left broken."""
        edited = self._rejected | (self.watcher.settling.pending() if self.watcher is not None else set())
        if not edited:
            return
        campaign = self.campaign
        ids = [occurrence.post] if occurrence.post else list(campaign.queues.get(occurrence.queue, []))
        files = {self._relative(campaign.posts[i].where): i for i in ids if i in campaign.posts}
        late = sorted(set(files) & edited)
        if late:
            log.warning(
                "post_edit_too_late",
                campaign=campaign.name,
                schedule=occurrence.schedule,
                slot_at=occurrence.at.isoformat(),
                target=occurrence.target,
                posts=[files[f] for f in late],
                files=late,
                using="the last good version",
            )

    def _relative(self, where: str) -> str:
        try:
            return str(Path(where).relative_to(self.root))
        except ValueError:
            try:
                return str(Path(where).resolve().relative_to(self.root.resolve()))
            except ValueError:
                return where

    def submit(self, occurrence: Any, account: str) -> None:
        """Run one (slot, account) publication on the pool; a slow account never holds up the others."""
        self.submit_many(occurrence, [account])

    def submit_many(self, occurrence: Any, accounts: list[str]) -> None:
        """``submit`` for each of ``accounts`` (a fan-out's batch: the slot's key is worked out once)."""
        if self.stopping.is_set():
            return
        at = occurrence.at.astimezone(UTC).replace(microsecond=0)
        for account in accounts:
            self._track((at, occurrence.target, account), self._fire, occurrence, account)

    # The pool's bookkeeping takes no lock on its busy path: hundreds of threads end tasks during a
    # fan-out, and a lock shared by all of them (and by the thread submitting) became a convoy, each
    # hand-over waiting for the GIL, with most of the pool idle meanwhile. A dict's single operations
    # are atomic; the condition is taken only when someone waits for tasks to end (``_waiting``).

    def _track(self, key: tuple[Any, ...], task: Callable[..., None], *args: Any) -> None:
        """Run ``task`` on the pool, counted in flight under ``key`` until it ends."""
        token = object()
        self._inflight[token] = key  # before the task can run, so that its end always finds it
        try:
            self.pool.submit(self._tracked, token, task, args)
        except BaseException:
            self._ended(token)
            raise

    def _tracked(self, token: object, task: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            task(*args)
        finally:
            self._ended(token)

    def _ended(self, token: object) -> None:
        self._inflight.pop(token, None)
        if self._waiting:
            with self._idle:
                self._idle.notify_all()

    def _in_flight_keys(self) -> set[tuple[Any, ...]]:
        """(slot_at, target, account) of the tasks running or queued now."""
        return set(list(self._inflight.values()))  # list(): one atomic copy, while tasks end on other threads

    def _fire(self, occurrence: Any, account: str) -> None:
        from bot.publishing.results import Outcome

        context = dict(
            campaign=self.campaign.name,
            schedule=occurrence.schedule,
            slot=occurrence.slot,
            slot_at=occurrence.at.isoformat(),
            target=occurrence.target,
            account=account,
        )
        from bot.ledger.db import LedgerUnavailable

        try:
            result = self.publisher.fire(occurrence, account)
        except LedgerUnavailable as err:  # checked before each claim: nothing was sent
            self._count("failed")
            self._ledger_lost(err)
            return
        except Exception as exc:  # noqa: BLE001  (one failing publication never stops the worker)
            self._count("failed")
            log.error("job_failed", error=f"{type(exc).__name__}: {exc}", **context)
            return
        self.ops.publication(occurrence, account, result)
        outcome = result.outcome
        if outcome is Outcome.retry_later and result.retry_at is not None:
            self._count("retries")
            job_id = f"retry:{occurrence.target}@{occurrence.at.isoformat()}:{account}"
            self.scheduler.add_once(self._retry, result.retry_at, job_id, args=(occurrence, account))
        elif outcome.value in self._counts:
            self._count(outcome.value)

    def _count(self, what: str) -> None:
        # Its own lock, not ``_idle``: every task ends here, and a lock shared with the pool's
        # bookkeeping queued the pool's threads behind each other at the end of a fan-out.
        with self._counts_lock:
            self._counts[what] += 1

    def _retry(self, run_time: datetime, occurrence: Any, account: str) -> None:
        self.submit(occurrence, account)

    # ---- reload ----

    def reload_now(self, changed: list[str] | None = None) -> bool:
        """Load the whole campaign again; swap the jobs if it is valid, else keep the last good one."""
        from bot.campaign.isolated import load_isolated as load

        with self._reload_lock:
            try:
                campaign = load(self.root)
                self._check_secrets(campaign)
                new = jobs_mod.slot_jobs(campaign)
            except ConfigError as exc:
                log.error(
                    "schedule_rejected", campaign=self.campaign.name, changed=changed or [], problems=exc.problems
                )
                self._rejected = {m.group(1) for m in map(_LOCATED.match, exc.problems) if m} | set(changed or [])
                return False
            self._rejected = set()
            added, removed, changed_jobs = jobs_mod.diff(self.slots, new)
            _retire_dropped_secrets(self.campaign, campaign)
            self.campaign = campaign
            self._prepared = None  # built from the campaign before this one
            self.publisher.campaign = campaign
            if self.tracker is not None:
                from bot.resharing.tracker import tracked_adapters

                self.tracker.reload(campaign, tracked_adapters(campaign, self.publisher.adapters.get))
            # Slots added or moved by the edit start from now: they were never missed, so they have no past to publish.
            self._install(new, removed=[*removed, *changed_jobs], added=[*added, *changed_jobs])
            self.stage_upcoming()
            log.info(
                "schedule_reloaded",
                campaign=campaign.name,
                added=added,
                removed=removed,
                changed=changed_jobs,
                files=changed or [],
            )
        release_freed_memory()  # the old campaign and the new one's unpickling buffers are freed now
        return True

    # ---- running ----

    def run_pending(self, timeout: float | None = 60.0) -> None:
        """Dispatch what is due by the clock and wait until every publication it started has ended."""
        self.scheduler.run_due()
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        with self._idle:
            self._waiting += 1
            try:
                return self._idle.wait_for(lambda: not self._inflight, timeout)
            finally:
                self._waiting -= 1

    def serve(self, until: datetime | None = None) -> None:
        """The main loop: run due jobs until stopped or until clock time ``until``."""
        while not self.stopping.is_set():
            wait = self.scheduler.run_due()
            now = self.clock.now()
            if until is not None:
                if now >= until:
                    break
                left = (until - now).total_seconds()
                wait = left if wait is None else min(wait, left)
            self.scheduler.wait(wait)

    def request_stop(self, why: str) -> None:
        """Warm stop: no new publications; those in flight finish and are recorded."""
        if not self.stopping.is_set():
            log.info("worker_stopping", reason=why, in_flight=len(self._inflight))
            self.stopping.set()
            self.scheduler.wakeup()

    def close(self) -> None:
        self.stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self.scheduler.running:
            self.scheduler.shutdown()
        if self._tracking is not None:
            self._tracking.join(timeout=30)  # a reshare in flight is finished and recorded, like a publication
        # Tasks not started yet are dropped: no claim was made, so the next start finds them again.
        self.pool.shutdown(wait=True, cancel_futures=True)
        from bot.publishing import release

        if not release.drain(timeout=30):  # files left are only storage: the bucket's lifecycle rule removes them
            log.warning("media_release_unfinished")
        try:
            self.rates.flush()  # uses of app-wide caps not written yet count for the others
        except Exception as exc:  # noqa: BLE001  (a few uncounted uses: the cap's margin covers them)
            log.warning("rate_budget_flush_failed", error=f"{type(exc).__name__}: {exc}")
        if self._liveness is not None:
            try:  # a clean stop hands what it still holds to the others at once, and leaves the list
                self.workers.leave(self.owner, self.clock.now())
            except Exception as exc:  # noqa: BLE001  (the others take it over when this worker stops beating)
                log.warning("worker_leave_failed", error=f"{type(exc).__name__}: {exc}")
            self._liveness.join(timeout=10)
        self.workers.close()
        if self.fanout is not None:
            self.fanout.shares.close()
        self.publisher.adapters.close()  # connections, and X accounts leave the process's upload sharing
        if self.ledger.unrecorded is not None:
            self.ledger.unrecorded.close()
        self.ops.close()  # what alerts are still grouped go out now
        log.info("worker_stopped", owner=self.owner, **self._counts)

    def watch(self) -> None:
        self.watcher = Watcher(self.root, lambda changed: self.ops.reloaded(self.reload_now(changed)))
        self.watcher.start()

    # ---- helpers ----

    def _heartbeat(self, run_time: datetime) -> None:
        counts = self.ledger.counts(self.campaign.name)
        log.info(
            "worker_heartbeat",
            campaign=self.campaign.name,
            now=self.clock.now().isoformat(),
            published=counts["published"],
            failed=counts["failed"],
            skipped=counts["skipped"],
            pending=counts["claimed"] + counts["retrying"] + len(self._inflight),
            next_slot_at=_iso(self.scheduler.next_run_at(jobs_mod.SLOT_PREFIX)),
        )

    @staticmethod
    def _check_secrets(campaign: Any) -> None:
        from bot.campaign.secrets import secret_problems

        problems = secret_problems(campaign)  # `check` warns about these; `run` cannot publish without them
        if problems:
            raise ConfigError(problems)


BEAT_EVERY = 2.0
"""Wall seconds between a worker's heartbeats (bot.ledger.workers.DEAD_AFTER, three missed beats, says when one is dead)."""

PREPARE_AHEAD = 100
"""Accounts of a slot whose adapters are built before any of them is submitted (X shares an upload with 100)."""

LEDGER_LOST = 3
"""The worker's exit code when it stopped because its ledger file was deleted or replaced."""

_LOCATED = re.compile(r"^([^:\s]+\.ya?ml):\d+: ")


def release_freed_memory() -> bool:
    """Give the memory glibc's malloc holds free back to the system (``malloc_trim(0)``); True if some went back.

    glibc keeps what a process frees for its next allocations and returns to the system only
    what lies at the top of a heap. After the campaign's load (unpickling the loader child's
    answer) and the warm-up, or after a reload (the old campaign freed), the free memory lies
    between live blocks, and an idle worker would keep it for good. It takes 1 to 15 ms, so it is
    not called on a slot's path (not between fan-outs either: the arenas' locks are held meanwhile).
    """
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    return bool(trim(0))


def _retire_dropped_secrets(old: Any, new: Any) -> None:
    """Credentials only the old campaign used are retired: redacted a day more, then forgotten (a reload that
    drops or re-points accounts must not grow the redaction registry for the life of the worker)."""
    from bot.observability.redaction import retire_secret

    def values(campaign: Any) -> set[str]:
        return {os.environ.get(var) or "" for a in campaign.accounts.values() for var in a.credentials.values()}

    for value in values(old) - values(new) - {""}:
        retire_secret(value)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()
