"""Publications nobody can tell went out: never sent again, kept in ``needs_attention`` until a person resolves them.

The platform here is the in-memory ``ScriptedLedgerTestPlatform`` (a stand-in for ledger logic, not a
platform model); Telegram's and the Graph platforms' own tests raise ``OutcomeUnknown`` from their sandboxes.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.cli import main as cli_main
from bot.cli.status import collect, render
from bot.core.errors import OutcomeUnknown, UncertainOutcome
from bot.core.model import Account
from bot.core.values import Outgoing, Receipt
from bot.ledger.db import default_url, open_engine
from bot.ledger.publications import Ledger, PublicationKey
from bot.ledger.schema import NEEDS_ATTENTION
from bot.publishing.publisher import Outcome
from tests.publishing.support import ScriptedLedgerTestPlatform, after_posting, occurrence, scripted, scripted_publisher

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
ACCOUNTS = [Account(id="chan", platform="x", credentials={"access_token": "CHAN_TOKEN"})]
POSTS = [("launch", None, "Free Andrei and Irina #FreeAndreiandIrina"), ("v1", "videos", "video one")]


class NoReadBack(ScriptedLedgerTestPlatform):
    """A stand-in for a platform with no idempotency key and no read-back (a Telegram channel)."""

    def _find_published(self, out: Outgoing) -> Receipt | None:
        self.calls.append("find_published")
        raise OutcomeUnknown("a bot cannot read a channel's history")


class Noting(ScriptedLedgerTestPlatform):
    """A stand-in that notes a container id before "publishing" it, as the Instagram adapter does."""

    def _publish(self, out: Outgoing, progress) -> Receipt:
        out.notes.put("container", "c-17")
        return super()._publish(out, progress)

    def _find_published(self, out: Outgoing) -> Receipt | None:
        self.calls.append(f"find_published:{out.notes.get('container')}")
        return self.published.get(out.key)


def build_publisher(tmp_path, ledger, clock, rng, cls=NoReadBack):
    publisher, adapters = scripted_publisher(tmp_path, ledger, clock, rng, ACCOUNTS, POSTS, cls)
    return publisher, scripted(publisher, adapters, "chan")


def test_an_unknown_outcome_waits_for_a_person_and_is_never_sent_again(tmp_path, sqlite_ledger, clock, rng):
    """OutcomeUnknown from publish records needs_attention at error level; later fires, retries and sweeps leave it."""
    publisher, platform = build_publisher(tmp_path, sqlite_ledger, clock, rng)
    clock.set(NINE)
    platform.script = [OutcomeUnknown("timed out after sending")]
    occ = occurrence(NINE, "post:launch", ["chan"])
    with capture_logs() as logs:
        result = publisher.fire(occ, "chan")
    assert (result.outcome, result.reason) == (Outcome.needs_attention, "outcome_unknown")
    event = next(e for e in logs if e["event"] == "publication_needs_attention")
    assert event["log_level"] == "error" and "timed out after sending" in event["error"]
    assert publisher.fire(occ, "chan").outcome is Outcome.not_mine
    clock.set(NINE + timedelta(hours=2))
    assert sqlite_ledger.pending_retries() == [] and sqlite_ledger.expired_claims() == []
    assert platform.calls == ["publish"]
    (row,) = sqlite_ledger.needing_attention()
    assert (row.state, row.post, row.attempts) == (NEEDS_ATTENTION, "launch", 1)
    assert [a.outcome for a in sqlite_ledger.attempts_of(row.id)] == ["uncertain"]


def test_a_crashed_attempt_on_a_platform_without_read_back_goes_to_attention_unsent(
    tmp_path, sqlite_ledger, clock, rng
):
    """A claim whose worker died mid-call is taken over, cannot be reconciled, and is not sent a second time."""
    publisher, platform = build_publisher(tmp_path, sqlite_ledger, clock, rng)
    clock.set(NINE)
    key = PublicationKey(publisher.campaign.name, NINE, "post:launch", "chan")
    row = sqlite_ledger.claim(key, "dead-worker", timedelta(minutes=10), post="launch", platform="x")
    sqlite_ledger.start_attempt(row.id, "dead-worker")  # the worker died inside the platform call
    clock.set(NINE + timedelta(minutes=11))
    (expired,) = sqlite_ledger.expired_claims()
    result = publisher.resume(expired)
    assert result.outcome is Outcome.needs_attention
    assert platform.calls == ["find_published"]
    assert sqlite_ledger.needing_attention()[0].id == row.id


def test_an_uncertain_last_attempt_that_no_look_up_finds_needs_attention(tmp_path, sqlite_ledger, clock, rng):
    """Retries used up after an uncertain attempt: the bot does not guess, the row waits for a person."""
    publisher, platform = build_publisher(tmp_path, sqlite_ledger, clock, rng, cls=ScriptedLedgerTestPlatform)
    clock.set(NINE)
    platform.script = [UncertainOutcome("read timed out")] * 3
    occ = occurrence(NINE, "post:launch", ["chan"])
    result = publisher.fire(occ, "chan")
    while result.outcome is Outcome.retry_later:
        clock.set(result.retry_at)
        result = publisher.fire(occ, "chan")
    assert result.outcome is Outcome.needs_attention
    assert (
        sqlite_ledger.get(PublicationKey(publisher.campaign.name, NINE, "post:launch", "chan")).state == NEEDS_ATTENTION
    )


def test_notes_written_before_a_call_are_read_back_after_a_crash(tmp_path, sqlite_ledger, clock, rng):
    """What an adapter puts in ``out.notes`` is in the ledger when the next worker reconciles the publication."""
    publisher, platform = build_publisher(tmp_path, sqlite_ledger, clock, rng, cls=Noting)
    clock.set(NINE)
    timeout = after_posting(UncertainOutcome("read timed out"))
    platform.script = [timeout]
    occ = occurrence(NINE, "post:launch", ["chan"])
    first = publisher.fire(occ, "chan")
    row = sqlite_ledger.get(PublicationKey(publisher.campaign.name, NINE, "post:launch", "chan"))
    assert sqlite_ledger.notes_of(row.id) == {"container": "c-17"}
    # Another worker (its own publisher and adapters, the same ledger) reconciles it.
    other, other_platform = build_publisher(tmp_path / "other", sqlite_ledger, clock, rng, cls=Noting)
    other_platform.published = platform.published
    clock.set(first.retry_at)
    second = other.fire(occ, "chan")
    assert second.outcome is Outcome.published
    assert other_platform.calls == ["find_published:c-17"]


@pytest.fixture
def waiting(tmp_path, clock):
    """A campaign folder whose ledger holds one publication waiting for attention (id returned)."""
    engine = open_engine(default_url(tmp_path))
    ledger = Ledger(engine, clock)
    clock.set(NINE)
    key = PublicationKey("FreeAndreiandIrina", NINE, "post:launch", "telegram-belarus")
    row = ledger.claim(key, "w1", timedelta(minutes=10), post="launch", platform="telegram")
    n = ledger.start_attempt(row.id, "w1")
    ledger.record_needs_attention(row.id, "OutcomeUnknown: timed out after sending", attempt=n, owner="w1")
    yield ledger, row.id
    engine.dispose()


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_status_lists_what_needs_attention_with_the_command_that_resolves_it(waiting, clock):
    """`bot status` shows each publication waiting for a person, why, and how to resolve it."""
    ledger, pub_id = waiting
    text = render(collect(None, ledger, clock.now(), campaign_name="FreeAndreiandIrina"))
    assert "needs attention 1" in text
    assert f"#{pub_id}" in text and "timed out after sending" in text
    assert "bot attention resolve ID --published URL | --not-published" in text


def test_bot_attention_lists_and_resolves_as_published(waiting, tmp_path):
    """`bot attention` lists the row; `resolve --published URL` records it published with who and the URL."""
    ledger, pub_id = waiting
    code, out, _ = run_cli("--campaign", str(tmp_path), "attention")
    assert code == 0 and f"#{pub_id}" in out and "telegram-belarus" in out
    url = "https://t.me/freeandreiandirina/17"
    code, out, _ = run_cli(
        "--campaign", str(tmp_path), "attention", "resolve", str(pub_id), "--published", url, "--by", "olga"
    )
    assert code == 0 and url in out
    row = ledger.get(PublicationKey("FreeAndreiandIrina", NINE, "post:launch", "telegram-belarus"))
    assert (row.state, row.url, row.resolved_by, row.reason) == ("published", url, "olga", "confirmed_by_hand")
    assert ledger.used_posts("telegram-belarus") == {"launch"}
    code, _, err = run_cli("--campaign", str(tmp_path), "attention", "resolve", str(pub_id), "--not-published")
    assert code == 1 and "not waiting for attention" in err


def test_resolving_as_not_published_frees_the_post_and_says_how_to_send_it(waiting, tmp_path):
    """`--not-published` records a failure that does not use up the post, and prints the command to send it now."""
    ledger, pub_id = waiting
    assert ledger.used_posts("telegram-belarus") == {"launch"}  # held while nobody knows
    code, out, _ = run_cli("--campaign", str(tmp_path), "attention", "resolve", str(pub_id), "--not-published")
    assert code == 0 and "bot publish launch telegram-belarus --again" in out
    assert ledger.used_posts("telegram-belarus") == set()
    assert ledger.needing_attention() == []
