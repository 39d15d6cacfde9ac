"""`bot run` SIGKILLed at random moments around Telegram sends, some of whose answers the sandbox holds back
after storing the message: every queue post ends in the channel exactly once, or in needs_attention where
nobody can tell (a bot cannot read its channel's history), counted and never sent again, none lost."""

from __future__ import annotations

import random
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.ledger.db import open_engine
from bot.ledger.schema import publications
from bot.publishing.faults import EXIT_CODE
from sandboxes.base import SandboxAccount
from sandboxes.telegram.sandbox import TelegramSandbox
from tests.worker.campaigns import env_for, events, wait_for_event
from tests.worker.test_crash import T0, _clock_args, hourly_campaign

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
    tmp_path: Path, sandbox: TelegramSandbox, workers
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
    log = tmp_path / "worker.log"
    rng = random.Random(20261207)
    end = T0 + timedelta(minutes=SLOTS + 2)
    position = T0
    kills = faults = runs = 0
    while position < end - timedelta(minutes=20) and runs < 5:
        runs += 1
        for _ in range(3):  # stored at once, answered HELD seconds late: a kill meanwhile leaves it unknown
            sandbox.fail_with_delay(HELD, path="sendMessage")
        fault = {"BOT_FAULT_EXIT_AFTER_PUBLISH": "0.1", "BOT_FAULT_SEED": str(runs)} if runs % 2 == 0 else {}
        before = sum(e["event"] == "post_published" for e in events(log)) if log.exists() else 0
        proc = workers.spawn(tmp_path, env_for([account], **fault), log, *_clock_args(position, end))
        started = wait_for_event(log, "worker_started", runs, proc)
        publishing = wait_for_event(log, "post_published", before + 1, proc) if started else None
        if publishing is None:  # the fault fired before this run published anything
            assert proc.wait() == EXIT_CODE
            faults += 1
        else:
            try:
                code = proc.wait(timeout=rng.uniform(0.1, 1.0) if not fault else 30)
                assert code == EXIT_CODE, f"worker exited {code} on its own"
                faults += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        now = max(
            (datetime.fromisoformat(e["now"]) for e in events(log) if e["event"] == "worker_heartbeat"),
            default=position,
        )
        position = max(position, now) + timedelta(minutes=rng.uniform(1, 5))
    sandbox.restore_defaults()
    sandbox.lift_limits()  # faults cleared; still no flood control for the last run
    final = workers.spawn(
        tmp_path, env_for([account]), log, *_clock_args(position, max(end, position) + timedelta(minutes=30))
    )
    assert final.wait(timeout=180) == 0
    assert kills >= 1 and kills + faults >= 3, (kills, faults)

    texts = Counter(p.text for p in sandbox.posts(account))
    assert {t: c for t, c in texts.items() if c > 1} == {}, "a post went out twice"
    engine = open_engine(f"sqlite:///{tmp_path / 'state' / 'bot.db'}")
    with engine.connect() as conn:
        rows = {
            post: state
            for post, state in conn.execute(
                sa.select(publications.c.post, publications.c.state).where(publications.c.post.is_not(None))
            )
        }
    assert sorted(rows) == [f"{i:03d}" for i in range(SLOTS)], "a slot was lost"
    states = Counter(rows.values())
    assert set(states) <= {"published", "needs_attention"}, states
    text_of = {p: f"Post {int(p)} {tag} #FreeAndreiandIrina" for p in rows}
    published = {text_of[p] for p, s in rows.items() if s == "published"}
    attention = {text_of[p] for p, s in rows.items() if s == "needs_attention"}
    assert published <= set(texts), "the ledger says published but the channel has no such post"
    assert set(texts) - published <= attention, "a post is in the channel that the ledger neither recorded nor flagged"
    in_channel = len(attention & set(texts))
    print(
        f"telegram: {len(published)} published, {len(attention)} needs_attention ({in_channel} of them in the "
        f"channel, {len(attention) - in_channel} not), kills={kills}, exits after publish={faults}"
    )
