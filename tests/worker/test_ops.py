"""Issue 18: a running worker raises each alert kind, serves /metrics and /healthz, and survives a ledger outage."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.clock import FakeClock
from bot.core.values import Mention
from bot.ledger.reshares import NewDecision, ReshareLedger
from bot.observability.alerts import Alerter
from bot.worker.ops import Operations, start_http
from bot.worker.runtime import Worker
from sandboxes.postgres import Postgres
from tests.observability.receiver import Receiver
from tests.worker.campaigns import write_campaign

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)


@pytest.fixture
def account(x_sandbox, monkeypatch):
    """A fresh X account on the shared sandbox, its credentials in the environment."""
    acc = x_sandbox.create_account(f"o{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


@pytest.fixture
def other(x_sandbox, monkeypatch):
    """A second X account: its own rate gate, so its slots are not held up by the first account's."""
    acc = x_sandbox.create_account(f"p{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


def _campaign(root: Path, account: Any, other: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        root,
        [account, other],
        posts={name: f"{name} {tag}" for name in ("fine", "refused", "limited", "revoked")},
        schedules={
            "main": {
                "timezone": "UTC",
                "slots": [
                    {"at": "2022-01-12T08:30", "post": "fine", "accounts": [other.id]},
                    {"at": "2022-01-12T09:00", "post": "refused", "accounts": [account.id]},
                    {"at": "2022-01-12T10:00", "post": "limited", "accounts": [account.id]},
                    {"at": "2022-01-12T11:00", "post": "revoked", "accounts": [other.id]},
                ],
            }
        },
    )


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _queued_review(worker: Worker, account: Any, decided: datetime) -> int:
    mention = Mention(
        remote_id=uuid.uuid4().hex,
        url="https://x.com/supporter/status/1",
        author_id="42",
        author_handle="supporter",
        author_name="A Supporter",
        text="Free Andrei and Irina #FreeAndreiandIrina",
        created_at=decided,
    )
    item = NewDecision("x", "x", "*", account.id, mention, "review", "queued", "review_mode")
    [row_id] = ReshareLedger(worker.ledger.engine, worker.campaign.name).record(decided, [item])
    assert row_id is not None
    return row_id


def test_each_alert_kind_from_a_running_worker_and_metrics_parsed(tmp_path, x_sandbox, account, other) -> None:
    """Refused, rate-limited and revoked publications, an unknown outcome, a token near expiry, restarts and an
    old review item each reach the receiver once; /metrics parses and counts them."""
    _campaign(tmp_path, account, other)
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker = Worker(tmp_path, clock=clock, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=4)
    walls = iter(range(1000, 2000, 60))
    with Receiver() as receiver:
        worker.ops = Operations(
            worker,
            alerter=Alerter([receiver.url], campaign=worker.campaign.name, group=0, thread=False),
            environ={"BOT_ALERT_RESTARTS": "2", "BOT_ALERT_REVIEW_AGE": "3600"},
            wall=lambda: float(next(walls)),
        )
        http = start_http(worker, _collect, None, {"BOT_HTTP_PORT": "0"})
        try:
            worker.start()
            clock.set(NINE - timedelta(minutes=30) + timedelta(seconds=5))
            worker.run_pending()
            x_sandbox.fail_next("rejected", path="/2/tweets")
            clock.set(NINE)
            worker.run_pending()
            # One 429: the adapter's rate gate then holds the account's next tries too (for a minute of wall
            # time), so the post is pushed further past its slot at each retry.
            x_sandbox.fail_next("rate_limited", retry_after=60, path="/2/tweets")
            clock.set(NINE + timedelta(hours=1))
            worker.run_pending()
            for _ in range(2):
                clock.advance(300)  # past each retry's time
                worker.run_pending()
            x_sandbox.fail_next("auth", path="/2/tweets")
            clock.set(NINE + timedelta(hours=2))
            worker.run_pending()
            worker.ops.needs_attention("limited on x (x), slot 2022-01-12 10:00 UTC", "gave_up_uncertain")
            worker.ops.token_expires(account.id, clock.now() + timedelta(days=3))
            assert _status_text(tmp_path, clock).count(f"{account.id}") >= 1
            assert "Tokens expiring" in _status_text(tmp_path, clock)
            worker.ops.started()
            worker.ops.started()  # three starts within the hour: two restarts, not more than 2
            assert not any(m["title"].endswith("keeps restarting") for m in receiver.messages)
            assert worker.ops.started() == 3
            review_id = _queued_review(worker, account, clock.now() - timedelta(hours=2))
            worker.ops.check()
            worker.ops.check()  # the same conditions seen again: no second message
            worker.ops.alerts.flush()
            worker.ops.reloaded(worker.reload_now(["schedules/main.yaml"]))
            status, text = _get(http.url + "metrics")
        finally:
            http.close()
            worker.close()
    titles = sorted(m["title"].split(": ", 1)[1] for m in receiver.messages)
    assert titles == sorted(
        [
            "2 publications failed permanently",  # refused and revoked, in one message
            "an account's token expires within 7 days",
            "an account's credentials were refused",
            "an account's rate limit keeps pushing posts past their slot",
            "a publication needs attention (its outcome is unknown)",
            "the worker keeps restarting",
            "a reshare candidate has waited too long for review",
        ]
    ), titles
    bodies = "\n".join(m["message"] for m in receiver.messages)
    assert "refused" in bodies and f"#{review_id}" in bodies and "restarted 3 times" in bodies
    for secret in [*account.env.values(), *other.env.values()]:
        assert secret not in bodies
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    published: dict[str, float] = {}
    for sample in families["bot_publications"].samples:
        if sample.name.endswith("_total"):
            published[sample.labels["outcome"]] = published.get(sample.labels["outcome"], 0) + sample.value
    assert published.pop("retry_later") >= 3  # the rate-limited post's tries, one more if 11:00 found it due
    assert published == {"failed": 2.0, "published": 1.0}
    lateness = {
        s.name: s for s in families["bot_publication_lateness_seconds"].samples if s.name.endswith(("_count", "_sum"))
    }
    assert lateness["bot_publication_lateness_seconds_count"].value == 1
    assert lateness["bot_publication_lateness_seconds_sum"].value == 5.0
    depth = {s.labels["queue"]: s.value for s in families["bot_queue_depth"].samples}
    assert depth["review"] == 1 and depth["in_flight"] == 0
    reshares = {(s.labels["status"], s.labels["reason"]): s.value for s in families["bot_reshare_decisions"].samples}
    assert reshares[("queued", "review_mode")] == 1
    [expiry] = families["bot_token_expiry_seconds"].samples
    assert expiry.value == 3 * 86400 and expiry.labels == {"platform": "x", "account": account.id}
    reloads = {
        s.labels["result"]: s.value for s in families["bot_campaign_reloads"].samples if s.name.endswith("_total")
    }
    assert reloads == {"accepted": 1.0}


def _status_text(root: Path, clock: Any) -> str:
    """What `bot status` prints for the campaign at ``root`` (its own process would read the same files)."""
    import contextlib
    import io

    from bot.cli import build_parser
    from bot.cli.status import main as status_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status_main(build_parser("status").parse_args(["--campaign", str(root), "status"]), clock=clock)
    return out.getvalue()


def _collect(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from bot.cli.status import collect

    return collect(*args, **kwargs)


@pytest.mark.slow
def test_healthz_turns_503_when_the_ledger_database_stops_and_200_when_it_is_back(tmp_path, account, other) -> None:
    """With a PostgreSQL ledger, /healthz answers 200, then 503 naming the ledger while the server is stopped,
    then 200 again once it runs; the metrics page still answers during the outage."""
    _campaign(tmp_path, account, other)
    with Postgres() as pg:
        clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
        worker = Worker(tmp_path, clock=clock, database_url=pg.new_database("healthz"), threads=4)
        http = start_http(worker, _collect, None, {"BOT_HTTP_PORT": "0"})
        try:
            code, body = _get(http.url + "healthz")
            assert code == 503 and "scheduler not running" in json.loads(body)["problems"]
            worker.start()
            assert _get(http.url + "healthz") == (200, json.dumps({"ok": True, "problems": []}) + "\n")
            pg.pause()
            code, body = _get(http.url + "healthz")
            assert code == 503, body
            [problem] = json.loads(body)["problems"]
            assert problem.startswith("ledger does not answer: OperationalError")
            assert _get(http.url + "metrics")[0] == 200
            pg.resume()
            assert _get(http.url + "healthz")[0] == 200
        finally:
            http.close()
            worker.close()


def test_token_expiry_is_asked_off_the_scheduler_thread_and_reaches_bot_status(tmp_path, instagram_sandbox) -> None:
    """The daily look asks six Instagram accounts' tokens in a thread of its own (check() returns at once), four
    at a time, and writes what it learned once, where `bot status` reads it."""
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from bot.core.model import Account
    from bot.ledger.token_expiry import read_token_expiry
    from bot.publishing.adapters import AdapterPool
    from tests.platforms.support import adapter_for, fresh_name

    made = [instagram_sandbox.create_account(fresh_name("ig")) for _ in range(6)]
    accounts = {
        m.id: Account(id=m.id, platform="instagram", base_url=m.entry["base_url"], credentials={}) for m in made
    }
    adapters = {m.id: adapter_for(m, state_dir=tmp_path) for m in made}
    worker = SimpleNamespace(
        campaign=SimpleNamespace(name="c", accounts=accounts, root=tmp_path, queues={}, schedules=[]),
        publisher=SimpleNamespace(paused_accounts={}, adapters=AdapterPool(lambda a: adapters[a.id])),
        clock=FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC)),
    )
    ops = Operations(worker, alerter=Alerter([], campaign="c", group=0, thread=False), environ={})
    with capture_logs() as logs:
        ops.check()
        assert ops.asking is not None and ops.asking.name == "token-expiry"
        ops.asking.join(60)
    assert not [e for e in logs if e["event"] in ("token_expiry_write_failed", "token_expiry_check_failed")]
    expiring = read_token_expiry(tmp_path / "state", datetime(2100, 1, 1, tzinfo=UTC), timedelta(days=7))
    assert {(e["account"], e["platform"]) for e in expiring} == {(a, "instagram") for a in accounts}
    first = ops.asking
    ops.check()  # asked today already: no second round
    assert ops.asking is first
    for adapter in adapters.values():
        adapter.close()


_NO_PORT = """
import sys
from types import SimpleNamespace
from bot.observability.alerts import Alerter
from bot.worker.ops import Operations, start_http
worker = SimpleNamespace(campaign=SimpleNamespace(name="c"))
ops = Operations(worker, alerter=Alerter([], campaign="c", group=0, thread=False), environ={})
ops.metrics.publication("x", "a", "published", 3.0)
ops.metrics.reloaded(True)
assert start_http(worker, dict, None, {}) is None
print(type(ops.metrics).__name__, "prometheus_client" in sys.modules)
"""


def test_without_an_http_port_the_worker_counts_no_metrics_and_never_imports_prometheus() -> None:
    """Without BOT_HTTP_PORT nothing can serve /metrics: Operations keeps no-op metrics and prometheus-client
    stays out of the process (about 1.2 MB of an idle worker)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _NO_PORT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NoMetrics", "False"]


def test_with_an_http_port_metrics_are_counted_from_the_start() -> None:
    """With BOT_HTTP_PORT set, Operations counts Prometheus metrics from its construction, as before."""
    from types import SimpleNamespace

    from bot.observability.metrics import Metrics

    worker = SimpleNamespace(campaign=SimpleNamespace(name="c"))
    ops = Operations(
        worker, alerter=Alerter([], campaign="c", group=0, thread=False), environ={"BOT_HTTP_PORT": "8080"}
    )
    assert isinstance(ops.metrics, Metrics)
    ops.metrics.publication("x", "a", "published", 3.0)
    assert ops.count_metrics() is ops.metrics  # start_http keeps what was counted
    families = {f.name: f for f in text_string_to_metric_families(ops.metrics.render()[0].decode())}
    [published] = [s for s in families["bot_publications"].samples if s.name.endswith("_total")]
    assert published.value == 1 and published.labels == {"platform": "x", "account": "a", "outcome": "published"}
