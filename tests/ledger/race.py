"""Code run inside worker processes by the claim-race tests (importable, so ``spawn`` can start it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.clock import FakeClock
from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger, PublicationKey

START = datetime(2022, 1, 12, 8, 0, tzinfo=UTC)
QUEUE = [f"video-{i:03d}" for i in range(100)]


def slot_key(i: int, target: str = "post:launch", account: str = "x-index") -> PublicationKey:
    return PublicationKey("free", START + timedelta(hours=i), target, account)


def claim_all(url: str, owner: str, slots: int, go, reverse: bool, results) -> None:
    """Claim every fixed and queue slot it can, and claim_and_begin every "post:begun" slot it can.

    Puts on ``results`` the pairs this owner won: (slot, post) for fixed slots, (1000 + slot, post)
    for queue slots, (2000 + slot, "attempt <n>") for the slots claimed with their attempt.
    """
    engine = open_engine(url)
    ledger = Ledger(engine, FakeClock(START))
    results.put("ready")
    go.wait(30)
    won: list[tuple[int, str | None]] = []
    order = range(slots - 1, -1, -1) if reverse else range(slots)
    for i in order:
        for target in ("post:launch", "queue:videos"):
            choose = None
            if target.startswith("queue:"):
                choose = lambda used: next((p for p in QUEUE if p not in used), None)
            row = ledger.claim(
                slot_key(i, target),
                owner,
                timedelta(minutes=5),
                post="launch" if choose is None else None,
                choose=choose,
            )
            if row is not None:
                won.append((i if choose is None else 1000 + i, row.post))
        begun = ledger.claim_and_begin(
            slot_key(i, "post:begun"),
            owner,
            timedelta(minutes=5),
            post="begun",
            schedule="launch",
            slot=0,
            platform="x",
        )
        if begun is not None:
            won.append((2000 + i, f"attempt {begun[1]}"))
    engine.dispose()
    results.put(won)
