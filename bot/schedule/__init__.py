"""When slots happen: a slot becomes an APScheduler 3 trigger in its schedule's time zone.

``occurrences`` lists what happens in a period (DST repeats dropped, windows applied);
``expand`` turns queue slots into the post each account gets next. May import ``bot.core``.
"""

from bot.schedule.occurrences import (
    Occurrence,
    OncePerWallTime,
    Planned,
    UsedPosts,
    crontab_trigger,
    expand,
    fire_times,
    occurrence_of,
    occurrences,
    repeated_wall_time,
    trigger_for,
    window_bounds,
)

__all__ = [
    "Occurrence",
    "Planned",
    "UsedPosts",
    "crontab_trigger",
    "expand",
    "fire_times",
    "OncePerWallTime",
    "occurrence_of",
    "occurrences",
    "repeated_wall_time",
    "trigger_for",
    "window_bounds",
]
