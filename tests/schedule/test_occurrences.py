"""Slot times through APScheduler triggers: windows, time zones, crontab days, daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.campaign import load
from bot.core.model import Campaign, Schedule, Slot
from bot.schedule.occurrences import crontab_days, occurrences, trigger_for

LONDON = ZoneInfo("Europe/London")
UTC = UTC


def _campaign(*slots: Slot, start: date, end: date, tz: ZoneInfo = LONDON) -> Campaign:
    schedule = Schedule(
        name="s", path=Path("schedules/s.yaml"), timezone=tz, window_start=start, window_end=end, slots=list(slots)
    )
    return Campaign(root=Path("."), name="t", accounts={}, posts={}, queues={}, schedules=[schedule])


def _daily(at: time, index: int = 0) -> Slot:
    return Slot(index=index, line=1, kind="every", times=(at,), post="p", accounts=("a",))


def _utc(campaign: Campaign, start: datetime, end: datetime) -> list[datetime]:
    return [o.at for o in occurrences(campaign, start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))]


def test_base_campaign_occurrences(tmp_path: Path):
    """The base campaign yields its launch, queue and cron slots in time order, in UTC, with targets."""
    c = load(Path(__file__).parents[1] / "cases/base")
    occ = occurrences(c, datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 2, 1, tzinfo=UTC))
    assert [(o.at.strftime("%d %H:%M"), o.target) for o in occ] == [
        ("12 09:00", "post:launch"),
        ("12 12:00", "queue:sample-posts"),
        ("12 16:00", "queue:videos"),
        ("13 12:00", "queue:sample-posts"),
        ("13 16:00", "queue:videos"),
    ]
    assert occ[0].accounts == ("x-index", "mastodon-a19", "bluesky-index") and occ[0].grace == timedelta(hours=1)


def test_window_end_day_is_inclusive_and_start_bounds():
    """A daily slot fires on every day of the window, the last day included, and not outside it."""
    c = _campaign(_daily(time(23, 30)), start=date(2022, 1, 12), end=date(2022, 1, 14))
    got = _utc(c, datetime(2022, 1, 1), datetime(2022, 2, 1))
    assert got == [datetime(2022, 1, d, 23, 30, tzinfo=UTC) for d in (12, 13, 14)]


def test_local_time_follows_summer_time():
    """A 09:00 London slot is 09:00 UTC in winter and 08:00 UTC in summer."""
    c = _campaign(_daily(time(9, 0)), start=date(2022, 3, 26), end=date(2022, 3, 28))
    assert [t.hour for t in _utc(c, datetime(2022, 3, 1), datetime(2022, 4, 1))] == [9, 8, 8]


def test_fall_back_slot_happens_once():
    """On the day clocks go back, a 01:30 daily slot happens once (01:30 BST), not twice."""
    c = _campaign(_daily(time(1, 30)), start=date(2022, 10, 29), end=date(2022, 10, 31))
    assert _utc(c, datetime(2022, 10, 1), datetime(2022, 11, 30)) == [
        datetime(2022, 10, 29, 0, 30, tzinfo=UTC),
        datetime(2022, 10, 30, 0, 30, tzinfo=UTC),  # 01:30 BST; the second 01:30 (GMT) is dropped
        datetime(2022, 10, 31, 1, 30, tzinfo=UTC),
    ]


def test_spring_forward_slot_in_skipped_hour_fires_once_an_hour_later_on_the_wall():
    """01:30 does not exist on spring-forward day; APScheduler fires it once at 01:30 UTC (02:30 BST)."""
    c = _campaign(_daily(time(1, 30)), start=date(2022, 3, 26), end=date(2022, 3, 28))
    assert _utc(c, datetime(2022, 3, 1), datetime(2022, 4, 30)) == [
        datetime(2022, 3, 26, 1, 30, tzinfo=UTC),
        datetime(2022, 3, 27, 1, 30, tzinfo=UTC),
        datetime(2022, 3, 28, 0, 30, tzinfo=UTC),
    ]


def test_at_slot_is_local_time_of_schedule():
    """An ``at`` slot is read in the schedule's zone: 09:00 in New York is 14:00 UTC in January."""
    slot = Slot(index=0, line=1, kind="at", at=datetime(2022, 1, 12, 9, 0), post="p", accounts=("a",))
    c = _campaign(slot, start=date(2022, 1, 1), end=date(2022, 1, 31), tz=ZoneInfo("America/New_York"))
    assert _utc(c, datetime(2022, 1, 1), datetime(2022, 2, 1)) == [datetime(2022, 1, 12, 14, 0, tzinfo=UTC)]


def test_at_slot_outside_window_never_happens():
    """An ``at`` slot after the window's last day is not an occurrence."""
    slot = Slot(index=0, line=1, kind="at", at=datetime(2022, 2, 1, 9, 0), post="p", accounts=("a",))
    c = _campaign(slot, start=date(2022, 1, 1), end=date(2022, 1, 31))
    assert _utc(c, datetime(2022, 1, 1), datetime(2022, 3, 1)) == []


def test_several_times_a_day_and_weekly_days():
    """``every: week`` fires only on its days, at each of its times."""
    slot = Slot(
        index=0, line=1, kind="every", times=(time(10), time(16)), days=("mon", "thu"), post="p", accounts=("a",)
    )
    c = _campaign(slot, start=date(2022, 1, 10), end=date(2022, 1, 16))  # Monday to Sunday
    got = [t.astimezone(LONDON).strftime("%a %H") for t in _utc(c, datetime(2022, 1, 1), datetime(2022, 2, 1))]
    assert got == ["Mon 10", "Mon 16", "Thu 10", "Thu 16"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("*/3", "sun,wed,sat"),
        ("mon-fri", "mon-fri"),
        ("*", "*"),
    ],
)
def test_crontab_day_numbers_mean_what_crontab_means(field: str, expected: str):
    """Crontab counts 0 and 7 as Sunday (APScheduler 3 counts 0 as Monday); numbers become names."""
    assert crontab_days(field) == expected


def test_cron_slot_weekdays():
    """``0 12 * * 1-5`` fires at noon Monday to Friday, as in crontab."""
    slot = Slot(index=0, line=1, kind="cron", cron="0 12 * * 1-5", queue="q", accounts=("a",))
    c = _campaign(slot, start=date(2022, 1, 10), end=date(2022, 1, 16))
    got = [t.astimezone(LONDON).strftime("%a") for t in _utc(c, datetime(2022, 1, 1), datetime(2022, 2, 1))]
    assert got == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_trigger_is_bounded_by_window():
    """The trigger itself stops after the window: no fire time after the last day."""
    c = _campaign(_daily(time(9)), start=date(2022, 1, 1), end=date(2022, 1, 2))
    trigger = trigger_for(c.schedules[0], c.schedules[0].slots[0])
    assert trigger.get_next_fire_time(None, datetime(2022, 1, 3, tzinfo=UTC)) is None
    assert str(trigger.timezone) == "Europe/London"
