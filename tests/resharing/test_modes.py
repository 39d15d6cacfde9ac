"""Review and dry-run modes, the tracker lease, reshares across accounts, failures: against the X sandbox."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.cli import review
from bot.ledger.reshares import ReshareLedger
from tests.ledger.databases import DATABASES, fresh_url
from tests.resharing.harness import fresh, make_world, reshared, rows, supporters_post

pytestmark = pytest.mark.slow


def test_x_one_search_call_per_poll_for_all_tags(x_sandbox, tmp_path, clock) -> None:
    """Each poll sends exactly one recent-search request covering every tracked tag, and logs the read count."""
    other = fresh("Irina")
    world = make_world(x_sandbox, tmp_path, clock, extra_tags=[other])
    try:
        with capture_logs() as logs:
            tracker = world.tracker()
            start = len(x_sandbox.requests())
            tracker.poll_once()
            for _ in range(3):
                supporters_post(world, 2)
                supporters_post(world, 2, other)
                world.step(tracker)
        searches = [r for r in x_sandbox.requests()[start:] if r["path"].endswith("/2/tweets/search/recent")]
        assert len(searches) == 4
        for request in searches:
            query = str(request["query"])
            assert world.tag in query and other in query
        fetched = [e for e in logs if e["event"] == "mentions_fetched"]
        assert [e["reads"] for e in fetched] == [1, 2, 3, 4]
        assert [e["found"] for e in fetched] == [0, 4, 4, 4]
    finally:
        world.close()


def test_review_mode_waits_for_staff(x_sandbox, tmp_path, clock, capsys) -> None:
    """In review mode candidates wait in the ledger; approved ones are reshared by the tracker, rejected ones never."""
    world = make_world(x_sandbox, tmp_path, clock, mode="review")
    try:
        tracker = world.tracker()
        tracker.poll_once()
        posted = supporters_post(world, 4)
        world.post(
            world.sandbox.create_account(fresh("troll")), f"Lukashenka forever #{world.tag}", "t", "blocked_word"
        )
        with capture_logs() as logs:
            world.step(tracker)
            world.step(tracker)
        assert reshared(world) == []
        queued = [r for r in rows(world) if r.status == "queued"]
        assert sorted(r.remote_id for r in queued) == sorted(posted)
        assert {e["remote_id"] for e in logs if e["event"] == "reshare_queued"} == set(posted)

        ledger = ReshareLedger(world.engine, world.campaign.name)
        listing = review.render(review.waiting(ledger), clock.now())
        assert all(str(r.id) in listing for r in queued) and "Lukashenka" not in listing
        approve, reject = [queued[0].id, queued[1].id], [queued[2].id]
        with capture_logs() as staff:
            assert review.decide(ledger, "approve", approve, clock.now()) == []
            assert review.decide(ledger, "reject", reject, clock.now()) == []
            again = review.decide(ledger, "approve", [reject[0], 99999], clock.now())
        assert [e["event"] for e in staff] == ["reshare_approved"] * 2 + ["reshare_rejected"]
        assert "not waiting for review (status: rejected)" in again[0] and "no such reshare candidate" in again[1]
        for _ in range(4):
            world.step(tracker, 900)
        assert sorted(reshared(world)) == sorted([queued[0].remote_id, queued[1].remote_id])
        status = {r.id: r.status for r in rows(world)}
        assert status[reject[0]] == "rejected" and status[queued[3].id] == "queued"
    finally:
        world.close()


def test_review_command_line(x_sandbox, tmp_path, clock, capsys, monkeypatch) -> None:
    """`bot review` lists waiting candidates and `bot review approve ID` approves them, with exit codes."""
    world = make_world(x_sandbox, tmp_path, clock, mode="review")
    try:
        monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
        tracker = world.tracker()
        tracker.poll_once()
        posted = supporters_post(world, 2)
        world.step(tracker)
        args = argparse.Namespace(campaign=Path(tmp_path / "no-campaign"), action="list", ids=[], json=False)
        assert review.main(args, clock) == 0
        out = capsys.readouterr().out
        assert "2 reshare candidate(s) waiting for review" in out
        ids = [r.id for r in rows(world)]
        args.action, args.ids = "approve", ids[:1]
        assert review.main(args, clock) == 0
        assert "approved 1 candidate(s)" in capsys.readouterr().out
        args.ids = ids[:1]
        assert review.main(args, clock) == 1
        assert f"ID {ids[0]}: not waiting for review (status: pending)" in capsys.readouterr().out
        world.step(tracker, 900)
        assert reshared(world) == [posted[0]]
    finally:
        world.close()


def test_dry_run_reshares_nothing_and_says_what_it_would(x_sandbox, tmp_path, clock) -> None:
    """In dry-run mode nothing is reshared; each post that would have been is logged and kept in the ledger."""
    world = make_world(x_sandbox, tmp_path, clock, mode="dry-run")
    try:
        tracker = world.tracker()
        tracker.poll_once()
        posted = supporters_post(world, 3)
        with capture_logs() as logs:
            for _ in range(4):
                world.step(tracker, 900)
        assert reshared(world) == []
        would = [e for e in logs if e["event"] == "reshare_would_have"]
        assert sorted(e["remote_id"] for e in would) == sorted(posted)
        assert all(e["url"] and e["reason"] == "tagged" for e in would)
        assert {r.status for r in rows(world)} == {"would_have"}
    finally:
        world.close()


@pytest.mark.parametrize("db", DATABASES)
def test_only_the_lease_holder_tracks(x_sandbox, tmp_path, clock, request, db: str) -> None:
    """Two workers on one ledger (SQLite, PostgreSQL): only one reads and reshares; the other takes over once the lease expires."""
    world = make_world(x_sandbox, tmp_path, clock, db_url=fresh_url(db, request, tmp_path))
    try:
        first, second = world.tracker("worker-a"), world.tracker("worker-b")
        start = len(x_sandbox.requests())
        with capture_logs() as logs:
            first.poll_once()
            second.poll_once()
            supporters_post(world, 1)
            clock.advance(300)
            first.poll_once()
            second.poll_once()
        searches = [r for r in x_sandbox.requests()[start:] if r["path"].endswith("/search/recent")]
        assert len(searches) == 2
        assert len(reshared(world)) == 1
        assert [e["owner"] for e in logs if e["event"] == "tracking_lease_taken"] == ["worker-a"]
        posted = supporters_post(world, 1)  # worker-a died here without releasing its lease
        clock.advance(200)
        second.poll_once()
        clock.advance(1000)
        second.poll_once()
        assert posted[0] in reshared(world)
    finally:
        world.close()


@pytest.mark.parametrize("across", [False, True])
def test_one_reshare_per_platform_unless_across_accounts(x_sandbox, tmp_path, clock, across: bool) -> None:
    """Two campaign accounts on X reshare a post once between them, or each once with across_accounts."""
    world = make_world(x_sandbox, tmp_path, clock, n_ours=2, across_accounts=across)
    try:
        tracker = world.tracker()
        tracker.poll_once()
        posted = supporters_post(world, 3)
        for _ in range(6):
            world.step(tracker, 900)
        a, b = reshared(world, world.ours[0]), reshared(world, world.ours[1])
        if across:
            assert sorted(a) == sorted(b) == sorted(posted)
        else:
            assert sorted(a + b) == sorted(posted)
    finally:
        world.close()


def test_failed_reshares_retry_then_give_up_with_reason(x_sandbox, tmp_path, clock) -> None:
    """A retryable failure is retried later; a permanent one is recorded failed with its reason, never retried."""
    world = make_world(x_sandbox, tmp_path, clock, max_per_hour=60)
    try:
        tracker = world.tracker()
        tracker.poll_once()
        with capture_logs() as logs:
            x_sandbox.fail_next("unavailable", path="retweets")
            [flaky] = supporters_post(world, 1)
            world.step(tracker, 60)  # 503: deferred
            for _ in range(3):
                world.step(tracker, 300)
            x_sandbox.fail_next("rejected", path="retweets")
            [bad] = supporters_post(world, 1)
            for _ in range(3):
                world.step(tracker, 300)
        events = [
            (e["event"], e["remote_id"])
            for e in logs
            if e["event"].startswith("reshare_") and e["event"] not in ("reshare_scheduled",)
        ]
        assert events == [("reshare_deferred", flaky), ("reshare_done", flaky), ("reshare_failed", bad)]
        assert reshared(world) == [flaky]
        failed = [r for r in rows(world) if r.status == "failed"]
        assert [(r.remote_id, r.reason) for r in failed] == [(bad, "content_rejected")]
    finally:
        world.close()


def test_reshare_interrupted_by_a_crash_is_not_repeated(x_sandbox, tmp_path, clock) -> None:
    """A reshare whose worker died mid-call is recorded failed as uncertain and never tried again."""
    world = make_world(x_sandbox, tmp_path, clock)
    try:
        tracker = world.tracker("worker-a")
        tracker.poll_once()
        posted = supporters_post(world, 1)
        world.step(tracker)
        ledger = ReshareLedger(world.engine, world.campaign.name)
        row = rows(world)[0]
        assert row.status == "done"
        # What a crash between the platform call and the ledger write leaves behind:
        ledger.transition(row.id, ["done"], status="resharing", not_before=clock.now())
        clock.advance(600)
        with capture_logs() as logs:
            world.tracker("worker-b").poll_once()
        assert rows(world)[0].status == "failed" and rows(world)[0].reason == "uncertain_outcome"
        assert [e["event"] for e in logs if e.get("remote_id") == posted[0]] == ["reshare_failed"]
        assert reshared(world) == posted
    finally:
        world.close()


def test_slow_reshare_in_this_process_is_not_taken_for_a_crashed_one(x_sandbox, tmp_path, clock) -> None:
    """A reshare still in flight in this process outlives the stuck-row recovery and is recorded done, never failed."""
    world = make_world(x_sandbox, tmp_path, clock)
    try:
        tracker = world.tracker()
        tracker.poll_once()
        posted = supporters_post(world, 1)
        x_sandbox.fail_next("timeout", retry_after=2.0, path="retweets")  # X takes it, answers 2 s late
        with capture_logs() as logs:
            slow = threading.Thread(target=world.step, args=(tracker,))
            slow.start()
            deadline = time.monotonic() + 10
            while [r.status for r in rows(world)] != ["resharing"] and time.monotonic() < deadline:
                time.sleep(0.02)  # waits for the other thread's call to start, not for a schedule
            assert [r.status for r in rows(world)] == ["resharing"]
            clock.advance(600)  # far past the lease: a row left by a dead worker would be given up now
            tracker.resharer.recover_stuck(clock.now(), timedelta(minutes=3))
            assert [r.status for r in rows(world)] == ["resharing"]
            slow.join(15)
        assert [(r.status, r.reason) for r in rows(world)] == [("done", "tagged")]
        assert [e["event"] for e in logs if e.get("remote_id") == posted[0]] == ["reshare_scheduled", "reshare_done"]
        assert reshared(world) == posted
    finally:
        world.close()


def test_flood_is_sampled_fairly_and_spread_out(x_sandbox, tmp_path, clock) -> None:
    """A flood from one author in a single poll yields one reshare of it, oldest first, beside other authors, never a burst."""
    world = make_world(x_sandbox, tmp_path, clock)
    try:
        tracker = world.tracker()
        tracker.poll_once()
        flooder = x_sandbox.create_account(fresh("flood"))
        flood = [world.post(flooder, f"Look at me {n} #{world.tag}", "flood", None) for n in range(40)]
        others = supporters_post(world, 5)
        world.step(tracker)
        assert len(reshared(world)) == 1  # one per poll, not a burst
        for _ in range(12):
            world.step(tracker, 300)
        done = sorted((r for r in rows(world) if r.status == "done"), key=lambda r: r.acted_at)
        assert [r.remote_id for r in done] == [flood[0], *others[:3]]
        assert all(b.acted_at - a.acted_at >= timedelta(minutes=15) for a, b in zip(done, done[1:]))
        reasons = Counter(r.reason for r in rows(world) if r.status == "skipped")
        assert reasons == {"author_cooldown": 39, "cap_hour": 2}
    finally:
        world.close()


def test_a_post_waiting_more_than_a_day_goes_stale(x_sandbox, tmp_path, clock) -> None:
    """An approved post that could not go out within a day is skipped as stale, not reshared late."""
    world = make_world(x_sandbox, tmp_path, clock, mode="review")
    try:
        tracker = world.tracker()
        tracker.poll_once()
        supporters_post(world, 1)
        world.step(tracker)
        ledger = ReshareLedger(world.engine, world.campaign.name)
        [row] = rows(world)
        assert review.decide(ledger, "approve", [row.id], clock.now()) == []
        clock.advance(timedelta(hours=25).total_seconds())
        with capture_logs() as logs:
            tracker.poll_once()
        assert reshared(world) == []
        assert (rows(world)[0].status, rows(world)[0].reason) == ("skipped", "stale")
        assert [e["event"] for e in logs if e.get("remote_id") == row.remote_id] == ["reshare_skipped"]
    finally:
        world.close()


def test_partners_are_reshared_without_review(x_sandbox, tmp_path, clock) -> None:
    """In review mode a partner's tagged post goes out within the caps while a supporter's waits for staff."""
    partner = x_sandbox.create_account(fresh("partner"))
    world = make_world(x_sandbox, tmp_path, clock, mode="review", always_from=[f"@{partner.handle.upper()}"])
    try:
        tracker = world.tracker()
        tracker.poll_once()
        supporters_post(world, 1)
        from_partner = world.post(partner, f"Statement #{world.tag}", "partner", None)
        world.step(tracker)
        assert reshared(world) == [from_partner]
        assert sorted((r.status, r.reason) for r in rows(world)) == [("done", "partner"), ("queued", "awaiting_review")]
    finally:
        world.close()


def test_refused_credentials_are_reported_once_and_nothing_is_lost(x_sandbox, tmp_path, clock) -> None:
    """Refused credentials on search or retweet are logged once at error level; the post waits and goes out once fixed."""
    world = make_world(x_sandbox, tmp_path, clock)
    try:
        tracker = world.tracker()
        tracker.poll_once()
        [post] = supporters_post(world, 1)
        with capture_logs() as logs:
            x_sandbox.fail_next("auth", count=2, path="search")
            world.step(tracker)
            world.step(tracker, 3600)
            x_sandbox.fail_next("auth", count=2, path="retweets")
            world.step(tracker, 3600)  # the search works again; the retweet is refused
            world.step(tracker, 3600)
            world.step(tracker, 3600)
        errors = [(e["event"], e.get("reason")) for e in logs if e["log_level"] == "error"]
        assert errors[0][0] == "mentions_fetch_failed" and errors[1] == ("reshare_deferred", "auth_failed")
        assert len(errors) == 2
        assert reshared(world) == [post] and rows(world)[0].status == "done"
    finally:
        world.close()
