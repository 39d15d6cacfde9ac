"""``claim_and_begin`` (one upsert) and outcome records on SQLite and PostgreSQL: what they store and refuse."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.ledger.db import open_engine
from bot.ledger.publications import CLAIM_RETURNS, Ledger
from tests.ledger.race import slot_key

LEASE = timedelta(minutes=5)
FIXED = dict(post="launch", schedule="launch", slot=0, platform="x")


def begin(ledger: Ledger, owner: str, i: int = 1, **extra):
    return ledger.claim_and_begin(slot_key(i), owner, LEASE, **{**FIXED, **extra})


def test_a_fresh_claim_stores_every_field_and_returns_the_row_as_claimed(ledger, clock):
    """The new row holds the slot's fields and one attempt; the row handed back has the claim's columns only."""
    row, n, reconcile = begin(ledger, "w1", manual=True)
    assert (row.attempts, n, reconcile) == (0, 1, False)
    stored = ledger.get(slot_key(1))
    assert (stored.id, stored.post, stored.schedule, stored.slot, stored.platform, stored.manual) == (
        row.id,
        "launch",
        "launch",
        0,
        "x",
        True,
    )
    assert (stored.state, stored.owner, stored.attempts, stored.next_attempt_at) == ("claimed", "w1", 1, None)
    assert stored.created == stored.updated == clock.now() and stored.lease_until == clock.now() + LEASE
    assert row._asdict() == {**{name: getattr(stored, name) for name in CLAIM_RETURNS}, "attempts": 0}
    assert row.slot_at.tzinfo is not None  # a Core row: values through the UTC type, not raw driver values
    assert [(a.n, a.owner, a.started, a.ended) for a in ledger.attempts_of(row.id)] == [(1, "w1", clock.now(), None)]


def test_a_live_or_finished_row_is_left_untouched(ledger, clock):
    """Another owner's live lease, or a finished row however old, gives None and changes nothing."""
    live, _, _ = begin(ledger, "w1", 1)
    done, n, _ = begin(ledger, "w1", 2)
    ledger.record_published(done.id, "42", "https://x.com/a/status/42", attempt=n)
    before = [ledger.get(slot_key(i)) for i in (1, 2)]
    clock.advance(LEASE.total_seconds() - 1)
    assert begin(ledger, "w2", 1) is None
    clock.advance(86400)
    assert begin(ledger, "w2", 2) is None
    assert ledger.get(slot_key(2)) == before[1]
    assert ledger.get(slot_key(1)) == before[0] and len(ledger.attempts_of(live.id)) == 1


def test_a_due_retry_is_taken_over_and_reconciled_only_after_an_uncertain_attempt(ledger, clock):
    """A retrying row is claimed again when due; only an uncertain earlier attempt asks for a reconcile."""
    row, n, _ = begin(ledger, "w1")
    ledger.record_retry(row.id, clock.now() + timedelta(seconds=90), "PlatformUnavailable: 503", attempt=n)
    clock.advance(89)
    assert begin(ledger, "w2") is None
    clock.advance(1)
    again, n, reconcile = begin(ledger, "w2")
    assert (again.id, again.attempts, n, reconcile) == (row.id, 1, 2, False)
    stored = ledger.get(slot_key(1))
    assert (stored.owner, stored.state, stored.attempts) == ("w2", "claimed", 2)
    assert (stored.next_attempt_at, stored.lease_until) == (None, clock.now() + LEASE)
    ledger.record_retry(row.id, clock.now(), "UncertainOutcome: timeout", attempt=n, uncertain=True, owner="w2")
    third, n, reconcile = begin(ledger, "w3")
    assert (third.attempts, n, reconcile) == (2, 3, True)
    assert [(a.n, a.owner, a.outcome) for a in ledger.attempts_of(row.id)] == [
        (1, "w1", "retry"),
        (2, "w2", "uncertain"),
        (3, "w3", None),
    ]


def test_attempt_duration_runs_from_its_start_whichever_ledger_ends_it(ledger, clock, db_url):
    """duration_ms is the clock time since the attempt began, also when another process records the outcome."""
    first, n1, _ = begin(ledger, "w1", 1)
    second, n2, _ = begin(ledger, "w1", 2)
    claimed = ledger.claim(slot_key(3), "w1", LEASE, post="launch")
    n3, _ = ledger.begin_attempt(claimed.id, "w1", prior=claimed.attempts)
    clock.advance(1.234)
    ledger.record_published(first.id, "1", "https://x/1", attempt=n1)
    ledger.record_failed(claimed.id, "rejected", "ContentRejected: too long", attempt=n3, owner="w1")
    engine = open_engine(db_url)
    try:
        other = Ledger(engine, clock)  # started nothing itself: it reads the attempt's start back
        clock.advance(0.5)
        assert other.record_retry(second.id, clock.now(), "RateLimited", attempt=n2, owner="w1")
    finally:
        engine.dispose()
    ended = {pub_id: ledger.attempts_of(pub_id)[0] for pub_id in (first.id, second.id, claimed.id)}
    assert [(a.outcome, a.duration_ms, a.ended) for a in ended.values()] == [
        ("published", 1234, clock.now() - timedelta(seconds=0.5)),
        ("retry", 1734, clock.now()),
        ("failed", 1234, clock.now() - timedelta(seconds=0.5)),
    ]


def test_a_replaced_owner_ends_its_own_attempt_but_not_the_new_owners_row(ledger, clock):
    """The old owner's late failure is refused on the row yet closes its attempt; the new owner then publishes."""
    old, n_old, _ = begin(ledger, "old")
    clock.advance(LEASE.total_seconds())
    new, n_new, reconcile = begin(ledger, "new")
    assert (new.id, n_old, n_new, reconcile) == (old.id, 1, 2, True)
    clock.advance(2)
    assert not ledger.record_failed(
        old.id, "lease_lost", "LeaseLost", attempt=n_old, attempt_outcome="abandoned", owner="old"
    )
    assert (ledger.get(slot_key(1)).state, ledger.get(slot_key(1)).owner) == ("claimed", "new")
    ledger.record_published(new.id, "42", "https://x.com/a/status/42", attempt=n_new)
    assert ledger.get(slot_key(1)).state == "published"
    assert [(a.n, a.owner, a.outcome, a.duration_ms) for a in ledger.attempts_of(old.id)] == [
        (1, "old", "abandoned", 302_000),
        (2, "new", "published", 2000),
    ]


def test_threads_racing_claim_and_begin_get_one_winner_and_one_attempt_per_key(ledger):
    """Sixteen threads calling claim_and_begin on the same 20 keys: each key is won once, with one attempt row."""
    barrier = threading.Barrier(16)

    def race(owner: str) -> list[tuple[int, int]]:
        barrier.wait()
        return [(i, claimed[0].id) for i in range(20) if (claimed := begin(ledger, owner, i)) is not None]

    with ThreadPoolExecutor(16) as pool:
        won = [pair for pairs in pool.map(race, [f"w{i}" for i in range(16)]) for pair in pairs]
    assert sorted(i for i, _ in won) == list(range(20))
    assert all([(a.n, a.outcome) for a in ledger.attempts_of(pub_id)] == [(1, None)] for _, pub_id in won)
