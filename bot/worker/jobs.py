"""APScheduler 3 glue: a scheduler whose time is a ``Clock``, and the jobs a campaign's slots become."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.job import Job
from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED, BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.clock import Clock
from bot.schedule.occurrences import Occurrence, OncePerWallTime, occurrence_of, trigger_for

log = structlog.get_logger()

Dispatch = Callable[[Job, datetime], None]


class _Timed:
    """A job function called as ``func(run_time, *args)``; APScheduler itself only knows ``*args``."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)
        self.__qualname__ = self.__name__

    def __call__(self, *args: Any) -> Any:
        return self.func(*args)


def wall_seconds(clock: Clock, seconds: float) -> float:
    """Wall seconds that ``seconds`` of this clock's time take (a CompressedClock runs ``speed`` times faster)."""
    return max(seconds, 0.0) / float(getattr(clock, "speed", 1.0))


class ClockScheduler(BaseScheduler):
    """APScheduler 3 with the time read from a ``Clock`` and due jobs handed to ``dispatch(job, run_time)``.

    Why a subclass: ``BaseScheduler._process_jobs`` reads ``datetime.now()`` and the stock
    executors' ``run_job`` drops runs later than ``misfire_grace_time`` by the wall clock and
    never tells the job function which run time it is firing for. A FakeClock (tests) or a
    CompressedClock (demo) would then see wall time, and a slot could be dropped silently or
    lose its identity (the run time is part of the publication key). So we keep APScheduler's
    triggers (time zones, DST, windows), job store and job API, and replace only the loop:
    what is due (by the Clock), how long to wait (in wall seconds), and dispatch with the run
    time. Every missed run time of a slot is dispatched (no coalescing); the Publisher decides on grace.
    ``dispatch`` runs on the loop's thread, so it must only hand work over (the worker's pool).
    """

    def __init__(self, clock: Clock, dispatch: Dispatch, **options: Any) -> None:
        self._clock = clock
        self._dispatch_run = dispatch
        self._event = threading.Event()
        options.setdefault("timezone", UTC)
        options.setdefault("job_defaults", {"misfire_grace_time": None, "coalesce": False, "max_instances": 1_000_000})
        super().__init__(**options)

    def now(self) -> datetime:
        return self._clock.now()

    def wakeup(self) -> None:
        self._event.set()

    def shutdown(self, wait: bool = False) -> None:
        # The stock executors are never used (dispatch runs jobs), so there is nothing to wait for here.
        super().shutdown(wait=False)
        self._event.set()

    def wait(self, clock_seconds: float | None, cap: float = 1.0) -> None:
        """Sleep until the next job is due, a wakeup, or ``cap`` wall seconds (clocks can be moved by hand)."""
        wall = cap if clock_seconds is None else min(wall_seconds(self._clock, clock_seconds), cap)
        self._event.wait(wall)
        self._event.clear()

    def add_timed(
        self, func: Callable[..., Any], trigger: Any, job_id: str, args: tuple = (), name: str | None = None
    ) -> Job | None:
        """Add (or replace) a job, its first run time computed by the Clock; ``None`` when the trigger never fires."""
        first = trigger.get_next_fire_time(None, self._clock.now())
        if first is None:
            return None
        return self.add_job(
            _Timed(func), trigger, args=args, id=job_id, name=name or job_id, next_run_time=first, replace_existing=True
        )

    def add_once(self, func: Callable[..., Any], when: datetime, job_id: str, args: tuple = ()) -> Job:
        """A one-shot job at ``when`` (already past means: at the next pass)."""
        trigger = DateTrigger(run_date=when, timezone=UTC)
        return self.add_job(
            _Timed(func), trigger, args=args, id=job_id, name=job_id, next_run_time=when, replace_existing=True
        )

    def add_every(self, func: Callable[..., Any], seconds: float, job_id: str) -> Job:
        """A job every ``seconds`` of clock time (IntervalTrigger would start from the wall clock otherwise)."""
        start = self._clock.now() + timedelta(seconds=seconds)
        trigger = IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC)
        # Coalesced: after a clock jump one heartbeat (or sweep) is enough, not one per missed interval.
        return self.add_job(
            _Timed(func), trigger, id=job_id, name=job_id, next_run_time=start, replace_existing=True, coalesce=True
        )

    def swap(self, remove: Iterable[str], add: Callable[[], None]) -> None:
        """Remove jobs and add others with no pass of the loop in between (reloads are atomic)."""
        with self._jobstores_lock:
            for job_id in remove:
                if self.get_job(job_id) is not None:
                    self.remove_job(job_id)
            add()
        self.wakeup()

    def run_due(self) -> float | None:
        """Dispatch every job due by the Clock; clock seconds until the next one (``None``: no jobs)."""
        return self._process_jobs()

    def _process_jobs(self) -> float | None:
        if self.state in (STATE_PAUSED, STATE_STOPPED):
            return None
        now = self._clock.now()
        next_wakeup: datetime | None = None
        with self._jobstores_lock:
            for store in self._jobstores.values():
                for job in store.get_due_jobs(now):
                    run_times = job._get_run_times(now)
                    if job.coalesce:
                        run_times = run_times[-1:]
                    for run_time in run_times:
                        self._dispatch_one(job, run_time)
                    following = job.trigger.get_next_fire_time(run_times[-1], now) if run_times else None
                    if following is not None:
                        job._modify(next_run_time=following)
                        store.update_job(job)
                    elif store.lookup_job(job.id) is not None:
                        store.remove_job(job.id)
                store_next = store.get_next_run_time()
                if store_next is not None and (next_wakeup is None or store_next < next_wakeup):
                    next_wakeup = store_next
        if next_wakeup is None:
            return None
        return max((next_wakeup - self._clock.now()).total_seconds(), 0.0)

    def _dispatch_one(self, job: Job, run_time: datetime) -> None:
        # A failing job must never stop the scheduler: log it with its context and go on.
        try:
            self._dispatch_run(job, run_time)
        except Exception as exc:  # noqa: BLE001
            log.error("job_failed", job=job.id, slot_at=run_time.isoformat(), error=f"{type(exc).__name__}: {exc}")

    def next_run_at(self, prefix: str = "") -> datetime | None:
        """The earliest next run time among jobs whose id starts with ``prefix``."""
        times = [j.next_run_time for j in self.get_jobs() if j.id.startswith(prefix) and j.next_run_time]
        return min(times) if times else None


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
