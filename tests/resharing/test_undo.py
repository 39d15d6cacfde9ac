"""Undo (issue 15.3): reshares withdrawn when the post is edited to a blocked word or deleted, when its author
is added to never_from, or by staff; Bluesky's event stream (15.6) finds tagged posts and deletions without a poll."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from structlog.testing import capture_logs

from bot.cli.reshare import withdraw
from tests.resharing.harness import World, base_policy, fresh, reshared, rows
from tests.resharing.test_streaming import eventually

pytestmark = pytest.mark.slow


def running(world: World):
    tracker = world.tracker()
    tracker.stream_connect_timeout = 5.0
    stop = threading.Event()
    thread = threading.Thread(target=tracker.run, args=(stop,), daemon=True)
    thread.start()
    return tracker, stop, thread


def reshared_live(world: World, sandbox, author) -> tuple[object, object, threading.Thread, str]:
    """A running streaming tracker that has reshared one tagged post by ``author``."""
    tracker, stop, thread = running(world)
    eventually(lambda: tracker.feeds[0].connected.is_set())
    remote_id = world.post(author, f"Journalism is not a crime #{world.tag}", "supporter", None)
    eventually(lambda: [r.status for r in rows(world)] == ["done"])
    assert reshared(world) == [remote_id]
    return tracker, stop, thread, remote_id


def stream_world(sandbox, tmp_path, clock, **policy) -> World:
    return World(
        sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], base_policy(**policy), 30
    )


def test_mastodon_edit_to_a_blocked_word_withdraws_the_boost(mastodon_sandbox, tmp_path, clock) -> None:
    """A boosted post edited to carry a blocked word is unboosted (status.update), recorded and logged with why."""
    sandbox = mastodon_sandbox
    sandbox.set_streaming(True)
    world = stream_world(sandbox, tmp_path, clock)
    author = sandbox.create_account(fresh("fan"))
    with capture_logs() as logs:
        tracker, stop, thread, remote_id = reshared_live(world, sandbox, author)
        try:
            sandbox.edit_as(author, remote_id, f"Long live L.u.k.a.s.h.e.n.k.a #{world.tag}")
            eventually(lambda: [r.status for r in rows(world)] == ["withdrawn"])
        finally:
            stop.set()
            thread.join(10)
    row = rows(world)[0]
    assert (row.withdrawn_reason, row.withdrawn_at is not None) == ("edited", True)
    assert "Lukashenka" in row.withdrawn_detail
    assert reshared(world) == []
    assert any(r["path"].endswith(f"/statuses/{remote_id}/unreblog") for r in sandbox.requests())
    withdrawn = [e for e in logs if e["event"] == "reshare_withdrawn"]
    assert [(e["remote_id"], e["reason"]) for e in withdrawn] == [(remote_id, "edited")]
    world.close()


def test_mastodon_harmless_edit_keeps_the_boost(mastodon_sandbox, tmp_path, clock) -> None:
    """An edit that still passes the policy leaves the boost standing."""
    sandbox = mastodon_sandbox
    sandbox.set_streaming(True)
    world = stream_world(sandbox, tmp_path, clock)
    author = sandbox.create_account(fresh("fan"))
    tracker, stop, thread, remote_id = reshared_live(world, sandbox, author)
    try:
        sandbox.edit_as(author, remote_id, f"Journalism is still not a crime #{world.tag}")
        # The lane serves its stream in order: once a later post is decided, the edit has been judged.
        later = world.post(sandbox.create_account(fresh("fan")), f"Free them #{world.tag}", "supporter", None)
        eventually(lambda: later in {r.remote_id for r in rows(world)})
    finally:
        stop.set()
        thread.join(10)
    assert [r.status for r in rows(world) if r.remote_id == remote_id] == ["done"]
    assert remote_id in reshared(world)
    world.close()


def test_mastodon_deleted_post_withdraws_the_boost(mastodon_sandbox, tmp_path, clock) -> None:
    """A boosted post deleted by its author is recorded withdrawn (reason deleted) from the stream's delete event."""
    sandbox = mastodon_sandbox
    sandbox.set_streaming(True)
    world = stream_world(sandbox, tmp_path, clock)
    author = sandbox.create_account(fresh("fan"))
    tracker, stop, thread, remote_id = reshared_live(world, sandbox, author)
    try:
        sandbox.delete_as(author, remote_id)
        eventually(lambda: [r.status for r in rows(world)] == ["withdrawn"])
    finally:
        stop.set()
        thread.join(10)
    assert rows(world)[0].withdrawn_reason == "deleted"
    assert reshared(world) == []
    world.close()


def test_never_from_reload_withdraws_the_authors_standing_reshares(mastodon_sandbox, tmp_path, clock) -> None:
    """A reload that adds an author to never_from withdraws that author's reshares, and only theirs."""
    sandbox = mastodon_sandbox
    world = World(
        sandbox,
        tmp_path,
        clock,
        fresh("Free"),
        [sandbox.create_account(fresh("index"))],
        base_policy(max_per_hour=10),
        interval=30,
    )
    world.campaign.accounts[world.ours[0].id].options["streaming"] = False
    troll, friend = sandbox.create_account(fresh("troll")), sandbox.create_account(fresh("friend"))
    tracker = world.tracker()
    world.step(tracker)
    bad = world.post(troll, f"Free them #{world.tag}", "troll", None)
    good = world.post(friend, f"Free them all #{world.tag}", "supporter", None)
    for _ in range(6):
        world.step(tracker, 600)
    assert sorted(reshared(world)) == sorted([bad, good])
    policy = dataclasses.replace(world.campaign.reshare.policy, never_from=[f"@{troll.handle}"])
    campaign = dataclasses.replace(world.campaign, reshare=dataclasses.replace(world.campaign.reshare, policy=policy))
    with capture_logs() as logs:
        tracker.reload(campaign)
        world.step(tracker, 1)
    assert reshared(world) == [good]
    by_id = {r.remote_id: r for r in rows(world)}
    assert (by_id[bad].status, by_id[bad].withdrawn_reason) == ("withdrawn", "never_from")
    assert by_id[good].status == "done"
    assert [e["reason"] for e in logs if e["event"] == "reshare_withdrawn"] == ["never_from"]
    world.close()


def test_staff_withdraw_by_url(mastodon_sandbox, tmp_path, clock) -> None:
    """``bot reshare withdraw URL`` takes back the reshare of the post at URL and records it as staff's."""
    sandbox = mastodon_sandbox
    world = World(
        sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], base_policy(), interval=30
    )
    world.campaign.accounts[world.ours[0].id].options["streaming"] = False
    tracker = world.tracker()
    world.step(tracker)
    remote_id = world.post(sandbox.create_account(fresh("fan")), f"Free them #{world.tag}", "supporter", None)
    world.step(tracker)
    row = rows(world)[0]
    assert row.status == "done"

    class Pool:
        def get(self, account):
            return tracker.adapters[account.id]

    assert withdraw(world.campaign, world.engine, "https://nowhere.example/1", "", clock, Pool()) == []
    lines = withdraw(world.campaign, world.engine, row.url, "abusive replies", clock, Pool())
    assert lines == [f"{row.account}: withdrew the reshare of {row.url}"]
    after = rows(world)[0]
    assert (after.status, after.withdrawn_reason, after.withdrawn_detail) == ("withdrawn", "staff", "abusive replies")
    assert reshared(world) == [] and remote_id
    world.close()


def bluesky_searches(sandbox, tag: str) -> int:
    """Searches for ``tag`` (the sandbox is shared by the session: other tests' searches do not count)."""
    return sum(1 for r in sandbox.requests() if "app.bsky.feed.searchPosts" in r["path"] and tag in r["query"])


def test_bluesky_stream_finds_a_tagged_post_without_a_poll_and_a_delete_withdraws_it(
    bluesky_sandbox, tmp_path, clock
) -> None:
    """From the repository firehose a tagged post is reposted with no search; deleting it deletes our repost."""
    sandbox = bluesky_sandbox
    world = stream_world(sandbox, tmp_path, clock)
    author = sandbox.create_account(fresh("fan"))
    tracker, stop, thread = running(world)
    try:
        eventually(
            lambda: tracker.feeds[0].connected.is_set() and bluesky_searches(sandbox, world.tag) >= 1, timeout=30
        )
        polls = bluesky_searches(sandbox, world.tag)
        sandbox.post_as(author, f"Untagged, about #{world.tag}x only")
        remote_id = sandbox.post_as(author, f"Journalism is not a crime #{world.tag}")
        eventually(lambda: [r.status for r in rows(world)] == ["done"], timeout=30)
        assert reshared(world) == [remote_id]
        assert bluesky_searches(sandbox, world.tag) == polls
        assert rows(world)[0].remote_id == remote_id and rows(world)[0].author == author.handle
        sandbox.delete_as(author, remote_id)
        eventually(lambda: [r.status for r in rows(world)] == ["withdrawn"], timeout=30)
    finally:
        stop.set()
        thread.join(10)
    assert rows(world)[0].withdrawn_reason == "deleted"
    assert reshared(world) == []
    world.close()


def polled_world(sandbox, tmp_path, clock) -> tuple[World, object, object, str]:
    """An X world whose tracker has polled and retweeted one tagged post by a fresh author."""
    world = World(
        sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], base_policy(), interval=30
    )
    author = sandbox.create_account(fresh("fan"))
    tracker = world.tracker()
    world.step(tracker)
    remote_id = world.post(author, f"Journalism is not a crime #{world.tag}", "supporter", None)
    world.step(tracker)
    assert [r.status for r in rows(world)] == ["done"] and reshared(world) == [remote_id]
    return world, tracker, author, remote_id


def test_x_edit_to_a_blocked_word_withdraws_the_retweet(x_sandbox, tmp_path, clock) -> None:
    """A retweeted X post edited to carry a blocked word (a new version, found by the next search) is unretweeted."""
    sandbox = x_sandbox
    world, tracker, author, remote_id = polled_world(sandbox, tmp_path, clock)
    sandbox.edit_as(author, remote_id, f"Long live L.u.k.a.s.h.e.n.k.a #{world.tag}")
    edited = sandbox.latest_id(remote_id)
    assert edited != remote_id
    with capture_logs() as logs:
        world.dirty = True
        world.step(tracker)
    row = rows(world)[0]
    assert (row.status, row.withdrawn_reason) == ("withdrawn", "edited")
    assert "Lukashenka" in row.withdrawn_detail
    assert reshared(world) == []
    assert any(r["method"] == "DELETE" and r["path"].endswith(f"/retweets/{remote_id}") for r in sandbox.requests())
    withdrawn = [e for e in logs if e["event"] == "reshare_withdrawn"]
    assert [(e["remote_id"], e["reason"]) for e in withdrawn] == [(remote_id, "edited")]
    assert edited not in {r.remote_id for r in rows(world)}  # the new version is not decided as a new post
    world.close()


def test_x_harmless_edit_keeps_the_retweet_and_wins_no_second_one(x_sandbox, tmp_path, clock) -> None:
    """An X edit that still passes the policy leaves the retweet standing and is not retweeted as a new post."""
    sandbox = x_sandbox
    world, tracker, author, remote_id = polled_world(sandbox, tmp_path, clock)
    sandbox.edit_as(author, remote_id, f"Journalism is still not a crime #{world.tag}")
    world.dirty = True
    for _ in range(3):
        world.step(tracker, 600)
    assert [(r.remote_id, r.status) for r in rows(world)] == [(remote_id, "done")]
    assert reshared(world) == [remote_id]
    world.close()


def test_x_edit_of_a_post_never_seen_is_decided_on_its_latest_text(x_sandbox, tmp_path, clock) -> None:
    """A post edited to a blocked word before the first search meets the filter as it reads now, and is skipped."""
    sandbox = x_sandbox
    world = World(
        sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], base_policy(), interval=30
    )
    author = sandbox.create_account(fresh("fan"))
    tracker = world.tracker()
    world.step(tracker)
    remote_id = world.post(author, f"Journalism is not a crime #{world.tag}", "supporter", None)
    sandbox.edit_as(author, remote_id, f"Lukashenka forever #{world.tag}")
    world.step(tracker)
    assert [(r.remote_id, r.status, r.reason) for r in rows(world)] == [
        (sandbox.latest_id(remote_id), "skipped", "blocked_word")
    ]
    assert reshared(world) == []
    world.close()
