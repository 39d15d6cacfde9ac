"""`bot status` shows resharing: counts by status, reason and account, the review queue, failures and reshares done."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.cli.status import collect, render
from bot.core.values import Mention
from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger
from bot.ledger.reshares import NewDecision, ReshareLedger
from bot.observability.redaction import REDACTED, register_secret

NOW = datetime(2022, 1, 12, 12, 0, tzinfo=UTC)


def mention(n: int, author: str) -> Mention:
    return Mention(
        remote_id=str(n),
        url=f"https://x.example/{author}/status/{n}",
        author_id=author,
        author_handle=author,
        author_name=author,
        text=f"post {n} #FreeAndreiandIrina",
        created_at=NOW,
    )


def decision(n: int, author: str, status: str, reason: str, decision: str = "allow") -> NewDecision:
    return NewDecision("x", "x", "*", "x-index", mention(n, author), decision, status, reason)


def test_status_lists_reshares_done_skipped_waiting_and_failed(tmp_path) -> None:
    """Each reshare state appears with its reason, in text and data; a failure's error shows without its secret."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    reshares = ReshareLedger(engine, "free")
    ids = reshares.record(
        NOW,
        [
            decision(1, "article19org", "pending", "partner"),
            decision(2, "regime_voice", "skipped", "blocked_word", "skip"),
            decision(3, "newcomer", "queued", "review_mode", "review"),
            decision(4, "supporter", "pending", "tagged"),
        ],
    )
    assert reshares.transition(ids[0], ["pending"], status="done", acted_at=NOW, reshare_url="https://x.example/r/1")
    register_secret("sk-test-token-0123456789abcdef")
    assert reshares.transition(ids[3], ["pending"], status="failed", error="401 for sk-test-token-0123456789abcdef")
    data = collect(None, Ledger(engine), NOW, campaign_name="free")["reshares"]
    assert data["counts"] == {"done": 1, "skipped": 1, "queued": 1, "failed": 1}
    assert data["reasons"]["skipped:blocked_word"] == 1
    assert data["by_account"] == {"x-index": {"done": 1, "skipped": 1, "queued": 1, "failed": 1}}
    assert [r["author"] for r in data["waiting_review"]] == ["newcomer"]
    [failed] = data["failed"]
    assert "sk-test-token" not in failed["error"] and REDACTED in failed["error"]
    text = render(collect(None, Ledger(engine), NOW, campaign_name="free"))
    assert "Reshares: done 1, failed 1, queued 1, skipped 1" in text
    assert "skipped:blocked_word 1" in text and "#" + str(ids[2]) in text and "https://x.example/r/1" in text
    engine.dispose()
