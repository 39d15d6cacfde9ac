"""Mastodon streaming in the tracker's run loop, and its fallback to polling, against the Mastodon sandbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from tests.tracking.harness import World, fresh
from tests.tracking.test_modes import base_policy, reshared, rows

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


def searches(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if "/timelines/tag/" in r["path"])


def test_streamed_post_is_decided_and_reshared_without_polling(mastodon_sandbox, tmp_path, clock) -> None:
    """With streaming on, a new tagged post is decided and reshared from the stream, with no extra poll."""
    sandbox = mastodon_sandbox
    sandbox.set_streaming(True)
    world = World(sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))],
                  base_policy(), interval=30)
    tracker, stop, thread = running(world)
    try:
        eventually(lambda: tracker.feeds[0].connected.is_set())
        polls = searches(sandbox)
        remote_id = world.post(sandbox.create_account(fresh("fan")), f"Live for Andrei #{world.tag}", "s", None)
        eventually(lambda: [r.status for r in rows(world)] == ["done"])
        assert reshared(world) == [remote_id]
        assert searches(sandbox) == polls
        assert [(r.remote_id, r.status, r.reason) for r in rows(world)] == [(remote_id, "done", "tagged")]
    finally:
        stop.set()
        thread.join(10)
        world.close()
    assert not thread.is_alive()


def test_instance_without_streaming_falls_back_to_polling(mastodon_sandbox, tmp_path, clock) -> None:
    """When the instance does not stream, the tracker logs the fallback and finds posts by polling."""
    sandbox = mastodon_sandbox
    sandbox.set_streaming(False)
    world = World(sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))],
                  base_policy(), interval=30)
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
