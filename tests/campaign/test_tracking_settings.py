"""Tracking settings in config/reshare.yaml reach the feeds: a daily read budget and the back-off's longest gap."""

from __future__ import annotations

import shutil
from pathlib import Path

import structlog

from bot.campaign import load
from bot.resharing.feeds import build_feeds

BASE = Path(__file__).resolve().parents[1] / "cases" / "base"


def test_daily_reads_and_max_interval_are_parsed_and_the_tightest_track_wins(tmp_path: Path) -> None:
    """Two tracks on one X feed: the feed takes the smaller budget and the shorter back-off cap."""
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    (root / "config" / "reshare.yaml").write_text(
        "track:\n"
        "  - hashtags: [FreeAndreiandIrina]\n    accounts: [x-index]\n    daily_reads: 500\n    max_interval: 45m\n"
        "  - hashtags: [FreeAndreiandIrina]\n    accounts: [x-index]\n    daily_reads: 800\n    max_interval: 600\n"
        "policy: {}\n"
    )
    campaign = load(root)
    assert [(t.daily_reads, t.max_interval) for t in campaign.reshare.track] == [(500, 2700.0), (800, 600.0)]
    [feed] = build_feeds(campaign, {"x-index": object()}, structlog.get_logger())
    assert (feed.daily_reads, feed.max_interval) == (500, 600.0)
