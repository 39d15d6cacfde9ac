"""The Publisher end to end against the X sandbox: real tweepy/requests calls over loopback sockets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.core.model import Account
from bot.ledger.publications import PublicationKey
from bot.publishing.adapters import build_adapter
from bot.publishing.publisher import AdapterPool, Outcome, Publisher, RetryPolicy
from sandboxes.x.sandbox import XSandbox
from tests.publishing.support import make_campaign, occurrence, unique

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives platform servers over loopback


def sandbox_account(sandbox, monkeypatch) -> tuple[Account, object]:
    """A fresh account on the sandbox, its secrets in the environment, as the campaign model."""
    remote = sandbox.create_account(unique("pub"))
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    return Account(id=remote.id, **remote.entry), remote


def campaign_for(tmp_path, account):
    tag = unique("run")  # X refuses duplicate text, and the sandbox lives for the whole session
    return make_campaign(
        tmp_path,
        [account],
        [
            ("launch", None, f"Andrei and Irina have been jailed in Belarus for one year. #FreeAndreiandIrina {tag}"),
            ("v1", "videos", f"Our colleague Andrei has been behind bars for a year. #FreeAndreiandIrina {tag}"),
            ("v2", "videos", f"Irina Zlobina is a journalist, not a criminal. #FreeAndreiandIrina {tag}"),
        ],
    )


@pytest.fixture
def x_setup(x_sandbox, monkeypatch, tmp_path, ledger, clock):
    account, remote = sandbox_account(x_sandbox, monkeypatch)
    campaign = campaign_for(tmp_path, account)
    publisher = Publisher(campaign, ledger, AdapterPool(), clock, "w1")
    yield publisher, account, remote
    publisher.adapters.close()


def test_each_slot_lands_on_the_platform_exactly_once(x_setup, x_sandbox, clock):
    """Fixed and queue slots publish once, with the platform's id and URL recorded, and never again."""
    publisher, account, remote = x_setup
    clock.set(NINE)
    occs = [
        occurrence(NINE, "post:launch", [account.id]),
        occurrence(NINE, "queue:videos", [account.id], slot=1),
        occurrence(NINE + timedelta(minutes=1), "queue:videos", [account.id], slot=1),
    ]
    with capture_logs() as logs:
        results = [publisher.fire(o, account.id) for o in occs]
    assert [(r.outcome, r.post) for r in results] == [
        (Outcome.published, "launch"),
        (Outcome.published, "v1"),
        (Outcome.published, "v2"),
    ]
    assert [publisher.fire(o, account.id).outcome for o in occs] == [Outcome.not_mine] * 3
    posts = x_sandbox.posts(remote)
    assert [p.text for p in posts] == [publisher.campaign.posts[p].text for p in ("launch", "v1", "v2")]
    assert [(r.remote_id, r.url) for r in results] == [(p.remote_id, p.url) for p in posts]
    line = next(e for e in logs if e["event"] == "post_published")
    assert {
        k: line[k] for k in ("campaign", "post", "account", "platform", "slot", "target", "attempt", "outcome")
    } == {
        "campaign": "free",
        "post": "launch",
        "account": account.id,
        "platform": "x",
        "slot": "2022-01-12T09:00:00Z",
        "target": "post:launch",
        "attempt": 1,
        "outcome": "published",
    }
    assert line["remote_id"] == posts[0].remote_id and line["url"] == posts[0].url and line["duration_ms"] >= 0


def test_timeout_after_acceptance_is_reconciled_without_a_second_post(x_setup, x_sandbox, clock):
    """The server stores the post but answers too late; the retry finds it instead of posting again."""
    publisher, account, remote = x_setup
    publisher.adapters = AdapterPool(timeout=1.0)  # the sandbox holds a "timeout" answer for 2 s
    clock.set(NINE)
    x_sandbox.fail_next("timeout", path="/2/tweets")
    occ = occurrence(NINE, "post:launch", [account.id])
    first = publisher.fire(occ, account.id)
    assert (first.outcome, first.reason) == (Outcome.retry_later, "UncertainOutcome")
    assert len(x_sandbox.posts(remote)) == 1  # the platform did take it
    clock.set(first.retry_at)
    with capture_logs() as logs:
        second = publisher.fire(occ, account.id)
    assert second.outcome is Outcome.published and logs[-1]["reconciled"] is True
    [post] = x_sandbox.posts(remote)
    assert second.remote_id == post.remote_id
    assert [a.outcome for a in publisher.ledger.attempts_of(second.publication_id)] == ["uncertain", "published"]


def left_by_a_dead_worker(publisher, account, clock) -> PublicationKey:
    """At 09:00, the launch post's claim and first attempt as a worker leaves them when it dies mid-call."""
    clock.set(NINE)
    key = PublicationKey("free", NINE, "post:launch", account.id)
    row = publisher.ledger.claim(key, "dead", timedelta(minutes=10), post="launch", schedule="launch", slot=0)
    publisher.ledger.start_attempt(row.id, "dead")
    return key


def test_worker_dead_between_acceptance_and_ledger_write(x_setup, x_sandbox, clock):
    """A worker that posted and died before recording leaves a claim the next worker reconciles, not reposts."""
    publisher, account, remote = x_setup
    key = left_by_a_dead_worker(publisher, account, clock)
    adapter = build_adapter(account)  # exactly what the dead worker sent, then it was killed
    adapter.publish(publisher.campaign.posts["launch"].outgoing("x", key.token()))
    clock.advance(600)
    [expired] = publisher.ledger.expired_claims()
    result = publisher.resume(expired)
    assert result.outcome is Outcome.published
    [post] = x_sandbox.posts(remote)
    assert (result.remote_id, publisher.ledger.get(key).state) == (post.remote_id, "published")


def test_rate_limit_reset_from_the_platform_is_honoured(monkeypatch, tmp_path, sqlite_ledger, clock):
    """A 429 with x-rate-limit-reset puts the retry after the reset, and the retry publishes."""
    wall = lambda: clock.now().timestamp()
    with XSandbox(wall=wall) as sandbox:
        account, remote = sandbox_account(sandbox, monkeypatch)
        publisher = Publisher(campaign_for(tmp_path, account), sqlite_ledger, AdapterPool(wall=wall), clock, "w1")
        clock.set(NINE)
        sandbox.fail_next("rate_limited", retry_after=300, path="/2/tweets")
        occ = occurrence(NINE, "post:launch", [account.id])
        first = publisher.fire(occ, account.id)
        assert first.outcome is Outcome.retry_later and first.retry_at >= NINE + timedelta(seconds=300)
        clock.set(first.retry_at)
        assert publisher.fire(occ, account.id).outcome is Outcome.published
        assert len(sandbox.posts(remote)) == 1
        publisher.adapters.close()


def test_refused_credentials_name_the_variables_not_the_values(x_setup, x_sandbox, clock):
    """A 401 fails the slot once at error level naming the account's variables; no secret is logged."""
    publisher, account, remote = x_setup
    clock.set(NINE)
    x_sandbox.fail_next("auth", path="/2/tweets")
    with capture_logs() as logs:
        first = publisher.fire(occurrence(NINE, "post:launch", [account.id]), account.id)
        later = publisher.fire(occurrence(NINE, "queue:videos", [account.id]), account.id)
    assert (first.reason, later.reason) == ("auth", "account_paused")
    [error] = [e for e in logs if e["log_level"] == "error"]
    assert all(name in error["error"] for name in remote.env)
    assert not any(value in repr(logs) for value in remote.env.values())
    assert x_sandbox.posts(remote) == []


def test_duplicate_content_fails_without_retry(x_setup, x_sandbox, clock):
    """X's duplicate-content refusal fails the publication at once ("duplicate")."""
    publisher, account, remote = x_setup
    clock.set(NINE)
    x_sandbox.fail_next("duplicate", path="/2/tweets")
    result = publisher.fire(occurrence(NINE, "post:launch", [account.id]), account.id)
    assert (result.outcome, result.reason) == (Outcome.failed, "duplicate")
    assert [a.outcome for a in publisher.ledger.attempts_of(result.publication_id)] == ["failed"]


def test_unavailable_platform_retries_then_publishes(x_setup, x_sandbox, clock):
    """Two 503s are retried with backoff; the third attempt publishes one post."""
    publisher, account, remote = x_setup
    publisher.retry = RetryPolicy(max_attempts=5, base_delay=10, max_delay=60)
    clock.set(NINE)
    x_sandbox.fail_next("unavailable", count=2, path="/2/tweets")
    occ = occurrence(NINE, "post:launch", [account.id])
    outcomes = []
    for _ in range(3):
        result = publisher.fire(occ, account.id)
        outcomes.append(result.outcome)
        if result.retry_at:
            clock.set(result.retry_at)
    assert outcomes == [Outcome.retry_later, Outcome.retry_later, Outcome.published]
    assert len(x_sandbox.posts(remote)) == 1


def test_two_processes_on_postgres_publish_every_post_once(x_sandbox, postgres, tmp_path, request):
    """Two publisher processes on one PostgreSQL ledger, firing the same 40 slots, post each text exactly once."""
    import multiprocessing

    from tests.ledger.databases import fresh_url
    from tests.publishing.race import publish_all

    url = fresh_url("postgres", request, tmp_path)
    remote = x_sandbox.create_account(unique("two"))
    tag = unique("r")
    texts = [f"Day {i} of detention for Andrei and Irina #FreeAndreiandIrina {tag}" for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=publish_all,
            args=(url, remote.id, remote.entry, remote.env, texts, f"w{i}", bool(i), str(tmp_path), results),
        )
        for i in range(2)
    ]
    for proc in procs:
        proc.start()
    assert [results.get(timeout=60) for _ in procs] == ["ready", "ready"]
    outcomes = [o for _ in procs for o in results.get(timeout=180)]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert outcomes.count("published") == 40 and outcomes.count("not_mine") == 40
    assert sorted(p.text for p in x_sandbox.posts(remote)) == sorted(texts)


def test_lost_request_landing_after_the_look_up_is_recorded_as_ours(x_setup, x_sandbox, clock):
    """A dead worker's post that lands after the retry's look-up makes X refuse the retry as a duplicate; the live post is recorded, not a failure."""
    import threading
    import time

    publisher, account, remote = x_setup
    key = left_by_a_dead_worker(publisher, account, clock)
    dead = build_adapter(account)  # the dead worker's request, still on its way
    timeline = f"/2/users/{dead.whoami().id}/tweets"
    x_sandbox.fail_next("timeout", path=timeline)  # the look-up is answered 2 s late, after its result was read
    mark = len(x_sandbox.requests())

    def land_after_the_look_up() -> None:
        while not any(r["path"] == timeline for r in x_sandbox.requests()[mark:]):
            time.sleep(0.01)
        dead.publish(publisher.campaign.posts["launch"].outgoing("x", key.token()))

    landing = threading.Thread(target=land_after_the_look_up)
    landing.start()
    clock.advance(600)
    [expired] = publisher.ledger.expired_claims()
    with capture_logs() as logs:
        result = publisher.resume(expired)
    landing.join(timeout=30)
    assert result.outcome is Outcome.published
    [post] = x_sandbox.posts(remote)
    assert result.remote_id == post.remote_id and publisher.ledger.get(key).state == "published"
    statuses = [(r["method"], r["status"]) for r in x_sandbox.requests()[mark:] if r["path"] == "/2/tweets"]
    assert statuses == [("POST", 201), ("POST", 403)]  # the dead worker's, then ours refused as a duplicate
    assert next(e for e in logs if e["event"] == "post_published")["reconciled"] is True


def test_worker_that_lost_its_claim_mid_upload_stops_before_posting(x_setup, x_sandbox, clock, ledger):
    """A worker stalled past its lease whose claim another worker took over stops its upload and never posts."""

    from bot.core.model import Media
    from sandboxes.media import make_image

    slow, account, remote = x_setup
    images = [
        Media(
            file=f"media/b{i}.png",
            path=make_image(slow.campaign.root / "posts" / "media" / f"b{i}.png", (400, 300)),
            alt=f"Banner {i}",
        )
        for i in range(2)
    ]
    launch = slow.campaign.posts["launch"]
    slow.campaign.posts["launch"] = dataclasses.replace(launch, media=images)
    # The two workers stand for two processes: they must not share uploads through this one's registry.
    slow.campaign.accounts[account.id] = dataclasses.replace(account, options={**account.options, "share_media": False})
    other = Publisher(slow.campaign, ledger, AdapterPool(), clock, "w2")
    occ = occurrence(NINE, "post:launch", [account.id])
    clock.set(NINE)
    taken_over = []

    def stall_then_lose_the_claim(ctx, sent, total):  # after the first image: w1 stalls, w2 takes over
        if not taken_over:
            clock.advance(11 * 60)
            taken_over.append(other.resume(other.ledger.expired_claims()[0]))

    slow.on_progress = stall_then_lose_the_claim
    try:
        with capture_logs() as logs:
            result = slow.fire(occ, account.id)
    finally:
        other.adapters.close()
    assert (result.outcome, result.reason) == (Outcome.not_mine, "lease_lost")
    assert taken_over[0].outcome is Outcome.published
    [post] = x_sandbox.posts(remote)  # w2's post only
    assert post.remote_id == taken_over[0].remote_id and len(post.media) == 2
    key = PublicationKey("free", NINE, "post:launch", account.id)
    assert ledger.get(key).state == "published" and ledger.get(key).remote_id == post.remote_id
    assert [(a.owner, a.outcome) for a in ledger.attempts_of(result.publication_id)] == [
        ("w1", "abandoned"),
        ("w2", "published"),
    ]
    abandoned = next(e for e in logs if e["event"] == "publish_abandoned")
    assert abandoned["reason"] == "lease_lost" and abandoned["account"] == account.id
