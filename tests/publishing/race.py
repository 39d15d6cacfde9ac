"""A publishing worker process for the two-process test (importable, so ``spawn`` can start it)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)


def publish_all(
    url: str, account_id: str, entry: dict, env: dict, texts: list[str], owner: str, reverse: bool, root: str, results
) -> None:
    """Fire one fixed slot per text and one queue slot per text, in the given order; report the outcomes."""
    os.environ.update(env)
    from bot.core.clock import FakeClock
    from bot.core.model import Account
    from bot.ledger.db import open_engine
    from bot.ledger.publications import Ledger
    from bot.publishing.publisher import AdapterPool, Publisher
    from tests.publishing.support import make_campaign, occurrence

    account = Account(id=account_id, **entry)
    posts = [(f"p{i:02d}", None, text) for i, text in enumerate(texts[: len(texts) // 2])]
    posts += [(f"q{i:02d}", "q", text) for i, text in enumerate(texts[len(texts) // 2 :])]
    campaign = make_campaign(Path(root), [account], posts)
    clock = FakeClock(NINE)
    engine = open_engine(url)
    publisher = Publisher(campaign, Ledger(engine, clock), AdapterPool(), clock, owner)
    occs = [occurrence(NINE - timedelta(minutes=i), f"post:p{i:02d}", [account_id]) for i in range(len(texts) // 2)]
    occs += [occurrence(NINE - timedelta(minutes=i), "queue:q", [account_id], slot=1) for i in range(len(texts) // 2)]
    results.put("ready")
    outcomes = [publisher.fire(o, account_id).outcome.value for o in (reversed(occs) if reverse else occs)]
    publisher.adapters.close()
    engine.dispose()
    results.put(outcomes)
