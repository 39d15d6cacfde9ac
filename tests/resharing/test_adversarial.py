"""An adversarial hashtag stream per platform, tracked through a restart, against the sandbox servers."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bot.ledger.reshares import _utc
from bot.ledger.schema import decisions
from bot.platforms import platform_class
from sandboxes import Sandbox
from tests.conftest import PLATFORMS
from tests.resharing.harness import GOOD, World, adversarial_plan, fresh, make_people

pytestmark = pytest.mark.slow
CAP_REASONS = {"cap_hour", "cap_day", "author_cooldown"}
DECISION_EVENTS = {"reshare_skipped", "reshare_scheduled", "reshare_queued"}
SKIP = {"replies", "reshares", "own", "sensitive"}


@pytest.fixture(params=PLATFORMS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each platform's sandbox whose adapter tracks hashtags; the others are skipped (before their server starts)."""
    if not platform_class(request.param).supports_tracking:
        pytest.skip(
            f"{request.param} has no hashtag search (its adapter's supports_tracking is false): nothing to track"
        )
    return request.getfixturevalue(f"{request.param}_sandbox")


def policy_for(people, **overrides):
    policy = dict(
        always_from=[f"@{p.handle.upper()}" for p in people.partners],
        never_from=[f"@{people.troll.handle}"],
        blocked_words=["Lukashenka", "Lukašenka"],
        skip=SKIP,
        max_per_hour=4,
        max_per_day=8,
        mode="auto",
        author_cooldown=timedelta(hours=6),
    )
    policy.update(overrides)
    return policy


def all_rows(world: World):
    with world.engine.connect() as conn:
        return conn.execute(sa.select(decisions).where(decisions.c.campaign == world.campaign.name)).all()


def test_adversarial_stream_with_restart(sandbox, tmp_path, clock) -> None:
    """Of 200+ hostile and friendly tagged posts, only allowed ones are reshared, within caps, each decided once with its reason, through a restart."""
    ours = [sandbox.create_account(fresh("index"))]
    people = make_people(sandbox)
    world = World(sandbox, tmp_path, clock, fresh("Free"), ours, policy_for(people))
    plan = adversarial_plan(world, people, random.Random(5))
    assert len(plan) >= 200
    batches = [plan[i : i + 45] for i in range(0, len(plan), 45)]
    restart_found = None
    try:
        with capture_logs() as logs:
            tracker = world.tracker("worker-1")
            tracker.poll_once()  # starts the cursor before anyone posts
            for n, batch in enumerate(batches):
                before = len(world.posted)
                for action in batch:
                    action()
                if n == 2:  # this batch was posted while the worker was down: a new process takes over
                    tracker = world.tracker("worker-2")
                    mark = len(logs)
                world.step(tracker, 900)
                if n == 2:
                    fetched = [e for e in logs[mark:] if e["event"] == "mentions_fetched"]
                    restart_found = (fetched[0]["found"], list(world.posted)[before:])
                for _ in range(3):  # an hour between batches, polled at the reshare spacing
                    world.step(tracker, 900)
            for _ in range(8):  # long enough for every scheduled reshare to go out
                world.step(tracker, 900)
        rows = all_rows(world)
    finally:
        world.close()

    by_id = {r.remote_id: r for r in rows}
    assert len(by_id) == len(rows), "a post was decided twice"
    # Nothing missed: every tagged post the platform lists was decided (reshares may not be listed at all).
    for remote_id, expected in world.posted.items():
        if expected.category == "reshare" and remote_id not in by_id:
            continue
        row = by_id[remote_id]
        if expected.reason:
            assert (row.status, row.reason) == ("skipped", expected.reason), (expected.category, row.detail)
        else:
            assert row.status == "done" or (row.status == "skipped" and row.reason in CAP_REASONS), row
    assert not set(by_id) - set(world.posted)
    # Nothing re-read after the restart, nothing posted meanwhile missed.
    seen_meanwhile, posted_meanwhile = restart_found
    assert seen_meanwhile == sum(1 for rid in posted_meanwhile if rid in by_id) > 0

    # Every allowed post was reshared; every reshare on the server is an allowed post, once.
    allowed = {r.remote_id for r in rows if r.decision == "allow"}
    done = [r for r in rows if r.status == "done"]
    assert allowed == {r.remote_id for r in done}
    server = [p.reshare_of for p in sandbox.posts(ours[0]) if p.reshare_of]
    assert sorted(server) == sorted(allowed)
    assert {world.posted[rid].category for rid in server} <= set(GOOD)
    assert {"partner", "supporter", "flood"} <= {world.posted[r].category for r in server}

    # Caps: spacing, hour, day, author cooldown.
    times = sorted(_utc(r.acted_at) for r in done)
    assert all(b - a >= timedelta(minutes=15) for a, b in zip(times, times[1:]))
    assert all(sum(1 for t in times if s <= t < s + timedelta(hours=1)) <= 4 for s in times)
    assert all(sum(1 for t in times if s <= t < s + timedelta(days=1)) <= 8 for s in times)
    per_author = defaultdict(list)
    for r in done:
        per_author[r.author_id].append(_utc(r.acted_at))
    for stamps in per_author.values():
        stamps.sort()
        assert all(b - a >= timedelta(hours=6) for a, b in zip(stamps, stamps[1:]))
    reasons = Counter(r.reason for r in rows if r.status == "skipped")
    assert reasons["cap_hour"] > 0 and reasons["cap_day"] > 0 and len(done) == 8
    flood = [r for r in rows if world.posted[r.remote_id].category == "flood"]
    assert sum(r.status == "done" for r in flood) <= 2 and Counter(r.reason for r in flood)["author_cooldown"] >= 50

    # Every decision is in the log once, with the ledger's reason.
    decided = [e for e in logs if e["event"] in DECISION_EVENTS]
    assert Counter(e["remote_id"] for e in decided) == Counter(set(by_id))
    for event in decided:
        assert event["reason"] == by_id[event["remote_id"]].reason
        assert event["url"] and event["platform"] == sandbox.platform
    done_events = {e["remote_id"] for e in logs if e["event"] == "reshare_done"}
    assert done_events == allowed
