"""Alerts through apprise to a loopback receiver: grouping, counts, secrets, a failing receiver."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from bot.observability.alerts import KINDS, Alerter, urls_from
from bot.observability.redaction import register_secret
from tests.observability.receiver import Receiver


class Ticks:
    """An injected monotonic clock for the group window."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_reaches_the_receiver_with_its_title(kind: str) -> None:
    """Every alert kind arrives at an apprise json:// receiver as one message titled with the campaign."""
    with Receiver() as receiver:
        alerter = Alerter([receiver.url], campaign="FreeAndreiandIrina", thread=False)
        assert alerter.alert(kind, f"line for {kind}")
        assert alerter.flush() == 1
    [message] = receiver.messages
    assert message["title"] == f"campaign-bot FreeAndreiandIrina: {KINDS[kind][0]}"
    assert message["message"] == f"- line for {kind}"


def test_alerts_of_a_kind_are_grouped_per_window_with_counts() -> None:
    """The first alert goes out at once; later ones of the kind wait for the window and arrive as one counted message."""
    ticks = Ticks()
    with Receiver() as receiver:
        alerter = Alerter([receiver.url], campaign="C", group=300, monotonic=ticks, thread=False)
        alerter.alert("publication_failed", "launch on x-index: rejected")
        assert alerter.flush() == 1
        for n in range(3):
            alerter.alert("publication_failed", f"post {n} on x-index: rejected")
        alerter.alert("review_waiting", "#7 waited 9 h")
        ticks.now += 10
        assert alerter.flush() == 1  # review_waiting is a new kind: at once; the failures wait
        assert alerter.next_due() == pytest.approx(290)
        ticks.now += 290
        assert alerter.flush() == 1
        assert alerter.flush() == 0
    titles = [m["title"] for m in receiver.messages]
    assert titles == [
        "campaign-bot C: a publication failed permanently",
        "campaign-bot C: a reshare candidate has waited too long for review",
        "campaign-bot C: 3 publications failed permanently",
    ]
    assert receiver.messages[2]["message"].splitlines() == [f"- post {n} on x-index: rejected" for n in range(3)]


def test_a_key_is_alerted_once_until_its_repeat_time_or_until_forgotten() -> None:
    """A condition the periodic check sees every minute is sent once per repeat window, and again once cleared."""
    ticks = Ticks()
    with Receiver() as receiver:
        alerter = Alerter([receiver.url], group=0, repeat=3600, monotonic=ticks, thread=False)
        assert alerter.alert("token_revoked", "x-index refused", key="revoked:x-index")
        assert not alerter.alert("token_revoked", "x-index refused", key="revoked:x-index")
        ticks.now += 3600
        assert alerter.alert("token_revoked", "x-index refused", key="revoked:x-index")
        alerter.forget("revoked:x-index")
        assert alerter.alert("token_revoked", "x-index refused", key="revoked:x-index")
        alerter.flush()
    assert len(receiver.messages) == 1 and receiver.messages[0]["title"].endswith(
        "3 accounts' credentials were refused"
    )


def test_secrets_never_reach_the_receiver() -> None:
    """A registered secret inside an alert line is redacted from the title and body that are sent."""
    secret = "sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    register_secret(secret)
    with Receiver() as receiver:
        alerter = Alerter([receiver.url], campaign="C", thread=False)
        alerter.alert("publication_failed", f"launch on x-index: AuthFailed: bad token {secret}")
        alerter.flush()
    [message] = receiver.messages
    assert secret not in message["message"] and secret not in message["title"]
    assert "bad token" in message["message"]


def test_a_failing_receiver_is_logged_and_never_raises() -> None:
    """A receiver answering 500, and one that is not listening, give alert_failed log lines, not exceptions."""
    with Receiver(status=500) as receiver:
        alerter = Alerter([receiver.url], campaign="C", thread=False)
        alerter.alert("needs_attention", "launch on x-index: gave_up_uncertain")
        with capture_logs() as logs:
            assert alerter.flush() == 1
        url = receiver.url
    assert len(receiver.messages) == 1
    assert [e["event"] for e in logs if e["event"].startswith("alert_")] == ["alert_failed"]
    gone = Alerter([url], campaign="C", thread=False)  # the receiver has stopped: connection refused
    gone.alert("needs_attention", "launch on x-index: gave_up_uncertain")
    with capture_logs() as logs:
        gone.flush()
    [failed] = [e for e in logs if e["event"] == "alert_failed"]
    assert failed["kind"] == "needs_attention" and failed["count"] == 1


def test_the_alert_thread_sends_the_first_alert_at_once() -> None:
    """With its thread, an alerter sends a new kind's first alert without waiting for the window."""
    import time

    with Receiver() as receiver:
        alerter = Alerter([receiver.url], campaign="C", group=300)
        try:
            alerter.alert("worker_restarts", "restarted 5 times")
            deadline = time.monotonic() + 10
            while not receiver.messages and time.monotonic() < deadline:
                time.sleep(0.02)  # waiting for another thread's network send, not for a schedule
        finally:
            alerter.close()
    assert [m["title"] for m in receiver.messages] == ["campaign-bot C: the worker keeps restarting"]


def test_without_urls_alerts_are_off() -> None:
    """No BOT_ALERT_URLS: alert() reports it queued nothing, and the setting splits on spaces and commas."""
    alerter = Alerter.from_env("C", {})
    assert not alerter.enabled and not alerter.alert("publication_failed", "x")
    assert urls_from("json://a/ , form://b/\nmailto://c") == ["json://a/", "form://b/", "mailto://c"]
