"""Pacing within Telegram's published flood limits, shared by every account (channel) of one bot token.

https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this: "avoid sending more than
one message per second" in a chat, "no more than 20 messages per minute" to one group, and "not more than
about 30 messages per second" for bulk notifications. Telegram applies them per bot, so channels posted by one
token share the 30 a second; each channel has its own 20 a minute. An album counts one message per item.

Each send reserves its place first (FIFO: a later send never jumps an earlier one) and is told how long
to wait; waits beyond ``max_wait`` are not reserved and become ``RateLimited`` for the publisher to retry.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

OVERALL = (30, 1.0)  # messages per second per bot (FAQ, "about 30")
PER_CHANNEL = (20, 60.0)  # messages per minute per group or channel (FAQ)
# Our clock and Telegram's differ by network jitter: a message sent at the end of our window may land
# inside Telegram's. A little slack on every window costs under 10% of the rate and spares the 429s.
SLACK = 0.1


@dataclass
class _Window:
    limit: int
    period: float
    times: deque[float] = field(default_factory=deque)

    def earliest(self, after: float, n: int) -> float:
        """The first time >= ``after`` when ``n`` more messages fit, after every reservation made so far."""
        at = max(after, self.times[-1]) if self.times else after
        over = len(self.times) + min(n, self.limit) - self.limit
        if over > 0:
            at = max(at, self.times[over - 1] + self.period * (1 + SLACK))
        return at

    def reserve(self, at: float, n: int, now: float) -> None:
        while self.times and self.times[0] <= now - self.period * (1 + SLACK):
            self.times.popleft()
        self.times.extend([at] * n)


class Pacer:
    """The flood-limit windows of one bot token: one overall, one per channel."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._lock = threading.Lock()
        self._overall = _Window(*OVERALL)
        self._channels: dict[str, _Window] = {}

    def reserve(self, channel: str, n: int, max_wait: float) -> float:
        """Reserve ``n`` messages to ``channel``; the seconds to wait before sending them.

        When the wait would exceed ``max_wait`` nothing is reserved and the wait is returned negated,
        so the caller can say how long the publisher should stay away.
        """
        with self._lock:
            now = self._now()
            window = self._channels.setdefault(channel, _Window(*PER_CHANNEL))
            at = now
            for _ in range(3):  # each window's earliest time only grows with ``after``: two rounds settle it
                at = max(self._overall.earliest(at, n), window.earliest(at, n))
            wait = at - now
            if wait > max_wait:
                return -wait
            self._overall.reserve(at, n, now)
            window.reserve(at, n, now)
            return wait


_PACERS: dict[str, Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(base_url: str, token: str, monotonic: Callable[[], float] = time.monotonic) -> Pacer:
    """The process's pacer for this bot (keyed by a digest: the token itself is kept nowhere new)."""
    key = hashlib.sha256(f"{base_url}\0{token}".encode()).hexdigest()
    with _PACERS_LOCK:
        pacer = _PACERS.get(key)
        if pacer is None:
            pacer = _PACERS[key] = Pacer(monotonic)
        return pacer
