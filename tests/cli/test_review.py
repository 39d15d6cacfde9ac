"""`bot review` shows why each candidate waits with its matched words highlighted, and records who decided."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from bot.cli import review
from bot.cli.status import collect, render
from bot.core.clock import FakeClock
from bot.core.values import Mention
from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger
from bot.ledger.reshares import NewDecision, ReshareLedger

NOW = datetime(2022, 1, 12, 12, 0, tzinfo=UTC)
TEXT = "Free them! #freeandreiandirina — the t.r.a.i.t.o.r label is a lie"


def queue(ledger: ReshareLedger) -> list[int | None]:
    def item(n: int, reason: str, detail: str, text: str) -> NewDecision:
        m = Mention(str(n), f"https://x.example/s/{n}", f"a{n}", f"author{n}", "Someone", text, NOW)
        return NewDecision("x", "x", "*", "x-index", m, "review", "queued", reason, detail)

    return ledger.record(
        NOW,
        [
            item(1, "new_account", "account made 2022-01-10, 2.0 days old (min_account_age x 30d)", TEXT),
            item(2, "first_time_author", "this campaign has not reshared this author before", "Hi #FreeAndreiandIrina"),
        ],
    )


def test_list_shows_why_and_highlights_tag_and_blocked_word(tmp_path) -> None:
    """Each candidate shows its rule and text; the tag and a blocked word added since are marked, bold on a terminal."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    ledger = ReshareLedger(engine, "free")
    queue(ledger)
    items = review.waiting(ledger, tags=["FreeAndreiandIrina"], blocked=("traitor",))
    plain = review.render(items, NOW, terminal=False)
    assert "waiting: new account (account made 2022-01-10, 2.0 days old (min_account_age x 30d))" in plain
    assert "waiting: first-time author" in plain
    assert "Free them! [[#freeandreiandirina]] — the [[t.r.a.i.t.o.r]] label is a lie" in plain
    assert "! now matches blocked words: traitor" in plain
    assert "Hi [[#FreeAndreiandIrina]]" in plain
    shown = review.render(items, NOW, terminal=True)
    assert "\x1b[1;7mt.r.a.i.t.o.r\x1b[0m" in shown and "[[" not in shown
    assert [h["kind"] for h in items[0]["highlights"]] == ["tag", "blocked"]
    engine.dispose()


def test_approve_and_reject_record_reviewer_time_and_note(tmp_path, capsys, monkeypatch) -> None:
    """The command records BOT_REVIEWER, the time and --note for each decision; bot status lists them."""
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("BOT_REVIEWER", "alice")
    engine = open_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    ledger = ReshareLedger(engine, "")  # the campaign folder below does not load: every campaign is reviewed
    first, second = queue(ledger)
    args = argparse.Namespace(
        campaign=Path(tmp_path / "no-campaign"), action="approve", ids=[first], json=False, note="vouched by A19"
    )
    clock = FakeClock(NOW)
    assert review.main(args, clock) == 0
    assert "approved 1 candidate(s) as alice" in capsys.readouterr().out
    args.action, args.ids, args.note = "reject", [second], ""
    assert review.main(args, clock) == 0
    rejected, approved = ledger.reviews()
    assert (approved.action, approved.reviewer, approved.note, approved.waited_for) == (
        "approved",
        "alice",
        "vouched by A19",
        "new_account",
    )
    assert approved.decided_at == NOW and "min_account_age" in approved.waited_detail
    assert (rejected.action, rejected.waited_for, rejected.note) == ("rejected", "first_time_author", "")
    status = {r.id: r.status for r in ledger.rows(every_campaign=True)}
    assert status == {first: "pending", second: "rejected"}
    assert review.main(args, clock) == 1  # decided already: refused, and not recorded twice
    assert len(ledger.reviews()) == 2
    data = collect(None, Ledger(engine), NOW)["reshares"]
    assert [(r["id"], r["action"], r["reviewer"]) for r in data["reviewed"]] == [
        (second, "rejected", "alice"),
        (first, "approved", "alice"),
    ]
    json.dumps(data["reviewed"])  # --json carries them as they are
    text = render(collect(None, Ledger(engine), NOW))
    assert f"#{first:<5} approved by alice at 2022-01-12 12:00 UTC (waited for new_account): vouched by A19" in text
    engine.dispose()


def test_reviewer_defaults_to_the_os_user(monkeypatch) -> None:
    """Without BOT_REVIEWER the OS user decides; control characters in the name are not passed through."""
    monkeypatch.delenv("BOT_REVIEWER", raising=False)
    import getpass

    assert review.reviewer() == getpass.getuser()
    monkeypatch.setenv("BOT_REVIEWER", "bob\x1b[31m")
    assert review.reviewer() == "bob [31m"
