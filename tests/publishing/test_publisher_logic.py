"""Publisher decisions that need no platform: skips, queue choice, retries, pauses, stop flag.

These use ScriptedLedgerTestPlatform, an in-memory stand-in; platform behaviour is pinned by
test_publisher_sandbox.py against the sandbox servers.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.core.errors import (
    AuthFailed,
    ContentRejected,
    DuplicateContent,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)
from bot.core.model import Account
from bot.ledger.publications import PublicationKey
from bot.publishing.publisher import AdapterPool, Outcome, Publisher
from tests.publishing.support import (
    ScriptedLedgerTestPlatform,
    after_posting,
    make_campaign,
    occurrence,
    scripted,
    scripted_publisher,
)

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
ACCOUNTS = [
    Account(id="acct-a", platform="x", credentials={"access_token": "ACCT_A_TOKEN"}),
    Account(id="acct-b", platform="x", credentials={"access_token": "ACCT_B_TOKEN"}),
]
POSTS = [
    ("launch", None, "Free Andrei and Irina #FreeAndreiandIrina"),
    ("v1", "videos", "video one"),
    ("v2", "videos", "video two"),
    ("v3", "videos", "video three"),
]


@pytest.fixture
def setup(tmp_path, sqlite_ledger, clock, rng):
    return scripted_publisher(tmp_path, sqlite_ledger, clock, rng, ACCOUNTS, POSTS)


def test_publishes_then_never_again(setup, clock):
    """A slot is published once; firing it again (same or other worker) is not_mine."""
    publisher, adapters = setup
    clock.set(NINE)
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    result = publisher.fire(occ, "acct-a")
    assert (result.outcome, result.post, result.remote_id) == (Outcome.published, "launch", "1")
    assert publisher.fire(occ, "acct-a").outcome is Outcome.not_mine
    assert len(adapters["acct-a"].published) == 1


def test_missed_slot_is_skipped_not_published(setup, clock):
    """A slot later than its grace is recorded skipped "missed" and nothing is sent."""
    publisher, adapters = setup
    clock.set(NINE + timedelta(hours=1, seconds=1))
    with capture_logs() as logs:
        result = publisher.fire(occurrence(NINE, "post:launch", ["acct-a"]), "acct-a")
    assert (result.outcome, result.reason) == (Outcome.skipped, "missed")
    assert adapters == {}
    assert [(e["event"], e["reason"], e["slot"]) for e in logs] == [
        ("publish_skipped", "missed", "2022-01-12T09:00:00Z")
    ]
    row = publisher.ledger.get(PublicationKey("free", NINE, "post:launch", "acct-a"))
    assert (row.state, row.reason) == ("skipped", "missed")


def test_late_slot_within_grace_is_published(setup, clock):
    """A slot fired late but within its grace still publishes."""
    publisher, _ = setup
    clock.set(NINE + timedelta(minutes=59))
    assert publisher.fire(occurrence(NINE, "post:launch", ["acct-a"]), "acct-a").outcome is Outcome.published


def test_slot_outside_the_window_is_skipped(setup, clock):
    """A slot dated after the schedule's window (in its time zone) is skipped "outside_window"."""
    publisher, _ = setup
    late = datetime(2022, 3, 13, 0, 30, tzinfo=UTC)  # 13 March in London
    clock.set(late)
    result = publisher.fire(occurrence(late, "post:launch", ["acct-a"]), "acct-a")
    assert (result.outcome, result.reason) == (Outcome.skipped, "outside_window")


def test_queue_slots_take_the_next_unused_post_per_account(setup, clock):
    """Queue slots walk the queue in order for each account separately, then skip "queue_empty"."""
    publisher, adapters = setup
    picked = {"acct-a": [], "acct-b": []}
    for hour in range(4):
        at = NINE + timedelta(hours=hour)
        clock.set(at)
        for account in ("acct-a", "acct-b") if hour < 2 else ("acct-a",):
            result = publisher.fire(occurrence(at, "queue:videos", [account]), account)
            picked[account].append((result.outcome.value, result.post, result.reason))
    assert picked["acct-a"] == [
        ("published", "v1", None),
        ("published", "v2", None),
        ("published", "v3", None),
        ("skipped", None, "queue_empty"),
    ]
    assert picked["acct-b"] == [("published", "v1", None), ("published", "v2", None)]


def test_skipped_queue_slot_does_not_use_up_a_post(setup, clock):
    """A missed queue slot leaves its post for the next slot."""
    publisher, _ = setup
    clock.set(NINE + timedelta(hours=3))
    assert publisher.fire(occurrence(NINE, "queue:videos", ["acct-a"]), "acct-a").reason == "missed"
    later = NINE + timedelta(hours=3)
    assert publisher.fire(occurrence(later, "queue:videos", ["acct-a"]), "acct-a").post == "v1"


def test_a_short_retry_after_is_the_wait_not_the_back_off(setup, clock):
    """Telegram's "retry after 1 s" is retried about a second later, not after the 15-30 s back-off."""
    publisher, adapters = setup
    clock.set(NINE)
    scripted(publisher, adapters, "acct-a").script = [RateLimited("429", retry_after=1)]
    first = publisher.fire(occurrence(NINE, "post:launch", ["acct-a"]), "acct-a")
    assert NINE + timedelta(seconds=1) < first.retry_at <= NINE + timedelta(seconds=2.1)


def test_rate_limit_retry_waits_at_least_retry_after(setup, clock):
    """A rate-limited attempt is retried no sooner than retry_after, then published on the retry."""
    publisher, adapters = setup
    clock.set(NINE)
    scripted(publisher, adapters, "acct-a").script = [RateLimited("429", retry_after=600)]
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    with capture_logs() as logs:
        first = publisher.fire(occ, "acct-a")
    assert first.outcome is Outcome.retry_later
    assert NINE + timedelta(seconds=600) < first.retry_at <= NINE + timedelta(seconds=662)
    assert logs[-1]["event"] == "publish_retried" and logs[-1]["retry_after"] == 600
    clock.set(first.retry_at - timedelta(seconds=1))
    assert publisher.fire(occ, "acct-a").outcome is Outcome.not_mine
    clock.set(first.retry_at)
    second = publisher.fire(occ, "acct-a")
    assert second.outcome is Outcome.published
    outcomes = [a.outcome for a in publisher.ledger.attempts_of(second.publication_id)]
    assert outcomes == ["retry", "published"]


def test_backoff_grows_with_jitter_and_gives_up(setup, clock):
    """Unavailable platforms are retried with growing jittered delays, then failed "gave_up"."""
    publisher, adapters = setup
    clock.set(NINE)
    scripted(publisher, adapters, "acct-a").script = [PlatformUnavailable("503")] * 3
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    delays = []
    for _ in range(2):
        before = clock.now()
        result = publisher.fire(occ, "acct-a")
        assert result.outcome is Outcome.retry_later
        delays.append((result.retry_at - before).total_seconds())
        clock.set(result.retry_at)
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60
    final = publisher.fire(occ, "acct-a")
    assert (final.outcome, final.reason) == (Outcome.failed, "gave_up")


def test_uncertain_attempt_is_reconciled_not_reposted(setup, clock):
    """After a timeout whose post did go out, the retry finds it instead of posting a second time."""
    publisher, adapters = setup
    clock.set(NINE)
    timeout = after_posting(UncertainOutcome("read timed out"))
    platform = scripted(publisher, adapters, "acct-a")
    platform.script = [timeout]
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    first = publisher.fire(occ, "acct-a")
    clock.set(first.retry_at)
    with capture_logs() as logs:
        second = publisher.fire(occ, "acct-a")
    assert second.outcome is Outcome.published and second.remote_id == "1"
    assert platform.calls == ["publish", "find_published"]
    assert logs[-1]["reconciled"] is True


def test_duplicate_refusal_after_an_uncertain_attempt_is_our_own_post(setup, clock):
    """A lost request that lands after the look-up, then refused as a duplicate, is recorded as published."""
    publisher, adapters = setup
    clock.set(NINE)
    timeout = after_posting(UncertainOutcome("read timed out"))
    platform = scripted(publisher, adapters, "acct-a")
    platform.script = [timeout, DuplicateContent("duplicate content")]
    platform.find_misses = 1
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    clock.set(publisher.fire(occ, "acct-a").retry_at)
    result = publisher.fire(occ, "acct-a")
    assert (result.outcome, result.remote_id) == (Outcome.published, "1")
    assert platform.calls == ["publish", "find_published", "publish", "find_published"]


@pytest.mark.parametrize(
    "error,reason", [(ContentRejected("too long"), "rejected"), (DuplicateContent("duplicate"), "duplicate")]
)
def test_content_errors_are_not_retried(setup, clock, error, reason):
    """Rejected and duplicate content fail at once, at error level, and use up the queue post."""
    publisher, adapters = setup
    clock.set(NINE)
    scripted(publisher, adapters, "acct-a").script = [error]
    with capture_logs() as logs:
        result = publisher.fire(occurrence(NINE, "queue:videos", ["acct-a"]), "acct-a")
    assert (result.outcome, result.reason, result.post) == (Outcome.failed, reason, "v1")
    assert (logs[-1]["event"], logs[-1]["log_level"]) == ("publish_failed", "error")
    assert "v1" in publisher.ledger.used_posts("acct-a", "videos")


def test_auth_failure_pauses_the_account_and_is_reported_once(setup, clock):
    """Refused credentials fail one slot at error level naming the variables; later slots skip quietly."""
    publisher, adapters = setup
    clock.set(NINE)
    scripted(publisher, adapters, "acct-a").script = [AuthFailed("401 Unauthorized")]
    with capture_logs() as logs:
        results = [
            publisher.fire(occurrence(NINE + timedelta(minutes=m), "post:launch", ["acct-a"]), "acct-a")
            for m in range(3)
        ]
        other = publisher.fire(occurrence(NINE, "post:launch", ["acct-b"]), "acct-b")
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.failed, "auth"),
        (Outcome.skipped, "account_paused"),
        (Outcome.skipped, "account_paused"),
    ]
    assert other.outcome is Outcome.published
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1 and "ACCT_A_TOKEN" in errors[0]["error"] and "acct-a" in errors[0]["error"]
    assert set(publisher.paused_accounts) == {"acct-a"}


def test_missing_secret_pauses_like_refused_credentials(tmp_path, sqlite_ledger, clock):
    """An unset credential variable fails the slot naming the variable and pauses the account."""
    campaign = make_campaign(tmp_path, ACCOUNTS, POSTS)
    publisher = Publisher(campaign, sqlite_ledger, AdapterPool(), clock, "w1")  # real builder: reads the env
    clock.set(NINE)
    result = publisher.fire(occurrence(NINE, "post:launch", ["acct-a"]), "acct-a")
    assert (result.outcome, result.reason) == (Outcome.failed, "auth")
    assert "ACCT_A_TOKEN is not set" in publisher.paused_accounts["acct-a"]


def test_editing_text_after_publication_does_not_republish(setup, clock, tmp_path):
    """A reload with a post's text changed finds the slot already published."""
    publisher, adapters = setup
    clock.set(NINE)
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    assert publisher.fire(occ, "acct-a").outcome is Outcome.published
    publisher.campaign = make_campaign(tmp_path, ACCOUNTS, [("launch", None, "Edited text #FreeAndreiandIrina")])
    assert publisher.fire(occ, "acct-a").outcome is Outcome.not_mine
    assert len(adapters["acct-a"].published) == 1


def test_stop_flag_claims_nothing_new(setup, clock):
    """Once the worker is stopping, fire leaves new slots unclaimed for the next process."""
    publisher, _ = setup
    clock.set(NINE)
    publisher.stop.set()
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    assert publisher.fire(occ, "acct-a").reason == "stopping"
    assert publisher.ledger.get(PublicationKey("free", NINE, "post:launch", "acct-a")) is None


def test_dead_worker_claim_is_taken_over_and_reconciled(setup, clock):
    """A claim left mid-attempt by a dead worker is taken over after its lease and reconciled first."""
    publisher, adapters = setup
    clock.set(NINE)
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    key = PublicationKey("free", NINE, "post:launch", "acct-a")
    row = publisher.ledger.claim(key, "dead-worker", timedelta(minutes=10), post="launch")
    publisher.ledger.start_attempt(row.id, "dead-worker")
    platform = scripted(publisher, adapters, "acct-a")
    assert publisher.fire(occ, "acct-a").outcome is Outcome.not_mine
    clock.advance(600)
    [expired] = publisher.ledger.expired_claims()
    result = publisher.resume(expired)
    assert result.outcome is Outcome.published
    assert platform.calls == ["find_published", "publish"]


def test_manual_publish_goes_through_the_ledger(setup, clock):
    """publish_now records one manual publication per post, account and day; ``again`` keys a new one to the second."""
    publisher, adapters = setup
    clock.set(datetime(2023, 5, 1, 12, 0, 0, 750000, tzinfo=UTC))
    result = publisher.publish_now("launch", "acct-b")
    assert result.outcome is Outcome.published
    row = publisher.ledger.get(PublicationKey("free", datetime(2023, 5, 1, tzinfo=UTC), "post:launch", "acct-b"))
    assert (row.manual, row.schedule, row.state) == (True, "manual", "published")
    clock.set(datetime(2023, 5, 1, 18, 30, tzinfo=UTC))
    assert publisher.publish_now("launch", "acct-b").outcome is Outcome.not_mine  # the same day: already done
    assert publisher.publish_now("launch", "acct-b", again=True).outcome is Outcome.published
    again = publisher.ledger.get(
        PublicationKey("free", datetime(2023, 5, 1, 18, 30, tzinfo=UTC), "post:launch", "acct-b")
    )
    assert (again.manual, again.state) == (True, "published")


def test_two_publishers_in_threads_publish_each_slot_once(tmp_path, sqlite_ledger, clock):
    """Two publishers sharing one ledger and firing the same 20 slots concurrently publish each once."""
    built = []

    def build(account):
        built.append(ScriptedLedgerTestPlatform(account, clock))
        return built[-1]

    campaign = make_campaign(tmp_path, ACCOUNTS, POSTS)
    publishers = [Publisher(campaign, sqlite_ledger, AdapterPool(build), clock, f"w{i}") for i in range(2)]
    clock.set(NINE)
    occs = [occurrence(NINE - timedelta(minutes=m), "post:launch", ["acct-a"]) for m in range(20)]
    results = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def run(i):
        barrier.wait()
        results[i] = [publishers[i].fire(o, "acct-a").outcome for o in occs]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is Outcome.published for r in results[0] + results[1]) == 20
    assert sum(len(p.published) for p in built) == 20


def test_long_upload_renews_the_lease(setup, clock):
    """Progress during a long upload keeps the claim, so no other worker takes it over mid-upload."""
    publisher, adapters = setup
    clock.set(NINE)
    occ = occurrence(NINE, "post:launch", ["acct-a"])
    key = PublicationKey("free", NINE, "post:launch", "acct-a")
    seen = []

    def upload(progress):
        for sent in range(1, 5):
            clock.advance(publisher.lease.total_seconds() / 2)
            progress(sent, 4)
            seen.append(publisher.ledger.get(key).lease_until - clock.now())
            assert publisher.ledger.claim(key, "other", publisher.lease, post="launch") is None

    scripted(publisher, adapters, "acct-a").during = upload
    assert publisher.fire(occ, "acct-a").outcome is Outcome.published
    assert all(left == publisher.lease for left in seen)
