"""Time sources. Everything that reads the time takes a Clock, so tests and the demo can steer it.

Code that waits in real time (a scheduler's loop, a tracker's pause) asks the clock how long a wait
of some clock seconds takes (``wall_seconds``) instead of asking which kind of clock it has.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""

    def sleep(self, seconds: float) -> None:
        """Wait this many clock seconds (may return early when woken)."""

    def wall_seconds(self, clock_seconds: float) -> float:
        """Real seconds until this clock has moved ``clock_seconds`` on by itself (0 for a negative span).

        0 for any span means the clock does not move with real time (a test moves it): a caller
        waiting for it should wait to be woken, or look again at a pace of its own.
        """


def clock_rate(clock: Clock) -> float:
    """Clock seconds per real second, to express real durations (a lease, a log pace) in clock time.

    A clock that does not move with real time has no rate: 1, so the durations its tests set are its own.
    """
    wall = clock.wall_seconds(1.0)
    return 1.0 / wall if wall > 0 else 1.0


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wall_seconds(self, clock_seconds: float) -> float:
        return max(clock_seconds, 0.0)


class FakeClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly.

    Thread-safe, so a worker thread and a test can share it.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def wall_seconds(self, clock_seconds: float) -> float:
        # Real time never moves this clock: only the test (or ``sleep``) does.
        return 0.0


class CompressedClock:
    """Campaign time that runs ``speed`` times faster than wall time, from ``start``.

    The demo uses it to play weeks of a campaign in about a minute; ``anchor`` restarts it at
    ``start``, so a slow start-up does not eat campaign time.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("CompressedClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got: {speed}")
        self.start = start.astimezone(UTC)
        self._speed = speed
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        """Campaign seconds per wall second."""
        return self._speed

    def anchor(self) -> float:
        """Campaign time is ``start`` again from now; the ``time.monotonic()`` of that instant."""
        self._t0 = time.monotonic()
        return self._t0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self._speed)

    def wall_seconds(self, clock_seconds: float) -> float:
        return max(clock_seconds, 0.0) / self._speed
