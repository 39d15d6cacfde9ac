"""The worker's scheduler, whose time is a ``Clock``, and the jobs a campaign's slots become.

Why our own small loop and not an APScheduler 3 scheduler: APScheduler 3.11's schedulers read
``datetime.now()`` inside their private job-processing loop, and its executors drop a run later than
``misfire_grace_time`` by the wall clock without telling the job which run time it fires for.
There is no public seam to give them another time source, and overriding the private loop (as
this module once did) breaks silently on a minor release. A test's clock, moved by hand, or a CompressedClock
(the demo) needs that seam, and a slot must keep its run time (part of the publication key).

What we need from APScheduler is its time arithmetic (cron fields, time zones, DST, windows), and
that is the public, documented trigger interface: ``trigger.get_next_fire_time(previous, now)``
(``apscheduler.triggers.base.BaseTrigger``). So ``ClockScheduler`` keeps each job's next fire
time in a heap, reads the time from the ``Clock``, dispatches every run time that came due with
that run time, oldest first across jobs (no coalescing, nothing dropped: the Publisher decides on
grace), and asks the trigger for the next one. DST and time zones stay the triggers' job
(``bot.schedule.occurrences``: ``trigger_for``, ``OncePerWallTime``).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.clock import Clock
from bot.schedule.occurrences import Occurrence, OncePerWallTime, occurrence_of, trigger_for

log = structlog.get_logger()


@dataclass(eq=False)
class Job:
    """A scheduled call: the worker runs it as ``func(run_time, *args)``."""

    id: str
    func: Callable[..., Any]
    trigger: Any  # an APScheduler 3 trigger (the library is untyped)
    args: tuple[Any, ...]
    coalesce: bool  # after a clock jump, one run (the last due) instead of one per missed run time
    next_run_time: datetime | None
    entry: int = field(default=-1, repr=False)  # the job's live heap entry; older entries are stale


Dispatch = Callable[[Job, datetime], None]


class ClockScheduler:
    """Jobs fired by a ``Clock``: ``run_due`` hands each due run time to ``dispatch(job, run_time)``.

    ``dispatch`` runs on the caller's thread under the scheduler's lock (so a ``swap`` never falls
    between two run times of one pass): it must only hand work over (the worker's pool). A job
    function may add or remove jobs (the lock is re-entrant). A failing dispatch or trigger is logged
    as ``job_failed`` and never stops the loop.
    """

    def __init__(self, clock: Clock, dispatch: Dispatch) -> None:
        self._clock = clock
        self._dispatch_run = dispatch
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._heap: list[tuple[datetime, int, Job]] = []  # (next run time in UTC, entry, job)
        self._entries = itertools.count()
        self._event = threading.Event()
        self.running = False

    # ---- running ----

    def start(self) -> None:
        self.running = True

    def shutdown(self) -> None:
        self.running = False
        self._event.set()

    def wakeup(self) -> None:
        """End a ``wait`` now (jobs changed, or the worker is stopping)."""
        self._event.set()

    def wait(self, clock_seconds: float | None, cap: float = 1.0) -> None:
        """Sleep until the next job is due, a wakeup, or ``cap`` real seconds (a clock can be moved by hand)."""
        wall = cap
        if clock_seconds is not None:
            real = self._clock.wall_seconds(clock_seconds)
            # 0 for a span still to come: this clock does not move with real time; a wakeup or a look at `cap` will do.
            if real > 0 or clock_seconds <= 0:
                wall = min(real, cap)
        self._event.wait(wall)
        self._event.clear()

    def run_due(self) -> float | None:
        """Dispatch every run time due by the Clock; clock seconds until the next one (``None``: no jobs)."""
        if not self.running:
            return None
        now = self._clock.now()
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, entry, job = heapq.heappop(self._heap)
                if self._live(job, entry):
                    self._fire(job, now)
            following = self._earliest()
        if following is None:
            return None
        return max((following - self._clock.now()).total_seconds(), 0.0)

    def _fire(self, job: Job, now: datetime) -> None:
        run_time = job.next_run_time
        assert run_time is not None  # only jobs with a next run time are in the heap
        following = self._next(job, run_time, now)
        if job.coalesce:
            while following is not None and following <= now:
                run_time, following = following, self._next(job, following, now)
        try:
            self._dispatch_run(job, run_time)
        except Exception as exc:  # noqa: BLE001  (a failing job must never stop the scheduler)
            log.error("job_failed", job=job.id, slot_at=run_time.isoformat(), error=f"{type(exc).__name__}: {exc}")
        if self._jobs.get(job.id) is not job:
            return  # the job replaced or removed itself
        if following is None:
            del self._jobs[job.id]
        else:
            # A following run time already due is popped again in this pass, in time order with the other jobs'.
            job.next_run_time = following
            self._push(job)

    def _next(self, job: Job, previous: datetime, now: datetime) -> datetime | None:
        try:
            following: datetime | None = job.trigger.get_next_fire_time(previous, now)
        except Exception as exc:  # noqa: BLE001
            log.error("job_failed", job=job.id, slot_at=previous.isoformat(), error=f"{type(exc).__name__}: {exc}")
            return None
        if following is not None and following <= previous:
            # A trigger that does not move forward would hold the loop here for ever.
            log.error("job_failed", job=job.id, slot_at=previous.isoformat(), error=f"trigger repeated {following}")
            return None
        return following

    # ---- jobs ----

    def add_timed(self, func: Callable[..., Any], trigger: Any, job_id: str, args: tuple[Any, ...] = ()) -> Job | None:
        """Add (or replace) a job at its first run time from the Clock's now on; ``None`` when it never fires again.

        A trigger may give a first time already past (APScheduler's DateTrigger gives its date whatever
        ``now`` is): such run times are not the job's to run. Slots missed while no worker ran are
        handed over at start (bot.worker.recovery), and a slot that only exists since an edit has no past.
        """
        now = self._clock.now()
        first: datetime | None = trigger.get_next_fire_time(None, now)
        while first is not None and first < now:
            first = self._next(Job(job_id, func, trigger, args, False, None), first, now)
        if first is None:
            return None
        return self._add(Job(job_id, func, trigger, args, coalesce=False, next_run_time=first))

    def add_once(self, func: Callable[..., Any], when: datetime, job_id: str, args: tuple[Any, ...] = ()) -> Job:
        """A one-shot job at ``when`` (already past means: at the next pass)."""
        trigger = DateTrigger(run_date=when, timezone=UTC)
        return self._add(Job(job_id, func, trigger, args, coalesce=False, next_run_time=when))

    def add_every(self, func: Callable[..., Any], seconds: float, job_id: str) -> Job:
        """A job every ``seconds`` of clock time (an IntervalTrigger without a start would count from the wall clock)."""
        start = self._clock.now() + timedelta(seconds=seconds)
        trigger = IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC)
        # Coalesced: after a clock jump one heartbeat (or sweep) is enough, not one per missed interval.
        return self._add(Job(job_id, func, trigger, (), coalesce=True, next_run_time=start))

    def _add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job  # a job of the same id is replaced: its heap entry goes stale
            self._push(job)
        self.wakeup()
        return job

    def remove_job(self, job_id: str) -> bool:
        """Remove a job; False when there was none of that id."""
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def get_job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def get_jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def swap(self, remove: Iterable[str], add: Callable[[], None]) -> None:
        """Remove jobs and add others with no pass of the loop in between (reloads are atomic)."""
        with self._lock:
            for job_id in remove:
                self._jobs.pop(job_id, None)
            add()
        self.wakeup()

    def next_run_at(self, prefix: str = "") -> datetime | None:
        """The earliest next run time among jobs whose id starts with ``prefix``."""
        with self._lock:
            times = [j.next_run_time for j in self._jobs.values() if j.id.startswith(prefix) and j.next_run_time]
        return min(times, key=lambda t: t.astimezone(UTC)) if times else None

    # ---- the heap ----

    def _push(self, job: Job) -> None:
        assert job.next_run_time is not None
        if len(self._heap) > 2 * len(self._jobs) + 64:
            self._compact()  # reloads leave stale entries behind; do not let them pile up
        job.entry = next(self._entries)
        # Keyed in UTC: aware datetimes sharing a zone compare by wall time, wrong in the hour repeated in autumn.
        heapq.heappush(self._heap, (job.next_run_time.astimezone(UTC), job.entry, job))

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if self._live(item[2], item[1])]
        heapq.heapify(self._heap)

    def _live(self, job: Job, entry: int) -> bool:
        return job.entry == entry and self._jobs.get(job.id) is job

    def _earliest(self) -> datetime | None:
        while self._heap and not self._live(self._heap[0][2], self._heap[0][1]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None


@dataclass(frozen=True)
class SlotJob:
    """What one schedule slot becomes: a job id, its trigger, and a fingerprint to notice edits."""

    id: str
    schedule: Any
    slot: Any
    trigger: Any
    fingerprint: str


SLOT_PREFIX = "slot:"


def slot_jobs(campaign: Any) -> dict[str, SlotJob]:
    """Every slot of every schedule as a ``SlotJob``, by job id (``slot:<schedule>#<index>``)."""
    jobs: dict[str, SlotJob] = {}
    for schedule in campaign.schedules:
        for slot in schedule.slots:
            trigger = OncePerWallTime(trigger_for(schedule, slot), schedule.timezone)
            job_id = f"{SLOT_PREFIX}{schedule.name}#{slot.index}"
            fingerprint = "|".join(
                [str(trigger), str(schedule.timezone), str(schedule.grace), slot.target, ",".join(slot.accounts)]
            )
            jobs[job_id] = SlotJob(job_id, schedule, slot, trigger, fingerprint)
    return jobs


def occurrence_at(job: SlotJob, at: datetime) -> Occurrence:
    """The ``Occurrence`` a slot job stands for when it fires at ``at``."""
    return occurrence_of(job.schedule, job.slot, at)


def diff(old: dict[str, SlotJob], new: dict[str, SlotJob]) -> tuple[list[str], list[str], list[str]]:
    """Job ids added, removed and changed between two campaigns' slot jobs."""
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(k for k in set(old) & set(new) if old[k].fingerprint != new[k].fingerprint)
    return added, removed, changed


class Fanout:
    """A slot's accounts divided between the workers of one PostgreSQL ledger (``bot.ledger.shares``).

    ``fire`` offers the slot's publications as ``pending`` rows (every worker does; the first writes
    them) and feeds this worker's pool from them on a thread of its own: whenever the pool has room
    for a quarter of a batch, it takes as many rows as the pool can hold (``SELECT ... FOR UPDATE SKIP
    LOCKED``) and submits those accounts, until none is left. A busy worker takes nothing, so the rows
    go to whichever worker has free threads, and no two workers try the same account. Each taken account still goes through
    ``submit`` and the Publisher's claim, which alone decides who publishes.
    """

    def __init__(
        self,
        shares: Any,
        clock: Clock,
        owner: str,
        lease: timedelta,
        submit: Callable[[Any, list[str]], None],
        room: Callable[[float, int], int],
        stopping: threading.Event,
        *,
        batch: int | None = None,
        prepare: Callable[[list[str]], None] | None = None,
    ) -> None:
        from bot.ledger.shares import BATCH

        self.shares = shares
        self.clock = clock
        self.owner = owner
        self.lease = lease
        self.submit = submit
        self.room = room  # free threads in the pool, after waiting up to the given wall seconds for that many
        self.stopping = stopping
        self.batch = batch or BATCH
        self.prepare = prepare  # readies a batch's accounts before any of them is submitted (Worker.prepare)
        self._feeding: set[tuple[datetime, str]] = set()
        self._lock = threading.Lock()

    def fire(self, occurrence: Occurrence, platforms: dict[str, str | None], campaign: str) -> None:
        """Offer the slot's accounts (account -> platform) and feed this worker from them."""
        self.shares.offer(
            campaign,
            occurrence.at.astimezone(UTC).replace(microsecond=0),
            occurrence.target,
            occurrence.post,
            occurrence.schedule,
            occurrence.slot,
            platforms,
            self.clock.now(),
        )
        self.feed(occurrence, campaign)

    def feed(self, occurrence: Any, campaign: str) -> bool:
        """Feed this worker from the slot's free ``pending`` rows on a thread; False when one already does."""
        slot = (occurrence.at.astimezone(UTC).replace(microsecond=0), occurrence.target)
        with self._lock:
            if slot in self._feeding:
                return False
            self._feeding.add(slot)
        thread = threading.Thread(target=self._feed, args=(occurrence, campaign, slot), name="fanout", daemon=True)
        thread.start()
        return True

    def _feed(self, occurrence: Any, campaign: str, slot: tuple[datetime, str]) -> None:
        taken = 0
        try:
            while not self.stopping.is_set():
                want = max(1, self.batch // 4)
                room = self.room(0.0, want)
                if room < want:
                    room = self.room(1.0, want)  # wait for tasks to end, not for ever: the stop is looked at
                    if room < want:
                        continue
                now = self.clock.now()
                # As many as this worker's pool can take (its free threads and a queue ahead, Worker._room):
                # one round trip for the lot. A batch of 32 at a time left most of a 256-thread pool idle.
                # Taking no more than its pool holds leaves the rest to the other workers.
                accounts = self.shares.take(campaign, slot[0], slot[1], self.owner, now, now + self.lease, room)
                if not accounts:
                    break
                taken += len(accounts)
                if self.prepare is not None:
                    self.prepare(accounts)
                self.submit(occurrence, accounts)
        except Exception as exc:  # noqa: BLE001  (what is left pending is taken by a later look, here or elsewhere)
            log.error(
                "fanout_failed", slot_at=slot[0].isoformat(), target=slot[1], error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            with self._lock:
                self._feeding.discard(slot)
            log.debug("fanout_fed", slot_at=slot[0].isoformat(), target=slot[1], taken=taken)
