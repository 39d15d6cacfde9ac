"""Mastodon streaming in the tracker's run loop, and its fallback to polling, against the Mastodon sandbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from tests.resharing.harness import World, base_policy, fresh, reshared, rows

pytestmark = pytest.mark.slow


def eventually(check, timeout: float = 15.0):
    """Waits for another thread's work (not for a schedule: the clock is a FakeClock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the tracker thread")


def running(world: World):
    tracker = world.tracker()
    tracker.stream_connect_timeout = 1.0
    stop = threading.Event()
    thread = threading.Thread(target=tracker.run, args=(stop,), daemon=True)
    thread.start()
    return tracker, stop, thread


def tracking_world(sandbox, tmp_path, clock, *, streaming: bool = True) -> World:
    """One of our accounts tracking a fresh tag every 30 s, with the instance streaming or not."""
    sandbox.set_streaming(streaming)
    return World(
        sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], base_policy(), interval=30
    )


def searches(sandbox, tag: str) -> int:
    return sum(1 for r in sandbox.requests() if r["path"].endswith(f"/timelines/tag/{tag}"))


def test_streamed_post_is_decided_and_reshared_without_polling(mastodon_sandbox, tmp_path, clock) -> None:
    """With streaming on, a new tagged post is decided and reshared from the stream, with no extra poll; stop ends its lane."""
    sandbox = mastodon_sandbox
    world = tracking_world(sandbox, tmp_path, clock)
    tracker, stop, thread = running(world)
    try:
        # The stream starts before the first poll; that poll is the only one expected.
        eventually(lambda: tracker.feeds[0].connected.is_set() and searches(sandbox, world.tag) == 1)
        polls = searches(sandbox, world.tag)
        remote_id = world.post(sandbox.create_account(fresh("fan")), f"Live for Andrei #{world.tag}", "s", None)
        eventually(lambda: [r.status for r in rows(world)] == ["done"])
        assert reshared(world) == [remote_id]
        assert searches(sandbox, world.tag) == polls
        assert [(r.remote_id, r.status, r.reason) for r in rows(world)] == [(remote_id, "done", "tagged")]
    finally:
        stop.set()
        thread.join(10)
        world.close()
    assert not thread.is_alive()
    assert tracker._lanes and not any(lane.is_alive() for lane in tracker._lanes)


def test_instance_without_streaming_falls_back_to_polling(mastodon_sandbox, tmp_path, clock) -> None:
    """When the instance does not stream, the tracker logs the fallback and finds posts by polling."""
    sandbox = mastodon_sandbox
    world = tracking_world(sandbox, tmp_path, clock, streaming=False)
    try:
        with capture_logs() as logs:
            tracker, stop, thread = running(world)
            try:
                eventually(lambda: any(e["event"] == "stream_fell_back" for e in logs))
                remote_id = world.post(sandbox.create_account(fresh("fan")), f"Polled #{world.tag}", "s", None)
                clock.advance(timedelta(seconds=31).total_seconds())
                eventually(lambda: [r.status for r in rows(world)] == ["done"])
                assert reshared(world) == [remote_id]
            finally:
                stop.set()
                thread.join(10)
        fetched = [e for e in logs if e["event"] == "mentions_fetched"]
        assert any(e["found"] == 1 for e in fetched)
        assert not thread.is_alive()
    finally:
        sandbox.set_streaming(True)
        world.close()


def test_start_tracking_runs_in_a_thread_and_skips_accounts_without_secrets(x_sandbox, tmp_path, clock) -> None:
    """The worker's entry point starts a tracking thread for accounts it can build and logs the others once."""
    from bot.core.errors import MissingSecret
    from bot.resharing.tracker import start_tracking
    from tests.resharing.harness import adapter_for

    ours = [x_sandbox.create_account(fresh("index")), x_sandbox.create_account(fresh("nosecret"))]
    world = World(x_sandbox, tmp_path, clock, fresh("Free"), ours, base_policy())

    def get_adapter(account):
        if account.id == ours[1].id:
            raise MissingSecret([f"account {account.id}: environment variable X_NOSECRET is not set"])
        adapter = adapter_for(ours[0])
        world.adapters.append(adapter)
        return adapter

    stop = threading.Event()
    try:
        with capture_logs() as logs:
            tracker, thread = start_tracking(world.campaign, world.engine, get_adapter, clock, "w1", stop)
            eventually(lambda: any(e["event"] == "mentions_fetched" for e in logs))
            remote_id = world.post(x_sandbox.create_account(fresh("fan")), f"Free them #{world.tag}", "s", None)
            clock.advance(300)
            eventually(lambda: [r.status for r in rows(world)] == ["done"])
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        assert reshared(world) == [remote_id]
        unavailable = [e for e in logs if e["event"] == "tracking_account_unavailable"]
        assert [e["account"] for e in unavailable] == [ours[1].id] and "X_NOSECRET" in unavailable[0]["reason"]
        assert [f.accounts for f in tracker.feeds] == [[ours[0].id]]
    finally:
        stop.set()
        world.close()


def test_streamed_post_is_reshared_while_the_loop_waits_on_another_networks_poll(
    mastodon_sandbox, x_sandbox, tmp_path, clock
) -> None:
    """A post on the Mastodon stream is reshared on the stream's lane while the run loop is held in a slow X search."""
    mastodon_sandbox.set_streaming(True)
    ours = [mastodon_sandbox.create_account(fresh("index")), x_sandbox.create_account(fresh("index"))]
    world = World(mastodon_sandbox, tmp_path, clock, fresh("Free"), ours, base_policy(), interval=30)
    x_searches = lambda: sum(1 for r in x_sandbox.requests() if "search/recent" in r["path"])
    try:
        with capture_logs() as logs:
            tracker, stop, thread = running(world)
            x_fetched = lambda: sum(1 for e in logs if e["event"] == "mentions_fetched" and e["platform"] == "x")
            try:
                stream = next(f for f in tracker.feeds if f.platform == "mastodon")
                eventually(lambda: stream.connected.is_set() and x_fetched() == 1)
                searched = x_searches()
                x_sandbox.fail_next("timeout", retry_after=6.0, path="search/recent")  # X answers 6 s late
                clock.advance(31)
                eventually(lambda: x_searches() > searched)  # the loop is now waiting for X's answer
                remote_id = world.post(mastodon_sandbox.create_account(fresh("fan")), f"Now #{world.tag}", "s", None)
                eventually(lambda: [r.status for r in rows(world)] == ["done"])
                assert x_fetched() == 1, "the reshare waited for the X poll"
                assert reshared(world) == [remote_id]
                eventually(lambda: x_fetched() == 2)
            finally:
                stop.set()
                thread.join(10)
        assert not thread.is_alive()
    finally:
        world.close()


def test_stream_keeps_serving_after_a_reload(mastodon_sandbox, tmp_path, clock) -> None:
    """After a reload replaces the feeds, the running stream's posts are still decided and reshared."""
    sandbox = mastodon_sandbox
    world = tracking_world(sandbox, tmp_path, clock)
    tracker, stop, thread = running(world)
    try:
        eventually(lambda: tracker.feeds[0].connected.is_set())
        old = tracker.feeds[0]
        tracker.reload(world.campaign)
        assert tracker.feeds[0] is not old and tracker.feeds[0].streaming and tracker.feeds[0].connected.is_set()
        remote_id = world.post(sandbox.create_account(fresh("fan")), f"After reload #{world.tag}", "s", None)
        eventually(lambda: [r.status for r in rows(world)] == ["done"])
        assert reshared(world) == [remote_id]
    finally:
        stop.set()
        thread.join(10)
        world.close()
    assert not thread.is_alive()
