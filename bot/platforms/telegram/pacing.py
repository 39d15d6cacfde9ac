"""Pacing within Telegram's published flood limits, shared by every account (channel) of one bot token.

https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this: "avoid sending more than
one message per second" in a chat, "no more than 20 messages per minute" to one group, and "not more than
about 30 messages per second" for bulk notifications. Telegram applies them per bot, so channels posted by one
token share the 30 a second; each channel has its own 20 a minute. An album counts one message per item.

Several workers on one ledger: each paces within an equal share of both limits (``Pacer.workers``, the live
workers the ledger counts), so together they stay within them; a worker joining or leaving moves the share
within seconds.

In-flight accounting: the server counts a message at some moment between our send and its answer (under
load, up to a second or more after the send), so a message occupies its windows from when it is sent until
its answer arrives plus the window's period. At any moment at most ``limit`` messages occupy a window.
That is enough: the messages the server counts in any period [t, t + period) were all sent before
t + period and answered after t, so each occupies the moment just before t + period; there are at most
``limit`` of them, whatever the latency and however the two clocks differ. A message not yet answered
occupies its window with no known end, so a send that needs its place is *blocked* until an answer comes.

``reserve`` never blocks: it reserves the earliest start it can compute and says how long to wait, or says
the send is blocked behind unanswered messages (nothing reserved), or too far off (beyond ``max_wait``:
nothing reserved, for the publisher to retry). ``answered`` ends a send's flight; ``wait_for_answer`` lets
a blocked sender sleep until one does. Reservations are made in the order senders get the lock.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

OVERALL = (30, 1.0)  # messages per second per bot (FAQ, "about 30")
PER_CHANNEL = (20, 60.0)  # messages per minute per group or channel (FAQ)
UNANSWERED = math.inf  # the end of a send's occupancy before its answer arrives


@dataclass
class _Window:
    limit: int
    period: float
    ends: dict[int, tuple[int, float]] = field(default_factory=dict)  # ticket -> (messages, end of occupancy)

    def earliest(self, after: float, n: int) -> float:
        """The first time >= ``after`` when ``n`` more messages fit (``inf``: only after an answer)."""
        need = min(n, self.limit)  # an album larger than the window waits for an empty one
        busy = sorted((end, count) for count, end in self.ends.values() if end > after)
        occupied = sum(count for _, count in busy)
        at = after
        for end, count in busy:
            if occupied + need <= self.limit:
                break
            occupied -= count
            at = end
        return at if occupied + need <= self.limit else math.inf

    def forget(self, now: float) -> None:
        for ticket in [t for t, (_, end) in self.ends.items() if end <= now]:
            del self.ends[ticket]


@dataclass(frozen=True)
class Slot:
    """What ``reserve`` decided: a ticket and the seconds to wait before sending, or why nothing was reserved."""

    ticket: int | None  # None: nothing reserved
    wait: float  # seconds until the send may start (inf when blocked behind unanswered sends)

    @property
    def blocked(self) -> bool:
        return self.ticket is None and math.isinf(self.wait)


class Pacer:
    """The flood-limit windows of one bot token: one overall, one per channel."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        # Workers sharing a ledger post for the same bot: each paces within its share of the limits
        # (Telegram counts per bot, and in-flight accounting cannot see another process's sends).
        self.workers: Callable[[], int] = lambda: 1
        self._answers = threading.Condition(threading.Lock())
        self._overall = _Window(*OVERALL)
        self._channels: dict[str, _Window] = {}
        self._tickets = itertools.count(1)
        self._held: dict[int, str] = {}  # ticket -> channel, for tickets not yet answered

    def reserve(self, channel: str, n: int, max_wait: float) -> Slot:
        """Reserve ``n`` messages to ``channel`` at the earliest start the windows allow.

        Nothing is reserved when the start cannot be known yet (unanswered sends hold the places: ``blocked``)
        or is more than ``max_wait`` away (``wait`` says how far, for the publisher's retry).
        """
        share = max(1, self.workers())
        with self._answers:
            now = self._now()
            window = self._channels.setdefault(channel, _Window(*PER_CHANNEL))
            self._overall.limit = max(1, OVERALL[0] // share)
            window.limit = max(1, PER_CHANNEL[0] // share)
            self._overall.forget(now)
            window.forget(now)
            at = now
            while True:  # each window's earliest time only grows with ``after``: it settles in a few rounds
                later = max(self._overall.earliest(at, n), window.earliest(at, n))
                if later == at or math.isinf(later):
                    at = later
                    break
                at = later
            wait = at - now
            if math.isinf(at) or wait > max_wait:
                return Slot(None, wait)
            ticket = next(self._tickets)
            self._overall.ends[ticket] = (n, UNANSWERED)
            window.ends[ticket] = (n, UNANSWERED)
            self._held[ticket] = channel
            return Slot(ticket, wait)

    def answered(self, ticket: int) -> None:
        """The send of ``ticket`` has its answer (or failed): its places free one period from now."""
        with self._answers:
            channel = self._held.pop(ticket, None)
            if channel is None:
                return
            end = self._now()
            for window in (self._overall, self._channels[channel]):
                n, _ = window.ends[ticket]
                window.ends[ticket] = (n, end + window.period)
            self._answers.notify_all()

    def wait_for_answer(self, timeout: float) -> bool:
        """Sleep until some send is answered, at most ``timeout`` seconds (real time); whether one was."""
        with self._answers:
            return self._answers.wait(timeout=max(0.0, timeout))

    def in_flight(self) -> int:
        """Sends reserved and not yet answered."""
        with self._answers:
            return len(self._held)


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
