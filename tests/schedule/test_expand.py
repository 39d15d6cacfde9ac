"""Queue expansion: each account takes the next queue post it has not used yet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.campaign import load
from bot.schedule.occurrences import expand, occurrences

BASE = Path(__file__).parents[1] / "cases/base"
START, END = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 2, 1, tzinfo=UTC)


def _rows(used=None):
    c = load(BASE)
    return [
        (p.occurrence.at.strftime("%d %H"), p.post, p.accounts) for p in expand(c, occurrences(c, START, END), used)
    ]


def test_queue_posts_in_file_order():
    """With nothing used, queue slots take the queue's posts in file-name order."""
    assert _rows() == [
        ("12 09", "launch", ("x-index", "mastodon-a19", "bluesky-index")),
        ("12 12", "001-why", ("mastodon-a19",)),
        ("12 16", "001-supporter", ("x-index", "bluesky-index")),
        ("13 12", "002-act", ("mastodon-a19",)),
        ("13 16", "002-supporter", ("x-index", "bluesky-index")),
    ]


def test_used_posts_are_skipped_per_account():
    """A post already used on one account is skipped for that account only, splitting the slot."""
    used = {("x-index", "videos"): {"001-supporter"}}
    rows = _rows(lambda account, queue: used.get((account, queue), set()))
    assert rows[2:] == [
        ("12 16", "002-supporter", ("x-index",)),
        ("12 16", "001-supporter", ("bluesky-index",)),
        ("13 12", "002-act", ("mastodon-a19",)),
        ("13 16", None, ("x-index",)),  # x-index has used every video
        ("13 16", "002-supporter", ("bluesky-index",)),
    ]


def test_used_is_asked_once_per_account_and_queue():
    """The ledger is asked once per (account, queue), not once per slot."""
    calls = []

    def used(account: str, queue: str) -> set[str]:
        calls.append((account, queue))
        return set()

    _rows(used)
    assert sorted(calls) == [("bluesky-index", "videos"), ("mastodon-a19", "sample-posts"), ("x-index", "videos")]
