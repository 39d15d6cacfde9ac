"""End to end on the sandboxes: a new account's post waits for review, staff approve it, the worker reshares it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import review
from bot.cli.status import collect, render
from bot.core.clock import FakeClock
from bot.ledger.publications import Ledger
from bot.ledger.reshares import ReshareLedger
from tests.resharing.harness import fresh, make_world, reshared, rows

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sandbox_name", ["x_sandbox", "mastodon_sandbox"])
def test_new_account_waits_for_review_then_is_reshared(sandbox_name, request, tmp_path) -> None:
    """A post from an account younger than min_account_age is queued as new_account, not reshared; once approved
    (recorded with reviewer and note) the tracker reshares it, and a partner's new account is reshared at once."""
    sandbox = request.getfixturevalue(sandbox_name)
    platform = sandbox.platform
    # The sandboxes date accounts by the wall clock: the tracker's clock starts there, so they are minutes old.
    clock = FakeClock(datetime.now(UTC))
    partner = sandbox.create_account(fresh("partner"))
    world = make_world(
        sandbox,
        tmp_path,
        clock,
        always_from=[f"@{partner.handle}"],
        min_account_age={platform: timedelta(days=30)},
        new_accounts="review",
    )
    try:
        tracker = world.tracker()
        tracker.poll_once()
        newcomer = sandbox.create_account(fresh("newcomer"))
        waiting_id = world.post(newcomer, f"Joined today to say: free them #{world.tag}", "new", None)
        partner_id = world.post(partner, f"Partner statement #{world.tag}", "partner", None)
        world.step(tracker)
        world.step(tracker, 900)
        assert reshared(world) == [partner_id]
        [queued] = [r for r in rows(world) if r.status == "queued"]
        assert (queued.remote_id, queued.reason) == (waiting_id, "new_account")
        assert f"min_account_age {platform} 30d" in queued.detail

        ledger = ReshareLedger(world.engine, world.campaign.name)
        [item] = review.waiting(ledger, tags=[world.tag])
        assert item["why"] == "new account" and "[[#" in review.render([item], clock.now())
        assert review.decide(ledger, "approve", [queued.id], clock.now(), who="alice", note="known activist") == []
        world.step(tracker, 900)
        world.step(tracker, 900)
        assert sorted(reshared(world)) == sorted([partner_id, waiting_id])
        [decision] = ledger.reviews()
        assert (decision.action, decision.reviewer, decision.note, decision.waited_for) == (
            "approved",
            "alice",
            "known activist",
            "new_account",
        )
        status = render(collect(None, Ledger(world.engine), clock.now(), campaign_name=world.campaign.name))
        assert f"#{queued.id:<5} approved by alice" in status and "(waited for new_account): known activist" in status
    finally:
        world.close()
