"""The reshare ledger on SQLite and PostgreSQL: one decision per post, cursors, counts, the lease."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.values import Mention
from bot.ledger.db import open_engine
from bot.ledger.reshares import NewDecision, ReshareLedger, mention_from_json, mention_to_json
from tests.ledger.databases import DATABASES, fresh_url

NOW = datetime(2022, 1, 12, 8, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASES)
def ledger(request, tmp_path):
    engine = open_engine(fresh_url(request.param, request, tmp_path))
    yield ReshareLedger(engine, "free-andrei-and-irina")
    engine.dispose()


def mention(n: int, author: str = "a1") -> Mention:
    return Mention(
        remote_id=str(n),
        url=f"https://x.com/s/status/{n}",
        author_id=author,
        author_handle="fan",
        author_name="Fan",
        text="Free them #FreeAndreiandIrina",
        created_at=NOW,
        ref={"uri": f"at://did/{n}", "cid": "bafy"},
    )


def item(n: int, status: str = "pending", scope: str = "*", account: str = "x-index", author: str = "a1"):
    decision = {"pending": "allow", "skipped": "skip", "queued": "review"}.get(status, "allow")
    return NewDecision("x", "x", scope, account, mention(n, author), decision, status, "tagged")


def test_a_post_is_decided_once(ledger: ReshareLedger) -> None:
    """Recording the same post twice keeps the first decision; the second insert reports None."""
    first = ledger.record(NOW, [item(1)], ("x", "x-index", "freeandreiandirina"), "1")
    again = ledger.record(NOW, [item(1, "skipped"), item(2)], ("x", "x-index", "freeandreiandirina"), "2")
    assert first[0] is not None and again[0] is None and again[1] is not None
    assert [r.status for r in ledger.rows()] == ["pending", "pending"]
    assert ledger.cursor("x", "x-index", "freeandreiandirina") == "2"
    assert ledger.decided("x", ["1", "2", "3"], ["*"]) == {("1", "*"), ("2", "*")}


def test_scopes_allow_one_row_per_account_when_across(ledger: ReshareLedger) -> None:
    """With per-account scopes the same post gets one row per account."""
    ids = ledger.record(NOW, [item(1, scope="x-a", account="x-a"), item(1, scope="x-b", account="x-b")])
    assert None not in ids and len(ledger.rows()) == 2


def test_counts_include_scheduled_reshares(ledger: ReshareLedger) -> None:
    """Caps count reshares made in the window plus those already scheduled."""
    ids = ledger.record(NOW, [item(1), item(2), item(3)])
    ledger.transition(ids[0], ["pending"], status="done", acted_at=NOW - timedelta(minutes=90))
    ledger.transition(ids[1], ["pending"], status="done", acted_at=NOW - timedelta(minutes=10))
    hour, day, last = ledger.counts("x-index", NOW, ["done"])
    assert (hour, day, last) == (2, 3, NOW - timedelta(minutes=10))
    assert ledger.counts("x-index", NOW, ["done"], reserved=False)[:2] == (1, 2)
    assert ledger.author_last("x-index", "a1", ["done"]) == NOW - timedelta(minutes=10)


def test_a_post_decided_by_several_threads_at_once_gets_one_row(ledger: ReshareLedger) -> None:
    """A stream's lane and the loop recording the same post at the same moment: exactly one insert wins."""
    barrier = threading.Barrier(8)
    results: list[int | None] = []

    def record() -> None:
        barrier.wait()
        results.extend(ledger.record(NOW, [item(7)]))

    threads = [threading.Thread(target=record) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1 and len(results) == 8
    assert len(ledger.rows()) == 1


def test_transition_happens_once(ledger: ReshareLedger) -> None:
    """Two claims of one pending row: exactly one wins."""
    [row_id] = ledger.record(NOW, [item(1)])
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(ledger.transition(row_id, ["pending"], status="resharing")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_lease_is_exclusive_until_it_expires(ledger: ReshareLedger) -> None:
    """One owner holds the tracker lease; another gets it only after expiry or release."""
    ttl = timedelta(minutes=3)
    assert ledger.acquire_lease("a", NOW, ttl)
    assert not ledger.acquire_lease("b", NOW + timedelta(minutes=1), ttl)
    assert ledger.acquire_lease("a", NOW + timedelta(minutes=2), ttl)  # renewal
    assert not ledger.acquire_lease("b", NOW + timedelta(minutes=4), ttl)
    assert ledger.acquire_lease("b", NOW + timedelta(minutes=6), ttl)
    ledger.release_lease("b")
    assert ledger.acquire_lease("c", NOW + timedelta(minutes=6), ttl)


def test_mention_round_trips_through_json() -> None:
    """A mention stored for a later reshare comes back equal, including platform refs."""
    m = mention(7)
    assert mention_from_json(mention_to_json(m)) == m
