"""Caps and spacing hold when a stream's lane and the run loop decide and reshare for one account at once."""

from __future__ import annotations

import threading
from collections import Counter

from tests.resharing.harness import World, base_policy, fresh, reshared, rows

THREADS = 6


def _together(work) -> None:
    """Runs ``work(i)`` on THREADS threads released at the same moment."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001  (reported by the test below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def _mentions(world: World, tracker, n: int):
    for i in range(n):
        world.post(world.sandbox.create_account(fresh("fan")), f"Free them {i} #{world.tag}", "supporter", None)
    world.sandbox.index()
    feed = tracker.feeds[0]
    return tracker.adapters[feed.reader].fetch_mentions(list(feed.tags), None).mentions


def test_concurrent_decisions_for_one_account_respect_the_hour_cap(mastodon_sandbox, tmp_path, clock) -> None:
    """Six threads deciding posts for one account at the same moment schedule no more than max_per_hour."""
    sandbox = mastodon_sandbox
    world = World(
        sandbox,
        tmp_path,
        clock,
        fresh("Free"),
        [sandbox.create_account(fresh("index"))],
        base_policy(max_per_hour=3, mode="auto"),
    )
    tracker = world.tracker()
    try:
        mentions = _mentions(world, tracker, 2 * THREADS)
        assert len(mentions) == 2 * THREADS
        feed, now = tracker.feeds[0], clock.now()
        _together(lambda i: tracker._decide(feed, mentions[2 * i : 2 * i + 2], now, Counter(), None, None))
        got = Counter((r.status, r.reason) for r in rows(world))
        assert got == {("pending", "tagged"): 3, ("skipped", "cap_hour"): 2 * THREADS - 3}
    finally:
        world.close()


def test_concurrent_drains_of_one_account_reshare_once_within_the_spacing(mastodon_sandbox, tmp_path, clock) -> None:
    """Six threads draining one account with many posts waiting make one reshare, as the spacing demands."""
    sandbox = mastodon_sandbox
    world = World(
        sandbox,
        tmp_path,
        clock,
        fresh("Free"),
        [sandbox.create_account(fresh("index"))],
        base_policy(max_per_hour=20, mode="auto"),
    )
    tracker = world.tracker()
    try:
        mentions = _mentions(world, tracker, THREADS)
        tracker._decide(tracker.feeds[0], mentions, clock.now(), Counter(), None, None)
        assert [r.status for r in rows(world)] == ["pending"] * THREADS
        account = world.ours[0].id
        _together(lambda i: tracker._drain(account))
        assert Counter(r.status for r in rows(world)) == {"done": 1, "pending": THREADS - 1}
        assert len(reshared(world)) == 1
    finally:
        world.close()
