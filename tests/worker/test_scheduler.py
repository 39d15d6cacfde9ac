"""The clock-driven scheduler: due jobs run when a FakeClock is moved, at APScheduler triggers' times."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from structlog.testing import capture_logs

from bot.core.clock import CompressedClock, FakeClock, SystemClock, clock_rate
from bot.schedule.occurrences import OncePerWallTime
from bot.worker.jobs import ClockScheduler

LONDON = ZoneInfo("Europe/London")


def _scheduler(clock):
    fired: list[tuple[str, datetime]] = []
    scheduler = ClockScheduler(clock, lambda job, at: fired.append((job.id, at)))
    scheduler.start()
    return scheduler, fired


def test_jobs_run_only_when_the_fake_clock_reaches_them() -> None:
    """A cron job fires at its clock time and not before, with the run time it stands for."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(hour=9, minute=0, timezone=LONDON), "daily")
    assert scheduler.run_due() == 3600.0
    assert fired == []
    clock.advance(3599)
    scheduler.run_due()
    assert fired == []
    clock.advance(1)
    scheduler.run_due()
    assert fired == [("daily", datetime(2022, 1, 12, 9, 0, tzinfo=LONDON))]
    scheduler.shutdown()


def test_every_missed_run_time_is_dispatched_not_coalesced() -> None:
    """After a clock jump over three run times, all three reach dispatch (the Publisher judges grace)."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(hour="9-11", minute=0, timezone=UTC), "hourly")
    clock.advance(4 * 3600)
    scheduler.run_due()
    assert [at.hour for _, at in fired] == [9, 10, 11]
    scheduler.shutdown()


def test_dst_change_neither_skips_nor_doubles_a_slot() -> None:
    """Across both 2022 UK clock changes a 01:30 and a 09:00 London job fire once a day, at local time."""
    clock = FakeClock(datetime(2022, 3, 25, 0, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(hour=9, minute=0, timezone=LONDON), "nine")
    half_past_one = CronTrigger(hour=1, minute=30, timezone=LONDON)
    scheduler.add_timed(lambda at: None, OncePerWallTime(half_past_one, LONDON), "half-one")
    while clock.now() < datetime(2022, 3, 30, tzinfo=UTC):
        clock.advance(600)
        scheduler.run_due()
    clock.set(datetime(2022, 10, 28, 0, 0, tzinfo=UTC))
    scheduler.run_due()  # the jump itself dispatches the months in between; keep only the window around October's change
    fired.clear()
    while clock.now() < datetime(2022, 11, 2, tzinfo=UTC):
        clock.advance(600)
        scheduler.run_due()
    nine = [at for job, at in fired if job == "nine"]
    assert [at.astimezone(LONDON).strftime("%d %H:%M") for at in nine] == [
        "28 09:00",
        "29 09:00",
        "30 09:00",
        "31 09:00",
        "01 09:00",
    ]
    assert [at.astimezone(UTC).hour for at in nine] == [8, 8, 9, 9, 9]
    half_one = [at.astimezone(UTC) for job, at in fired if job == "half-one"]
    assert len(half_one) == len(set(half_one)) == 5  # 30 October 01:30 happens twice on the wall, once here
    scheduler.shutdown()


def test_spring_forward_slot_is_not_skipped() -> None:
    """On 27 March 2022 London has no 01:30; the 01:30 job still fires that day, once."""
    clock = FakeClock(datetime(2022, 3, 25, 0, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(hour=1, minute=30, timezone=LONDON), "half-one")
    while clock.now() < datetime(2022, 3, 29, tzinfo=UTC):
        clock.advance(600)
        scheduler.run_due()
    days = [at.astimezone(LONDON).day for _, at in fired]
    assert days == [25, 26, 27, 28]
    scheduler.shutdown()


def test_a_failing_job_is_logged_and_the_scheduler_goes_on() -> None:
    """A dispatch that raises is logged as job_failed and later jobs still run."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    fired: list[str] = []

    def dispatch(job, at):
        if job.id == "bad":
            raise RuntimeError("boom")
        fired.append(job.id)

    scheduler = ClockScheduler(clock, dispatch)
    scheduler.start()
    scheduler.add_once(lambda at: None, clock.now() + timedelta(seconds=1), "bad")
    scheduler.add_once(lambda at: None, clock.now() + timedelta(seconds=2), "good")
    clock.advance(5)
    with capture_logs() as logs:
        scheduler.run_due()
    assert fired == ["good"]
    assert [(e["event"], e["job"], e["error"]) for e in logs] == [("job_failed", "bad", "RuntimeError: boom")]
    scheduler.shutdown()


def test_interval_jobs_count_clock_time() -> None:
    """An every-60-s job fires per 60 s of FakeClock time, however little wall time passes."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_every(lambda at: None, 60, "beat")
    for _ in range(10):
        clock.advance(30)
        scheduler.run_due()
    assert len(fired) == 5
    scheduler.shutdown()


def test_wall_seconds_follow_each_clock() -> None:
    """An hour takes an hour on the system clock, a second at 3600x, and no real time on a FakeClock."""
    compressed = CompressedClock(datetime(2022, 1, 12, tzinfo=UTC), speed=3600)
    fake = FakeClock(datetime(2022, 1, 12, tzinfo=UTC))
    assert [c.wall_seconds(3600) for c in (SystemClock(), compressed, fake)] == [3600.0, 1.0, 0.0]
    assert compressed.wall_seconds(-5) == 0.0
    assert [clock_rate(c) for c in (SystemClock(), compressed, fake)] == [1.0, 3600.0, 1.0]


def test_missed_run_times_of_several_jobs_are_dispatched_oldest_first() -> None:
    """After a clock jump, run times of different jobs reach dispatch in time order, not job by job."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(hour="9-10", minute=0, timezone=UTC), "on-the-hour")
    scheduler.add_timed(lambda at: None, CronTrigger(hour="9-10", minute=30, timezone=UTC), "half-past")
    clock.advance(3 * 3600)
    scheduler.run_due()
    assert [(job, at.strftime("%H:%M")) for job, at in fired] == [
        ("on-the-hour", "09:00"),
        ("half-past", "09:30"),
        ("on-the-hour", "10:00"),
        ("half-past", "10:30"),
    ]
    scheduler.shutdown()


def test_swap_replaces_jobs_between_two_passes() -> None:
    """Jobs removed by a swap never fire; those it adds fire from the next pass on, once per run time."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)
    scheduler.add_timed(lambda at: None, CronTrigger(minute=0, timezone=UTC), "old")
    scheduler.swap(["old"], lambda: scheduler.add_timed(lambda at: None, CronTrigger(minute=15, timezone=UTC), "new"))
    clock.advance(3600)
    assert scheduler.run_due() == 15 * 60.0
    assert fired == [("new", datetime(2022, 1, 12, 8, 15, tzinfo=UTC))]
    assert [job.id for job in scheduler.get_jobs()] == ["new"]
    scheduler.shutdown()


def test_a_trigger_that_fails_is_dropped_and_the_others_go_on() -> None:
    """A trigger raising while the next run time is computed is logged as job_failed; other jobs still fire."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, fired = _scheduler(clock)

    class Broken:
        def get_next_fire_time(self, previous, now):
            if previous is not None:
                raise ValueError("no next time")
            return now + timedelta(minutes=1)

    scheduler.add_timed(lambda at: None, Broken(), "broken")
    scheduler.add_timed(lambda at: None, CronTrigger(minute="*/10", timezone=UTC), "every-ten")
    clock.advance(20 * 60)
    with capture_logs() as logs:
        scheduler.run_due()
    assert [job for job, _ in fired] == ["every-ten", "broken", "every-ten", "every-ten"]
    assert [(e["event"], e["job"]) for e in logs] == [("job_failed", "broken")]
    assert scheduler.get_job("broken") is None and scheduler.get_job("every-ten") is not None
    scheduler.shutdown()


def test_wait_on_a_fake_clock_ends_at_a_wakeup() -> None:
    """A FakeClock does not move by itself: the loop's wait lasts until a wakeup, not a computed span."""
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    scheduler, _ = _scheduler(clock)
    threading.Timer(0.05, scheduler.wakeup).start()
    started = time.monotonic()
    scheduler.wait(3600, cap=30.0)
    assert 0.04 <= time.monotonic() - started < 10.0
    scheduler.shutdown()
