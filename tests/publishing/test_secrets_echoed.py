"""A server that quotes the request's token in its error: the token is never stored in the ledger nor shown by status."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot import cli
from bot.core.model import Account
from bot.ledger.schema import attempts, publications
from bot.observability import redaction
from bot.publishing.publisher import AdapterPool, Outcome, Publisher
from tests.publishing.support import make_campaign, occurrence, unique

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives the Mastodon sandbox over loopback


def test_token_echoed_by_the_server_is_stored_and_shown_redacted(
    mastodon_sandbox, monkeypatch, tmp_path, sqlite_ledger, clock, capsys
) -> None:
    """Both the retry's and the final failure's error texts reach the ledger and `bot status` without the token."""
    remote = mastodon_sandbox.create_account(unique("echo"))
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    [token] = remote.env.values()
    account = Account(id=remote.id, **remote.entry)
    campaign = make_campaign(tmp_path, [account], [("launch", None, f"Free Andrei and Irina {unique('t')}")])
    publisher = Publisher(campaign, sqlite_ledger, AdapterPool(), clock, "w1")
    try:
        clock.set(NINE)
        mastodon_sandbox.fail_next("echo_auth", path="/api/v1/statuses", count=20)
        first = publisher.fire(occurrence(NINE, "post:launch", [account.id]), account.id)
    finally:
        publisher.adapters.close()
        mastodon_sandbox.restore_defaults()
    assert first.outcome is Outcome.retry_later
    with sqlite_ledger.engine.connect() as conn:
        [row] = conn.execute(sa.select(publications.c.last_error)).all()
        errors = [e for (e,) in conn.execute(sa.select(attempts.c.error))]
    assert "Authorization" in row.last_error and token not in row.last_error, row.last_error
    assert errors and all(token not in (e or "") for e in errors)
    # The same ledger as a staff member's `bot status` sees it, text and JSON.
    monkeypatch.setenv("BOT_DATABASE_URL", str(sqlite_ledger.engine.url))
    capsys.readouterr()  # the publisher's own log lines (structlog unconfigured here: the worker's are redacted)
    for extra in ([], ["--json"]):
        assert cli.main(["--campaign", str(campaign.root), "status", *extra]) == 0
        shown = capsys.readouterr().out
        assert "Authorization" in shown and token not in shown
    [waiting] = json.loads(shown)["in_flight"]
    assert redaction.REDACTED in waiting["error"]
