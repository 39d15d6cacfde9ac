"""Schedule files: time zone, window, grace and slots, parsed into ``Schedule`` with clear messages."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from bot.campaign.files import ScheduleFile, SlotEntry
from bot.campaign.problems import Problems, suggest
from bot.campaign.yamlsrc import Loc, Source
from bot.core.model import Schedule, Slot

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_AT = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2})$")


def parse_duration(value: Any, *, numbers_are_seconds: bool = False) -> timedelta:
    """``30m``, ``1h``, ``1h30m``, ``2d``, ``90s`` -> timedelta; ValueError with the expected form."""
    if numbers_are_seconds and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"got {value!r} (expected a positive number of seconds)")
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip().replace(" ", "")) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"got {value!r} (expected a duration like 30m, 1h or 1h30m)")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(days=d, hours=h, minutes=m, seconds=s)


def parse_time(value: Any) -> time:
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    try:
        if match:
            return time(int(match.group(1)), int(match.group(2)))
    except ValueError:
        pass
    raise ValueError(f'{value!r} is not a time of day (expected HH:MM in quotes, like "10:00")')


def parse_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(
                f"'{value.isoformat()}' carries a UTC offset (expected a local date-time like "
                "2022-01-12T09:00; the schedule's timezone applies)"
            )
        return value
    match = _AT.match(value.strip()) if isinstance(value, str) else None
    try:
        if match:
            return datetime.combine(date.fromisoformat(match.group(1)), parse_time(match.group(2)))
    except ValueError:
        pass
    shown = value.isoformat() if isinstance(value, date) else value
    raise ValueError(f"{shown!r} is not a valid date-time (expected a local date-time like 2022-01-12T09:00)")


def parse_zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        if name and "/" in name or name == "UTC":
            return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    hint = suggest(name, zoneinfo.available_timezones()) or " (expected a name like Europe/London)"
    raise ValueError(f"unknown time zone '{name}'{hint}")


def build_schedule(
    problems: Problems, source: Source, path: Path, raw: ScheduleFile, entries: list[tuple[int, SlotEntry]]
) -> Schedule | None:
    """The schedule, or None when its time zone is unusable (every slot depends on it).

    ``entries`` are the slots that passed validation, with their place in the file. With an
    unusable time zone the rest of the file is still checked (in UTC), so one typo hides nothing.
    """
    zone_ok = True
    try:
        tz = parse_zone(raw.timezone)
    except ValueError as exc:
        problems.add(source, ("timezone",), str(exc))
        tz, zone_ok = zoneinfo.ZoneInfo("UTC"), False
    start = raw.window.start if raw.window else None
    end = raw.window.end if raw.window else None
    if start and end and end < start:
        problems.add(source, ("window", "end"), f"{end} is before the start {start} (expected a later date)")
    grace = timedelta(hours=1)
    if raw.grace is not None:
        try:
            grace = parse_duration(raw.grace)
        except ValueError as exc:
            problems.add(source, ("grace",), str(exc))
    slots = [s for i, entry in entries if (s := _slot(problems, source, tz, i, entry))]
    if not zone_ok:
        return None
    return Schedule(
        name=path.stem, path=path, timezone=tz, window_start=start, window_end=end, grace=grace, slots=slots
    )


_KINDS: tuple[Literal["at", "every", "cron"], ...] = ("at", "every", "cron")  # as Slot.kind


def _slot(problems: Problems, source: Source, tz: zoneinfo.ZoneInfo, i: int, entry: SlotEntry) -> Slot | None:
    loc = ("slots", i)
    before = problems.count
    kinds = [k for k in _KINDS if getattr(entry, k) is not None]
    if len(kinds) != 1:
        got = "none" if not kinds else " and ".join(kinds)
        problems.add(source, loc, f"has {got} (expected exactly one of at, every or cron)")
        return None
    kind = kinds[0]
    fields: dict[str, Any] = {}
    if kind == "at":
        try:
            fields["at"] = parse_at(entry.at)
        except ValueError as exc:
            problems.add(source, (*loc, "at"), str(exc))
    elif kind == "every":
        fields.update(_every(problems, source, loc, entry))
    else:
        fields["cron"] = _cron(problems, source, loc, entry.cron or "", tz)
    for extra in ("times", "days"):
        if getattr(entry, extra) is not None and kind != "every":
            problems.add(source, (*loc, extra), f"is only used with every (this slot uses {kind})")
    if (entry.post is None) == (entry.queue is None):
        got = "both post and queue" if entry.post else "neither post nor queue"
        problems.add(source, loc, f"has {got} (expected exactly one of post or queue)")
    if not entry.accounts:
        problems.add(source, (*loc, "accounts"), "is empty (expected at least one account)")
    for j, account in enumerate(entry.accounts):
        if account in entry.accounts[:j]:
            problems.add(source, (*loc, "accounts", j), f"'{account}' is listed twice")
    if problems.count != before:
        return None
    return Slot(
        index=i,
        line=source.line(loc),
        kind=kind,
        post=entry.post,
        queue=entry.queue,
        accounts=tuple(entry.accounts),
        **fields,
    )


def _every(problems: Problems, source: Source, loc: Loc, entry: SlotEntry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    every = (entry.every or "").strip().lower()
    if every not in ("day", "week"):
        problems.add(source, (*loc, "every"), f"'{entry.every}' is not supported (expected day or week)")
        return out
    if not entry.times:
        problems.add(source, loc, 'every needs times (expected a list like ["10:00", "16:00"])')
    times = []
    for j, value in enumerate(entry.times or []):
        try:
            times.append(parse_time(value))
        except ValueError as exc:
            problems.add(source, (*loc, "times", j), str(exc))
    out["times"] = tuple(sorted(set(times)))
    if every == "week":
        if not entry.days:
            problems.add(source, loc, "every: week needs days (expected a list like [mon, thu])")
        days = []
        for j, value in enumerate(entry.days or []):
            key = value.strip().lower()
            day = key if key in DAYS else _LONG_DAYS.get(key)
            if day is None:
                problems.add(source, (*loc, "days", j), f"'{value}' is not a day (expected one of: {', '.join(DAYS)})")
            else:
                days.append(day)
        out["days"] = tuple(d for d in DAYS if d in days)
    elif entry.days is not None:
        problems.add(source, (*loc, "days"), "is only used with every: week")
    return out


_LONG_DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}


def _cron(problems: Problems, source: Source, loc: Loc, expr: str, tz: zoneinfo.ZoneInfo) -> str:
    from bot.schedule.occurrences import crontab_trigger

    try:
        crontab_trigger(expr, tz)
    except ValueError as exc:
        problems.add(
            source,
            (*loc, "cron"),
            f"'{expr}' is not a valid cron expression: {exc} (expected minute hour day month day-of-week)",
        )
    return expr
