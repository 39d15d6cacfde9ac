"""The Telegram pacer on an injected clock: in-flight accounting keeps what the server counts within its limits."""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left

from bot.platforms.telegram.pacing import OVERALL, PER_CHANNEL, Pacer


def test_fifty_channels_at_once_start_thirty_and_the_rest_wait_for_answers() -> None:
    """Thirty sends start at once; the 31st is blocked until an answer, then starts one second after it."""
    now = [0.0]
    pacer = Pacer(lambda: now[0])
    slots = [pacer.reserve(f"@c{n}", 1, 15.0) for n in range(30)]
    assert [s.wait for s in slots] == [0.0] * 30 and all(s.ticket is not None for s in slots)
    blocked = pacer.reserve("@c30", 1, 15.0)
    assert blocked.blocked and blocked.ticket is None and pacer.in_flight() == 30
    now[0] = 0.4  # the first answer arrives: its place frees at 0.4 + 1 s
    first = slots[0].ticket
    assert first is not None
    pacer.answered(first)
    after = pacer.reserve("@c30", 1, 15.0)
    assert after.ticket is not None and math.isclose(after.wait, 1.0)
    assert pacer.reserve("@c31", 1, 15.0).blocked  # the other 29 (and the new one) are still in flight


def test_a_channel_takes_twenty_a_minute_counted_from_the_answers() -> None:
    """A channel's 21st message waits until a minute after the first answer: too long, so nothing is reserved."""
    now = [0.0]
    pacer = Pacer(lambda: now[0])
    for _ in range(20):
        slot = pacer.reserve("@c", 1, 15.0)
        assert slot.ticket is not None and slot.wait == 0.0
        now[0] += 0.5  # each answered half a second after its send
        pacer.answered(slot.ticket)
    late = pacer.reserve("@c", 1, 15.0)
    assert late.ticket is None and not late.blocked and math.isclose(late.wait, 60.5 - now[0])
    assert pacer.reserve("@other", 1, 15.0).wait == 0.0  # another channel is not held back
    now[0] = 60.5
    assert pacer.reserve("@c", 1, 15.0).wait == 0.0


def test_album_counts_one_message_per_item() -> None:
    """A 10-image album takes 10 of a channel's 20 a minute and 10 of the bot's 30 a second."""
    now = [0.0]
    pacer = Pacer(lambda: now[0])
    tickets = [pacer.reserve("@c", 10, 15.0).ticket for _ in range(2)]
    assert None not in tickets
    assert pacer.reserve("@c", 1, 15.0).blocked  # 20 unanswered in the channel
    assert pacer.reserve("@d", 10, 15.0).ticket is not None  # the bot's 30th message
    assert pacer.reserve("@e", 1, 15.0).blocked


def test_what_the_server_counts_never_exceeds_its_limits_whatever_the_latency() -> None:
    """Simulated: 240 sends to 12 channels, the server counting each at a random moment between send and
    answer (latency up to 2 s); in every second it counts at most 30, in every minute per channel at most 20."""
    rng = random.Random(17)
    now = [0.0]
    pacer = Pacer(lambda: now[0])
    waiting = [(f"@c{i % 12}", 1 if i % 7 else 3) for i in range(240)]  # every 7th an album of three
    # (time, order, ticket, request): an answer (the ticket), or a request's retry when it was told to wait
    events: list[tuple[float, int, int, tuple[str, int] | None]] = []
    seen: list[tuple[float, str, int]] = []  # what the server counted: (when, channel, messages)
    order = 0
    while waiting or events:
        still = []
        for channel, n in waiting:
            slot = pacer.reserve(channel, n, 15.0)
            order += 1
            if slot.blocked:
                still.append((channel, n))
            elif slot.ticket is None:  # too far off: the publisher comes back when told
                heapq.heappush(events, (now[0] + slot.wait, order, 0, (channel, n)))
            else:
                start, latency = now[0] + slot.wait, rng.uniform(0.01, 2.0)
                seen.append((start + rng.uniform(0.0, latency), channel, n))
                heapq.heappush(events, (start + latency, order, slot.ticket, None))
        waiting = still
        if events:
            now[0], _, ticket, request = heapq.heappop(events)
            if ticket:
                pacer.answered(ticket)
            if request:
                waiting.append(request)
    assert sum(n for _, _, n in seen) == sum(1 if i % 7 else 3 for i in range(240))
    assert _most_in_any_period(seen, OVERALL[1]) <= OVERALL[0]
    for channel in {c for _, c, _ in seen}:
        assert _most_in_any_period([s for s in seen if s[1] == channel], PER_CHANNEL[1]) <= PER_CHANNEL[0]
    assert _most_in_any_period(seen, OVERALL[1]) >= 20  # and it is not paced into idleness


def _most_in_any_period(seen: list[tuple[float, str, int]], period: float) -> int:
    """The most messages counted within any half-open period [t, t + period) (as the sandbox's window counts)."""
    seen = sorted(seen)
    times = [t for t, _, _ in seen]
    counts = [0]
    for _, _, n in seen:
        counts.append(counts[-1] + n)
    return max(counts[bisect_left(times, t + period)] - counts[i] for i, t in enumerate(times))


def test_three_workers_each_pace_within_a_third_of_the_bots_limits() -> None:
    """With three live workers on the ledger, one worker starts ten sends a second and six to a channel a minute."""
    now = [0.0]
    live = [3]
    pacer = Pacer(lambda: now[0])
    pacer.workers = lambda: live[0]
    slots = [pacer.reserve(f"@c{n}", 1, 15.0) for n in range(11)]
    assert [s.ticket is not None for s in slots] == [True] * 10 + [False]
    assert slots[10].blocked  # 10 of the bot's 30 a second are this worker's
    for slot in slots[:10]:
        assert slot.ticket is not None
        pacer.answered(slot.ticket)
    now[0] = 1.0
    channel = [pacer.reserve("@one", 1, 0.0) for _ in range(7)]
    assert [s.ticket is not None for s in channel] == [True] * 6 + [False]  # 20 a minute // 3
    live[0] = 1  # the others stopped: the whole limits are this worker's again at its next look
    assert pacer.reserve("@one", 1, 0.0).ticket is not None
