"""`bot run` SIGKILLed at random moments around Telegram sends, some of whose answers the sandbox holds back
after storing the message: every queue post ends in the channel exactly once, or in needs_attention where
nobody can tell (a bot cannot read its channel's history), counted and never sent again, none lost."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.ledger.schema import publications
from sandboxes.base import SandboxAccount
from sandboxes.telegram.sandbox import TelegramSandbox
from tests.worker.crash_support import kill_at_random, ledger, report, run_to_end
from tests.worker.test_crash import T0, hourly_campaign, queue_texts

SLOTS = 200  # one a minute: 12 s of a worker at the kill tests' clock speed, so several runs die midway
HELD = 2.0  # seconds the sandbox holds back the answer of a send it already stored (a kill meanwhile: unknown)


@pytest.fixture
def sandbox(telegram_sandbox: TelegramSandbox) -> Iterator[TelegramSandbox]:
    """The session's sandbox without flood control (200 posts to one channel within minutes), restored after."""
    telegram_sandbox.lift_limits()
    try:
        yield telegram_sandbox
    finally:
        telegram_sandbox.restore_defaults()


@pytest.mark.slow
def test_sigkill_around_telegram_sends_never_doubles_or_loses(
    tmp_path: Path, sandbox: TelegramSandbox, workers, capsys: pytest.CaptureFixture[str]
) -> None:
    """Across SIGKILLs (some while a stored send's answer is held back) and exits right after a send returned,
    200 slots end in the channel exactly once, or in needs_attention: none posted twice, none dropped silently."""
    made = sandbox.create_account(f"k{uuid.uuid4().hex[:8]}")
    # The adapter's pacing waits in real seconds while the worker's clock runs 1000 times faster: off here
    # (the sandbox's flood control is off too); pacing has its own tests and bench/channels.py.
    entry = {**made.entry, "options": {"pacing": False}}
    account = SandboxAccount(made.id, made.handle, entry, made.env)
    tag = uuid.uuid4().hex[:6]
    hourly_campaign(tmp_path, account, tag, SLOTS)
    end = T0 + timedelta(minutes=SLOTS + 2)

    def hold_back() -> None:  # stored at once, answered HELD seconds late: a kill meanwhile leaves it unknown
        for _ in range(3):
            sandbox.fail_with_delay(HELD, path="sendMessage")

    kills = kill_at_random(
        workers, tmp_path, [account], start=T0, end=end, seed=20261207, outage_minutes=5, before_run=hold_back
    )
    sandbox.restore_defaults()
    sandbox.lift_limits()  # faults cleared; still no flood control for the last run
    run_to_end(workers, tmp_path, [account], kills, end, timeout=180)
    assert kills.kills >= 1 and kills.kills + kills.faults >= 3, kills

    texts = Counter(p.text for p in sandbox.posts(account))
    assert {t: c for t, c in texts.items() if c > 1} == {}, "a post went out twice"
    columns = (publications.c.post, publications.c.state)
    rows = {post: state for post, state in ledger(tmp_path, *columns) if post is not None}
    assert sorted(rows) == [f"{i:03d}" for i in range(SLOTS)], "a slot was lost"
    states = Counter(rows.values())
    assert set(states) <= {"published", "needs_attention"}, states
    text_of = queue_texts(tag, SLOTS)
    published = {text_of[p] for p, s in rows.items() if s == "published"}
    attention = {text_of[p] for p, s in rows.items() if s == "needs_attention"}
    in_channel = len(attention & set(texts))
    report(
        capsys,
        f"telegram: {len(published)} published, {len(attention)} needs_attention ({in_channel} of them in the "
        f"channel, {len(attention) - in_channel} not), {kills}",
    )
    assert published <= set(texts), "the ledger says published but the channel has no such post"
    assert set(texts) - published <= attention, "a post is in the channel that the ledger neither recorded nor flagged"
