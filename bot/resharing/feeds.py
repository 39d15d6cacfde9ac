"""Feeds: what the tracker reads, one call per poll for a network and its tags, and how floods are ordered."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

from bot.core.values import Mention
from bot.platforms.base import PostChange

# Seconds between polls when config/reshare.yaml gives no interval: inside each platform's read
# limits with room for publishing; X bills every read, so it is polled least.
DEFAULT_INTERVALS = {"x": 300.0, "mastodon": 30.0, "bluesky": 45.0}


def network_of(account: Any) -> str:
    """Where a remote id means one post: the platform, or the instance for Mastodon."""
    if account.platform == "mastodon" and account.base_url:
        return f"mastodon:{urlparse(account.base_url).netloc}"
    return str(account.platform)


def instance_of(account: Any) -> str | None:
    if account.platform == "mastodon" and account.base_url:
        return urlparse(str(account.base_url)).netloc  # with its port: handles name it (policy.Handle)
    return None


@dataclass
class StreamState:
    """A feed's stream; kept by the feed that replaces it on reload, so the stream's threads see the new one."""

    inbox: queue.Queue[Mention | PostChange] = field(default_factory=queue.Queue)  # new posts, edits, deletions
    on: bool = False  # a stream thread is running (connected or connecting)
    retry_at: datetime | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    poll_now: bool = False  # the stream dropped: catch up by polling at once


@dataclass
class Feed:
    """One read per poll: a network, its tracked tags, and the accounts that reshare from it."""

    network: str
    platform: str
    tags: tuple[str, ...]
    accounts: list[str]
    interval: float
    daily_reads: int | None = None  # posts the reader may be billed for a day (X), the tightest of its tracks
    max_interval: float | None = None  # the longest gap back-off may stretch a quiet poll to
    next_at: datetime | None = None
    stream: StreamState = field(default_factory=StreamState)
    failing: bool = False  # reads refused for good (auth): reported once

    @property
    def inbox(self) -> queue.Queue[Mention | PostChange]:
        return self.stream.inbox

    @property
    def connected(self) -> threading.Event:
        return self.stream.connected

    @property
    def streaming(self) -> bool:
        return self.stream.on

    @property
    def key(self) -> str:
        return ",".join(sorted(t.casefold() for t in self.tags))

    @property
    def reader(self) -> str:
        return self.accounts[0]


def fair_order(items: list[tuple[Mention, Any]]) -> list[tuple[Mention, Any]]:
    """Round-robin over authors, oldest first: a flood from one author cannot crowd out the others."""
    rank: Counter[str] = Counter()
    keyed = []
    for position, item in enumerate(items):
        author = item[0].author_id
        keyed.append((rank[author], position, item))
        rank[author] += 1
    return [item for _, _, item in sorted(keyed, key=lambda k: (k[0], k[1]))]


N = TypeVar("N", int, float)


def _tightest(a: N | None, b: N | None) -> N | None:
    return b if a is None else a if b is None else min(a, b)


def build_feeds(campaign: Any, adapters: Mapping[str, Any], log: Any) -> list[Feed]:
    """One feed per (network, tag set), read by its first account; accounts without an adapter are left out."""
    config = campaign.reshare
    feeds: dict[tuple[str, tuple[str, ...]], Feed] = {}
    for track in config.track if config else []:
        tags = tuple(sorted({t.lstrip("#") for t in track.hashtags}, key=str.casefold))
        for account_id in track.accounts:
            account = campaign.accounts.get(account_id)
            if account is None:
                log.warning("tracking_account_unknown", account=account_id)
                continue
            if account_id not in adapters:  # reported once, with its reason, where the adapter failed to build
                log.debug("tracking_account_skipped", account=account_id, reason="no adapter")
                continue
            key = (network_of(account), tuple(t.casefold() for t in tags))
            interval = track.interval or DEFAULT_INTERVALS.get(account.platform, 60.0)
            feed = feeds.get(key)
            if feed is None:
                feeds[key] = Feed(
                    key[0], account.platform, tags, [account_id], interval, track.daily_reads, track.max_interval
                )
            else:
                feed.interval = min(feed.interval, interval)
                feed.daily_reads = _tightest(feed.daily_reads, track.daily_reads)
                feed.max_interval = _tightest(feed.max_interval, track.max_interval)
                if account_id not in feed.accounts:
                    feed.accounts.append(account_id)
    return list(feeds.values())
