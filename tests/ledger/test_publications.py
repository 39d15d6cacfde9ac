"""The publication ledger on SQLite and PostgreSQL: claims, leases, outcomes, queue bookkeeping."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger, PublicationKey
from tests.ledger.race import QUEUE, claim_all, slot_key

LEASE = timedelta(minutes=5)


def test_first_claim_wins_and_others_get_none(ledger):
    """A key is claimed by its first owner; a second owner gets None while the lease runs."""
    key = slot_key(1)
    row = ledger.claim(key, "w1", LEASE, post="launch", schedule="launch", slot=0, platform="x")
    assert row.owner == "w1" and row.state == "claimed" and row.post == "launch"
    assert ledger.claim(key, "w2", LEASE, post="launch") is None
    assert ledger.claim(key, "w1", LEASE, post="launch") is None


def test_expired_lease_is_taken_over(ledger, clock):
    """After a dead owner's lease runs out, another owner takes the same row over with its post kept."""
    key = slot_key(1, "queue:videos")
    first = ledger.claim(key, "dead", LEASE, choose=lambda used: "video-000")
    clock.advance(LEASE.total_seconds() - 1)
    assert ledger.claim(key, "w2", LEASE, choose=lambda used: "video-999") is None
    clock.advance(1)
    row = ledger.claim(key, "w2", LEASE, choose=lambda used: "video-999")
    assert (row.id, row.owner, row.post) == (first.id, "w2", "video-000")
    assert row.lease_until == clock.now() + LEASE


def test_finished_publications_are_never_claimed_again(ledger, clock):
    """Published, skipped and failed rows stay finished even long after their lease."""
    for i, finish in enumerate(
        (
            lambda r: ledger.record_published(r.id, "1", "https://x/1"),
            lambda r: ledger.record_skipped(r.id, "missed"),
            lambda r: ledger.record_failed(r.id, "rejected", "ContentRejected: too long"),
        )
    ):
        finish(ledger.claim(slot_key(i), "w1", LEASE, post="launch"))
    clock.advance(86400)
    assert [ledger.claim(slot_key(i), "w2", LEASE, post="launch") for i in range(3)] == [None, None, None]
    assert ledger.counts() == {
        "claimed": 0,
        "retrying": 0,
        "published": 1,
        "skipped": 1,
        "failed": 1,
        "needs_attention": 0,
    }


def test_slot_time_is_normalised_to_utc_seconds(ledger):
    """The same instant written in another zone or with microseconds is the same key."""
    london = datetime(2022, 6, 1, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    a = PublicationKey("free", london, "post:launch", "x-index")
    b = PublicationKey("free", datetime(2022, 6, 1, 9, 0, 0, 400, tzinfo=UTC), "post:launch", "x-index")
    assert a == b and a.token() == b.token() and a.slot_iso == "2022-06-01T09:00:00Z"
    assert ledger.claim(a, "w1", LEASE, post="launch") is not None
    assert ledger.claim(b, "w2", LEASE, post="launch") is None
    assert ledger.get(b).slot_at == datetime(2022, 6, 1, 9, 0, tzinfo=UTC)


def test_token_is_stable_and_header_safe():
    """The outgoing key is ASCII, fixed-length and depends on every key field but nothing else."""
    key = slot_key(3)
    token = key.token()
    assert token == slot_key(3).token() and len(token) == 37 and token.startswith("pub1-")
    assert token.isascii() and token.replace("-", "").isalnum()
    others = {
        slot_key(4).token(),
        slot_key(3, "post:other").token(),
        slot_key(3, account="bsky").token(),
        PublicationKey("other", key.slot_at, key.target, key.account).token(),
    }
    assert token not in others and len(others) == 4


def test_retry_hands_the_row_back_until_its_time(ledger, clock):
    """A retrying row is claimable by any owner once next_attempt_at has come, not before."""
    row = ledger.claim(slot_key(1), "w1", LEASE, post="launch")
    n = ledger.start_attempt(row.id, "w1")
    when = clock.now() + timedelta(seconds=90)
    ledger.record_retry(row.id, when, "RateLimited: slow down", attempt=n)
    assert ledger.pending_retries() == []
    assert ledger.claim(slot_key(1), "w2", LEASE, post="launch") is None
    clock.advance(90)
    assert [r.id for r in ledger.pending_retries()] == [row.id]
    again = ledger.claim(slot_key(1), "w2", LEASE, post="launch")
    assert again.owner == "w2" and again.attempts == 1 and again.state == "claimed"
    attempt = ledger.attempts_of(row.id)[0]
    assert (attempt.outcome, attempt.error, attempt.duration_ms) == ("retry", "RateLimited: slow down", 0)


def test_reconcile_needed_after_uncertain_or_unfinished_attempt(ledger, clock):
    """An attempt that timed out, or whose worker died before recording it, calls for a reconcile."""
    clean, uncertain, dead = (ledger.claim(slot_key(i), "w1", LEASE, post="launch") for i in range(3))
    for row in (clean, uncertain, dead):
        assert not ledger.needs_reconcile(row.id)
    ledger.record_retry(clean.id, clock.now(), "PlatformUnavailable: 503", attempt=ledger.start_attempt(clean.id, "w1"))
    ledger.record_retry(
        uncertain.id,
        clock.now(),
        "UncertainOutcome: timeout",
        attempt=ledger.start_attempt(uncertain.id, "w1"),
        uncertain=True,
    )
    ledger.start_attempt(dead.id, "w1")
    assert [ledger.needs_reconcile(r.id) for r in (clean, uncertain, dead)] == [False, True, True]
    clock.advance(LEASE.total_seconds())
    assert [r.id for r in ledger.expired_claims()] == [dead.id]


def test_used_posts_counts_live_and_content_refused_posts(ledger):
    """used_posts holds published, claimed, retrying and content-refused posts of that account only."""
    ids = {}
    for i, post in enumerate(("p-published", "p-claimed", "p-skipped", "p-auth", "p-rejected", "p-retrying")):
        ids[post] = ledger.claim(slot_key(i, "queue:q"), "w1", LEASE, choose=lambda used, p=post: p).id
    ledger.record_published(ids["p-published"], "1", "u")
    ledger.record_skipped(ids["p-skipped"], "missed")
    ledger.record_failed(ids["p-auth"], "auth", "AuthFailed")
    ledger.record_failed(ids["p-rejected"], "rejected", "ContentRejected")
    ledger.record_retry(ids["p-retrying"], ledger.clock.now(), "RateLimited")
    ledger.claim(slot_key(9, "post:elsewhere", account="mastodon-a19"), "w1", LEASE, post="elsewhere")
    assert ledger.used_posts("x-index", "q") == {"p-published", "p-claimed", "p-rejected", "p-retrying"}
    assert ledger.used_posts("mastodon-a19", "q") == {"elsewhere"}


def test_queue_choice_sees_posts_used_by_earlier_claims(ledger):
    """Consecutive queue slots on one account take the queue's posts in order, one each."""

    def choose(used):
        return next((p for p in QUEUE[:3] if p not in used), None)

    posts = [ledger.claim(slot_key(i, "queue:videos"), "w1", LEASE, choose=choose).post for i in range(4)]
    assert posts == ["video-000", "video-001", "video-002", None]


def test_renew_lease_only_for_the_owner(ledger, clock):
    """Only the current owner of a claimed row can extend its lease."""
    row = ledger.claim(slot_key(1), "w1", LEASE, post="launch")
    clock.advance(200)
    assert ledger.renew_lease(row.id, "w1", LEASE)
    assert not ledger.renew_lease(row.id, "w2", LEASE)
    assert ledger.get(slot_key(1)).lease_until == clock.now() + LEASE


def test_threads_never_double_claim(ledger):
    """Sixteen threads racing for the same keys and queue slots: one winner each, distinct queue posts."""
    barrier = threading.Barrier(16)

    def race(owner: str) -> list[tuple[int, str | None]]:
        barrier.wait()
        won = []
        for i in range(10):
            if ledger.claim(slot_key(i), owner, LEASE, post="launch"):
                won.append(i)
            row = ledger.claim(
                slot_key(i, "queue:videos"), owner, LEASE, choose=lambda used: next(p for p in QUEUE if p not in used)
            )
            if row:
                won.append(row.post)
        return won

    with ThreadPoolExecutor(16) as pool:
        results = [item for won in pool.map(race, [f"w{i}" for i in range(16)]) for item in won]
    assert sorted(r for r in results if isinstance(r, int)) == list(range(10))
    assert sorted(r for r in results if isinstance(r, str)) == QUEUE[:10]


def test_two_processes_never_double_claim(db_url):
    """Two worker processes claiming the same 40 slots from opposite ends: every slot, queue post and attempt once."""
    open_engine(db_url).dispose()  # create the schema before the race
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=claim_all, args=(db_url, f"proc{i}", 40, go, bool(i), results)) for i in range(2)]
    for proc in procs:
        proc.start()
    assert [results.get(timeout=60) for _ in procs] == ["ready", "ready"]
    go.set()
    per_process = [results.get(timeout=120) for _ in procs]
    # Which process wins how many depends on the OS scheduler; only "each slot exactly once" is pinned.
    won = [pair for pairs in per_process for pair in pairs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    fixed = sorted(i for i, _ in won if i < 1000)
    queue_posts = sorted(post for i, post in won if 1000 <= i < 2000)
    begun = sorted((i - 2000, attempt) for i, attempt in won if i >= 2000)
    assert fixed == list(range(40))
    assert queue_posts == QUEUE[:40]
    assert begun == [(i, "attempt 1") for i in range(40)]
    engine = open_engine(db_url)
    ledger = Ledger(engine)
    assert ledger.counts()["claimed"] == 120
    assert all(len(ledger.attempts_of(ledger.get(slot_key(i, "post:begun")).id)) == 1 for i in range(40))
    engine.dispose()


def test_a_worker_that_lost_its_claim_cannot_overwrite_the_new_owner(ledger, clock):
    """After a takeover, the old owner's late retry or failure record is refused; a publication still lands."""
    row = ledger.claim(slot_key(1), "slow", LEASE, post="launch")
    clock.advance(LEASE.total_seconds())
    assert ledger.claim(slot_key(1), "new", LEASE, post="launch").owner == "new"
    assert not ledger.record_retry(row.id, clock.now(), "RateLimited", owner="slow")
    assert not ledger.record_failed(row.id, "rejected", "ContentRejected", owner="slow")
    assert ledger.get(slot_key(1)).owner == "new"
    ledger.record_published(row.id, "42", "https://x/42")  # the platform has it: that is recorded regardless
    assert ledger.get(slot_key(1)).state == "published"


def test_claim_and_begin_records_the_attempt_in_the_claim_and_asks_to_reconcile_a_dead_one(ledger, clock):
    """One transaction claims and numbers the attempt; a take-over after a worker died mid-attempt says reconcile."""
    key = slot_key(1)
    row, n, reconcile = ledger.claim_and_begin(
        key, "dead", LEASE, post="launch", schedule="launch", slot=0, platform="x"
    )
    assert (row.attempts, n, reconcile) == (0, 1, False)
    assert [(a.n, a.owner, a.outcome) for a in ledger.attempts_of(row.id)] == [(1, "dead", None)]
    assert ledger.claim_and_begin(key, "w2", LEASE, post="launch", schedule="launch", slot=0, platform="x") is None
    clock.advance(LEASE.total_seconds())
    again, n, reconcile = ledger.claim_and_begin(
        key, "w2", LEASE, post="launch", schedule="launch", slot=0, platform="x"
    )
    assert (again.id, again.attempts, n, reconcile) == (row.id, 1, 2, True)
    assert ledger.get(key).owner == "w2"
    ledger.record_published(again.id, "42", "https://x.com/a/status/42", attempt=n)
    assert ledger.claim_and_begin(key, "w3", LEASE, post="launch", schedule="launch", slot=0, platform="x") is None
