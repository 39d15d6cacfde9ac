"""Campaigns and publishers for the publishing tests, built from the real campaign models."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.core.errors import BotError
from bot.core.model import Account, Campaign, Post, Schedule
from bot.core.values import Identity, Limits, Mention, MentionPage, Outgoing, Receipt
from bot.ledger.publications import Ledger
from bot.platforms.base import Platform
from bot.publishing.publisher import AdapterPool, Publisher, RetryPolicy
from bot.schedule.occurrences import Occurrence

LONDON = ZoneInfo("Europe/London")
_names = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test of this session uses (sandbox servers live for the whole session)."""
    return f"{prefix}{next(_names)}"


def make_campaign(
    tmp_path: Path,
    accounts: Sequence[Account],
    posts: Sequence[tuple[str, str | None, str]],
    *,
    grace: timedelta = timedelta(hours=1),
    window=(date(2022, 1, 12), date(2022, 3, 12)),
) -> Campaign:
    """A campaign with one schedule "launch" (Europe/London) and ``posts`` as (id, queue, text)."""
    models = {
        pid: Post(id=pid, queue=queue, path=tmp_path / "posts" / f"{pid}.yaml", text=text) for pid, queue, text in posts
    }
    queues: dict[str, list[str]] = {}
    for pid, queue, _ in posts:
        if queue:
            queues.setdefault(queue, []).append(pid)
    schedule = Schedule(
        name="launch",
        path=tmp_path / "schedules" / "launch.yaml",
        timezone=LONDON,
        window_start=window[0],
        window_end=window[1],
        grace=grace,
    )
    return Campaign(
        root=tmp_path,
        name="free",
        accounts={a.id: a for a in accounts},
        posts=models,
        queues=queues,
        schedules=[schedule],
    )


def after_posting(error: BotError) -> BotError:
    """``error`` as the stand-in raises it once its post went out: the answer, not the post, was lost."""
    error.after_posting = True  # read by ScriptedLedgerTestPlatform._publish
    return error


def occurrence(
    at: datetime, target: str, accounts: Sequence[str], grace: timedelta = timedelta(hours=1), slot: int = 0
) -> Occurrence:
    kind, _, name = target.partition(":")
    return Occurrence(
        at=at,
        schedule="launch",
        slot=slot,
        target=target,
        post=name if kind == "post" else None,
        queue=name if kind == "queue" else None,
        accounts=tuple(accounts),
        grace=grace,
    )


class ScriptedLedgerTestPlatform(Platform):
    """NOT a platform model: an in-memory stand-in so ledger-logic tests can script outcomes.

    It keeps what it "published" by key and raises the errors queued in ``script``; the real
    platform behaviour is tested against the sandboxes.
    """

    name = "scripted"
    limits = Limits(
        max_text=280,
        max_images=4,
        image_max_bytes=1,
        image_formats=frozenset(),
        video_max_bytes=1,
        video_max_seconds=1,
        video_formats=frozenset(),
        alt_max=1,
        captions=False,
    )
    required_credentials = ()

    def __init__(self, account, clock) -> None:
        super().__init__(account, {}, wall=lambda: clock.now().timestamp())
        self.script: list[BotError | None] = []
        self.published: dict[str, Receipt] = {}
        self.calls: list[str] = []
        self.during = None  # called with the progress callback while "uploading"
        self.find_misses = 0  # how many look-ups miss a post that exists (it landed after the look-up)

    def _publish(self, out: Outgoing, progress) -> Receipt:
        self.calls.append("publish")
        if self.during is not None:
            self.during(progress)
        step = self.script.pop(0) if self.script else None
        if step is not None and not getattr(step, "after_posting", False):
            raise step
        receipt = Receipt(str(len(self.published) + 1), f"https://scripted.test/{len(self.published) + 1}")
        self.published[out.key] = receipt
        if step is not None:
            raise step  # the post went out but the answer did not come back
        return receipt

    def _find_published(self, out: Outgoing) -> Receipt | None:
        self.calls.append("find_published")
        if self.find_misses:
            self.find_misses -= 1
            return None
        return self.published.get(out.key)

    def _reshare(self, mention: Mention) -> Receipt:
        raise NotImplementedError

    def _fetch_mentions(self, hashtags, cursor) -> MentionPage:
        raise NotImplementedError

    def _whoami(self) -> Identity:
        return Identity("1", self.account.id)

    def _map_error(self, exc: Exception) -> BotError:
        return BotError(str(exc))


def scripted_publisher(
    tmp_path: Path,
    ledger: Ledger,
    clock,
    rng: random.Random,
    accounts: Sequence[Account],
    posts: Sequence[tuple[str, str | None, str]],
    cls: type[ScriptedLedgerTestPlatform] = ScriptedLedgerTestPlatform,
) -> tuple[Publisher, dict[str, ScriptedLedgerTestPlatform]]:
    """Worker "w1"'s publisher of ``make_campaign(tmp_path, accounts, posts)`` over ``cls`` stand-ins, three attempts
    30 s to 600 s apart; the dict fills with each account's stand-in as the publisher's pool builds it."""
    adapters: dict[str, ScriptedLedgerTestPlatform] = {}

    def build(account: Account) -> ScriptedLedgerTestPlatform:
        adapters[account.id] = cls(account, clock)
        return adapters[account.id]

    publisher = Publisher(
        make_campaign(tmp_path, accounts, posts),
        ledger,
        AdapterPool(build),
        clock,
        "w1",
        rng=rng,
        retry=RetryPolicy(max_attempts=3, base_delay=30, max_delay=600),
    )
    return publisher, adapters


def scripted(
    publisher: Publisher, adapters: dict[str, ScriptedLedgerTestPlatform], account_id: str
) -> ScriptedLedgerTestPlatform:
    """The account's stand-in adapter, built through the publisher's pool."""
    publisher.adapters.get(publisher.campaign.accounts[account_id])
    return adapters[account_id]
