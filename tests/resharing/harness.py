"""Builds tracking scenarios on a sandbox: a campaign account, people who post, a campaign model, trackers."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.core.clock import FakeClock
from bot.core.model import Account, Campaign, Policy, ReshareConfig, Track
from bot.ledger.db import open_engine
from bot.ledger.schema import decisions
from bot.platforms import platform_class
from bot.platforms.base import Platform
from bot.resharing.tracker import Tracker
from sandboxes import Sandbox, SandboxAccount

_counter = itertools.count()
GOOD = ("partner", "supporter", "flood", "partner_blocked_word")  # categories the policy may reshare
ACCOUNT_FIELDS = ("platform", "base_url", "handle", "credentials", "options")


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_counter)}{uuid.uuid4().hex[:4]}"


def model_account(sandbox_account: SandboxAccount) -> Account:
    entry = {k: v for k, v in sandbox_account.entry.items() if k in ACCOUNT_FIELDS}
    return Account(id=sandbox_account.id, **entry)


def adapter_for(sandbox_account: SandboxAccount) -> Platform:
    account = model_account(sandbox_account)
    secrets = {role: sandbox_account.env[var] for role, var in account.credentials.items()}
    return platform_class(account.platform)(account, secrets, timeout=10)


@dataclass
class Expected:
    category: str
    author: SandboxAccount
    reason: str | None  # the skip reason the policy must give, None for posts it may reshare


@dataclass
class World:
    """One campaign tracking one fresh hashtag on one sandbox."""

    sandbox: Sandbox
    tmp: Path
    clock: FakeClock
    tag: str
    ours: list[SandboxAccount]
    policy: dict[str, Any]
    interval: float = 300.0
    extra_tags: list[str] = field(default_factory=list)
    posted: dict[str, Expected] = field(default_factory=dict)
    adapters: list[Platform] = field(default_factory=list)
    dirty: bool = False
    db_url: str | None = None  # default: a SQLite file in tmp

    def __post_init__(self) -> None:
        self.engine = open_engine(self.db_url or f"sqlite:///{self.tmp / 'bot.db'}")
        self.campaign = Campaign(
            root=self.tmp,
            name=fresh("campaign"),
            posts={},
            queues={},
            schedules=[],
            accounts={a.id: model_account(a) for a in self.ours},
            reshare=ReshareConfig(
                track=[
                    Track(
                        hashtags=[self.tag, *self.extra_tags],
                        accounts=[a.id for a in self.ours],
                        interval=self.interval,
                    )
                ],
                policy=Policy(**self.policy),
            ),
        )

    def tracker(self, owner: str = "worker-1") -> Tracker:
        """A fresh tracker with fresh adapters, as a restarted worker would build it."""
        adapters = {a.id: adapter_for(a) for a in self.ours}
        self.adapters.extend(adapters.values())
        return Tracker(self.campaign, self.engine, adapters, self.clock, owner)

    def post(self, author: SandboxAccount, text: str, category: str, reason: str | None, **kw: Any) -> str:
        remote_id = self.sandbox.post_as(author, text, **kw)
        self.posted[remote_id] = Expected(category, author, reason)
        self.dirty = True
        return remote_id

    def step(self, tracker: Tracker, seconds: float | None = None) -> dict[str, int]:
        self.clock.advance(self.interval if seconds is None else seconds)
        if self.dirty:  # indexing is slow on the AT Protocol servers: only after new posts
            self.sandbox.index()
            self.dirty = False
        return tracker.poll_once()

    def close(self) -> None:
        for adapter in self.adapters:
            adapter.close()
        self.engine.dispose()


@dataclass
class People:
    partners: list[SandboxAccount]
    supporters: list[SandboxAccount]
    troll: SandboxAccount
    named: SandboxAccount
    handled: SandboxAccount
    flooder: SandboxAccount


def make_people(sb: Sandbox) -> People:
    return People(
        partners=[sb.create_account(fresh("partner")) for _ in range(2)],
        supporters=[sb.create_account(fresh("supporter")) for _ in range(30)],
        troll=sb.create_account(fresh("troll")),
        named=sb.create_account(fresh("named"), display_name="Łukašenka Fan Club"),
        handled=sb.create_account(fresh("lukashenka_")),
        flooder=sb.create_account(fresh("flood")),
    )


def adversarial_plan(world: World, people: People, rng: random.Random) -> list[Any]:
    """About 210 posting actions mixing every kind of author and post, in a seeded random order.

    Each action is a callable that posts (replies and reshares need an earlier post, so they come later).
    """
    tag, own = world.tag, world.ours[0]
    partners, supporters, troll = people.partners, people.supporters, people.troll
    named, handled, flooder = people.named, people.handled, people.flooder
    variants = ["LUKASENKA lies", "Łukašenka must go", "lukashenka's court", "LUKAŠENKA", "Lukashenka"]
    first: list[Any] = []
    later: list[Any] = []

    def act(author, text, category, reason, **kw):
        return lambda: world.post(author, f"{text} #{tag}", category, reason, **kw)

    for p in partners:
        first += [act(p, f"Partner statement {n}", "partner", None) for n in range(2)]
        first.append(act(p, "Lukashenka jails journalists", "partner_blocked_word", None))
    for n, s in enumerate(supporters):
        first.append(act(s, f"Free Andrei and Irina, day {n}", "supporter", None))
        if n % 3 == 0:
            first.append(act(s, f"Still waiting for justice {n}", "supporter", None))
    first += [act(troll, f"troll post {n}", "never_from", "never_from") for n in range(10)]
    first += [act(named, f"innocent looking {n}", "blocked_name", "blocked_word") for n in range(8)]
    first += [act(handled, f"innocent handle {n}", "blocked_handle", "blocked_word") for n in range(5)]
    first += [act(supporters[n % 30], f"{variants[n % 5]} {n}", "blocked_word", "blocked_word") for n in range(20)]
    first += [act(own, f"Our own post {n}", "own", "own") for n in range(10)]
    first += [act(supporters[n], f"Hard to read {n}", "sensitive", "sensitive", sensitive=True) for n in range(10)]
    first += [
        act(supporters[n], f"Prison conditions {n}", "sensitive", "sensitive", spoiler_text="prison")
        for n in range(10, 15)
    ]
    first += [act(flooder, f"flood {n}", "flood", None) for n in range(60)]
    rng.shuffle(first)

    def reply(n):
        target = next(rid for rid, e in world.posted.items() if e.category == "supporter")
        return world.post(supporters[-1 - n], f"Agreed {n} #{tag}", "reply", "reply", reply_to=target)

    def reshare(n):
        good = [rid for rid, e in world.posted.items() if e.category == "supporter"]
        return world.post(supporters[n], "", "reshare", "reshare", reshare_of=good[n % len(good)])

    later += [lambda n=n: reply(n) for n in range(18)]
    later += [lambda n=n: reshare(n) for n in range(10)]
    rng.shuffle(later)
    return first[:60] + sorted(first[60:] + later, key=lambda _: rng.random())


def base_policy(**overrides):
    policy = dict(
        always_from=[],
        never_from=[],
        blocked_words=["Lukashenka"],
        skip={"replies", "reshares", "own", "sensitive"},
        max_per_hour=4,
        max_per_day=20,
        mode="auto",
        author_cooldown=timedelta(hours=6),
    )
    policy.update(overrides)
    return policy


def make_world(sandbox, tmp_path, clock, n_ours=1, extra_tags=(), db_url=None, **policy) -> World:
    ours = [sandbox.create_account(fresh("index")) for _ in range(n_ours)]
    return World(
        sandbox, tmp_path, clock, fresh("Free"), ours, base_policy(**policy), extra_tags=list(extra_tags), db_url=db_url
    )


def supporters_post(world: World, n: int, tag: str | None = None) -> list[str]:
    return [
        world.post(world.sandbox.create_account(fresh("fan")), f"Free them {i} #{tag or world.tag}", "supporter", None)
        for i in range(n)
    ]


def rows(world: World):
    with world.engine.connect() as conn:
        return conn.execute(
            sa.select(decisions).where(decisions.c.campaign == world.campaign.name).order_by(decisions.c.id)
        ).all()


def reshared(world: World, account=None) -> list[str]:
    return [p.reshare_of for p in world.sandbox.posts(account or world.ours[0]) if p.reshare_of]
