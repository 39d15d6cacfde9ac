"""Threads adapter against the Graph sandbox: text, image, video and carousel containers, exactly once by the
container id, reposts of tag mentions with keyword search, and a clear refusal without it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bot.core.errors import ContentRejected, PermanentError, UncertainOutcome
from bot.core.values import DISPLAY_NAME_UNKNOWN, ImageAttachment, VideoAttachment
from bot.platforms.base import Platform
from sandboxes import SandboxAccount
from sandboxes.graph.sandbox import GraphSandbox
from tests.platforms.graph_fixtures import graph_fixtures
from tests.platforms.graph_support import GraphClock
from tests.platforms.support import adapter_for, fresh_name, outgoing

media, clock, account, th = graph_fixtures("threads_sandbox", "th", processing=30.0)


def text() -> str:
    return f"Free Andrei and Irina #FreeAndreiandIrina {uuid.uuid4().hex[:6]}"


def test_text_image_video_and_carousel(threads_sandbox: GraphSandbox, account, th: Platform, media: Path) -> None:
    """Each kind goes out once through its container, with alt texts on images and the video."""
    th.publish(outgoing(text()))
    th.publish(outgoing(text(), images=(ImageAttachment(media / "banner-0.png", "A PNG banner"),)))
    th.publish(outgoing(text(), video=VideoAttachment(media / "clip.mp4", "A supporter speaks")))
    carousel = tuple(ImageAttachment(media / f"banner-{n}.jpg", f"Banner {n}") for n in range(3))
    th.publish(outgoing(text(), images=carousel))
    posts = threads_sandbox.posts(account)
    assert [[m["kind"] for m in p.media] for p in posts] == [[], ["image"], ["video"], ["image"] * 3]
    assert [m["alt"] for m in posts[2].media + posts[3].media] == [
        "A supporter speaks",
        "Banner 0",
        "Banner 1",
        "Banner 2",
    ]


def test_text_over_500_is_refused_before_sending(threads_sandbox: GraphSandbox, account, th: Platform) -> None:
    """501 characters are refused locally; nothing reaches the server."""
    with pytest.raises(ContentRejected):
        th.publish(outgoing("x" * 501))
    assert threads_sandbox.containers(account) == []


def test_lost_publish_answer_is_reconciled_by_the_container(
    threads_sandbox: GraphSandbox, account, th: Platform
) -> None:
    """threads_publish stored but unanswered: find_published returns the post; a retry sends nothing."""
    out = outgoing(text())
    threads_sandbox.crash_after("threads_publish")
    with pytest.raises(UncertainOutcome):
        th.publish(out)
    found = th.find_published(out)
    [post] = threads_sandbox.posts(account)
    assert found is not None and found.remote_id == post.remote_id and found.url == post.url
    th.publish(out)
    assert len(threads_sandbox.posts(account)) == 1


def test_reposts_a_tag_mention_and_withdraws_it(threads_sandbox: GraphSandbox, account, th: Platform) -> None:
    """A supporter's tagged post is found by keyword search (TAG mode) and reposted; the repost can be withdrawn."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    supporter = threads_sandbox.create_account(fresh_name("supporter"))
    remote_id = threads_sandbox.post_as(supporter, f"Solidarity #{tag}")
    page = th.fetch_mentions([tag], None)
    assert [m.remote_id for m in page.mentions] == [remote_id]
    receipt = th.reshare(page.mentions[0])
    assert [p.reshare_of for p in threads_sandbox.posts(account)] == [remote_id]
    th.withdraw_reshare(page.mentions[0], receipt.remote_id)
    th.withdraw_reshare(page.mentions[0], receipt.remote_id)  # already gone: no error
    assert threads_sandbox.posts(account) == []
    assert th.fetch_mentions([tag], page.cursor).mentions == []


def test_spoilers_and_replies_come_back_from_keyword_search(threads_sandbox: GraphSandbox, th: Platform) -> None:
    """Text spoilers (part or whole), media spoilers and replies found by tag search are sensitive or replies."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    supporter = threads_sandbox.create_account(fresh_name("supporter"))
    plain = threads_sandbox.post_as(supporter, f"Solidarity #{tag}")
    part = threads_sandbox.post_as(supporter, f"Prison conditions #{tag}", spoiler_text="prison")
    whole = threads_sandbox.post_as(supporter, f"Hard to read #{tag}", sensitive=True)
    media = threads_sandbox.post_as(supporter, f"A photo #{tag}", sensitive=True, alt_text="The court")
    reply = threads_sandbox.post_as(supporter, f"Agreed #{tag}", reply_to=plain)
    found = {m.remote_id: m for m in th.fetch_mentions([tag], None).mentions}
    seen = {rid: (m.sensitive, m.spoiler_text, m.is_reply) for rid, m in found.items()}
    assert seen == {
        plain: (False, "", False),
        part: (True, "Prison", False),
        whole: (True, f"Hard to read #{tag}", False),
        media: (True, "", False),
        reply: (False, "", True),
    }


def lookups(sandbox: GraphSandbox, account: SandboxAccount) -> list[str]:
    """The usernames ``account`` looked up with profile_lookup, in order."""
    return [
        r["query"].get("username", "")
        for r in sandbox.requests()
        if r["path"].endswith("/profile_lookup") and r["account"] == account.handle
    ]


def test_profile_lookup_fills_display_name_and_followers(threads_sandbox: GraphSandbox, account, th: Platform) -> None:
    """A mention's author_name and author_followers come from profile_lookup, with no display_name_unknown marker."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    author = threads_sandbox.create_account(fresh_name("named"), display_name="Łukašenka Fan Club")
    threads_sandbox.set_profile(author, followers=321)
    threads_sandbox.post_as(author, f"Solidarity #{tag}")
    [found] = th.fetch_mentions([tag], None).mentions
    assert (found.author_handle, found.author_name, found.author_followers) == (
        author.handle,
        "Łukašenka Fan Club",
        321,
    )
    assert DISPLAY_NAME_UNKNOWN not in found.ref


def test_one_lookup_per_author_through_the_cache(
    threads_sandbox: GraphSandbox, account, th: Platform, clock: GraphClock
) -> None:
    """Many posts by two authors cost one lookup each, until a day on the adapter's clock has passed."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    first = threads_sandbox.create_account(fresh_name("busy"), display_name="Busy One")
    second = threads_sandbox.create_account(fresh_name("busy"), display_name="Busy Two")
    for n in range(4):
        threads_sandbox.post_as(first, f"Post {n} #{tag}")
        threads_sandbox.post_as(second, f"Post {n} #{tag}")
    page = th.fetch_mentions([tag], None)
    assert {m.author_name for m in page.mentions} == {"Busy One", "Busy Two"}
    threads_sandbox.post_as(first, f"Later #{tag}")
    assert [m.author_name for m in th.fetch_mentions([tag], page.cursor).mentions] == ["Busy One"]
    assert sorted(lookups(threads_sandbox, account)) == sorted([first.handle, second.handle])
    clock.advance(86400 + 1)
    threads_sandbox.post_as(first, f"Next day #{tag}")
    th.fetch_mentions([tag], None)
    assert lookups(threads_sandbox, account).count(first.handle) == 2


def test_without_profile_discovery_mentions_carry_the_marker(threads_sandbox: GraphSandbox, media_host, clock) -> None:
    """A token without threads_profile_discovery still tracks, but every mention is marked display_name_unknown."""
    reader = threads_sandbox.create_account(
        fresh_name("reader"), scopes={"threads_basic", "threads_content_publish", "threads_keyword_search"}
    )
    tag = f"Free{uuid.uuid4().hex[:6]}"
    for n in range(2):
        author = threads_sandbox.create_account(fresh_name("hidden"), display_name="Łukašenka Fan Club")
        threads_sandbox.post_as(author, f"Solidarity {n} #{tag}")
    adapter = adapter_for(reader, media_host=media_host, wall=clock, sleep=clock.sleep, timeout=5)
    try:
        found = adapter.fetch_mentions([tag], None).mentions
    finally:
        adapter.close()
    assert [m.ref.get(DISPLAY_NAME_UNKNOWN) for m in found] == ["no_permission", "no_permission"]
    assert all(m.author_name == m.author_handle and m.author_followers is None for m in found)
    assert len(lookups(threads_sandbox, reader)) == 1  # refused once, then not asked again for an hour


def test_undiscoverable_profile_carries_the_marker(threads_sandbox: GraphSandbox, th: Platform) -> None:
    """A profile Threads will not look up (not discoverable) gives the not_found marker instead of a name."""
    tag = f"Free{uuid.uuid4().hex[:6]}"
    author = threads_sandbox.create_account(fresh_name("small"), display_name="Hidden Name")
    threads_sandbox.set_profile(author, discoverable=False)
    threads_sandbox.post_as(author, f"Solidarity #{tag}")
    [found] = th.fetch_mentions([tag], None).mentions
    assert (found.author_name, found.ref.get(DISPLAY_NAME_UNKNOWN)) == (author.handle, "not_found")


def test_without_keyword_search_tracking_says_why(threads_sandbox: GraphSandbox, media_host, clock) -> None:
    """An account whose token lacks threads_keyword_search cannot track, and the error says so and why."""
    plain = threads_sandbox.create_account(fresh_name("plain"), scopes={"threads_basic", "threads_content_publish"})
    adapter = adapter_for(plain, media_host=media_host, wall=clock, sleep=clock.sleep)
    with pytest.raises(PermanentError, match="threads_keyword_search"):
        adapter.fetch_mentions(["FreeAndreiandIrina"], None)


def test_online_check_names_the_account_that_cannot_track(threads_sandbox: GraphSandbox, media_host, clock) -> None:
    """bot check --online's Threads rule: a tracking account without keyword search is an error naming it and why."""
    from types import SimpleNamespace

    from bot.platforms.threads.online import unable_to_track

    able = threads_sandbox.create_account(fresh_name("able"))
    plain = threads_sandbox.create_account(fresh_name("plain"), scopes={"threads_basic", "threads_content_publish"})
    accounts = {
        a.id: SimpleNamespace(id=a.id, platform="threads", file="config/accounts.yaml", line=n, sandbox=a)
        for n, a in ((3, able), (7, plain))
    }
    track = SimpleNamespace(hashtags=["FreeAndreiandIrina"], accounts=list(accounts))
    campaign = SimpleNamespace(accounts=accounts, reshare=SimpleNamespace(track=[track]))
    errors, warnings = unable_to_track(campaign, lambda account: adapter_for(account.sandbox, media_host=media_host))
    assert warnings == []
    [error] = errors
    assert error.startswith(f"config/accounts.yaml:7: account {plain.id}: tracking is not available")
    assert "threads_keyword_search" in error and "app review" in error
