"""Platforms' daily caps (``Limits.posts_per_day``) against the schedules: counting, and ``bot check``'s warning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.campaign import inspect, load
from bot.campaign.quotas import Send, overruns
from bot.core.values import Limits
from bot.platforms import REGISTRY

START = datetime(2022, 1, 12, 9, tzinfo=UTC)
BURST = """
  - cron: "*/10 * * * *"
    post: launch
    accounts: [x-index, mastodon-a19]
"""


def _sends(count: int, every: timedelta, account: str = "x-index") -> list[Send]:
    return [Send(START + i * every, account, "launch", 0) for i in range(count)]


def test_limits_have_an_optional_daily_cap():
    """``posts_per_day`` defaults to None; X (Basic tier) and Bluesky publish caps, Mastodon does not."""
    assert Limits(1, 1, 1, frozenset(), 1, 1.0, frozenset(), 1, False).posts_per_day is None
    assert REGISTRY["x"].limits.posts_per_day == 100
    assert REGISTRY["bluesky"].limits.posts_per_day == 11_666
    assert REGISTRY["mastodon"].limits.posts_per_day is None


def test_one_over_the_cap_in_24_hours_is_an_overrun(campaign_dir: Path):
    """101 posts 14 minutes apart fit in 24 hours and pass X's 100; 100 of them do not."""
    campaign = load(campaign_dir)
    found = overruns(campaign, _sends(101, timedelta(minutes=14)))
    assert [(o.account, o.platform, o.cap, o.count, o.start) for o in found] == [("x-index", "x", 100, 101, START)]
    assert overruns(campaign, _sends(100, timedelta(minutes=14))) == []


def test_the_window_slides_across_days(campaign_dir: Path):
    """The cap counts any 24 hours: 101 posts spread over 25 hours pass no window, the same over two evenings do."""
    campaign = load(campaign_dir)
    assert overruns(campaign, _sends(101, timedelta(minutes=15))) == []  # 100 minutes more than a day
    evening = [Send(START.replace(hour=18) + timedelta(minutes=i), "x-index", "launch", 0) for i in range(60)]
    morning = [Send(START.replace(hour=6) + timedelta(days=1, minutes=i), "x-index", "launch", 1) for i in range(41)]
    found = overruns(campaign, evening + morning)
    assert [(o.count, o.start, o.slots) for o in found] == [
        (101, START.replace(hour=18), (("launch", 0), ("launch", 1)))
    ]


def test_accounts_without_a_cap_are_never_counted(campaign_dir: Path):
    """Mastodon publishes no daily cap: any number of posts is no overrun."""
    assert overruns(load(campaign_dir), _sends(500, timedelta(minutes=1), "mastodon-a19")) == []


def test_check_warns_at_the_slot_that_passes_the_cap(campaign_dir: Path):
    """A slot every 10 minutes sends x-index 144 posts a day: a warning at its line, not an error."""
    schedule = campaign_dir / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text() + BURST)
    result = inspect(campaign_dir)
    line = schedule.read_text().splitlines().index('  - cron: "*/10 * * * *"') + 1
    rule = "more than x allows (expected at most 100 in 24 hours: fewer slots for this account)"
    assert result.errors == []
    assert [w for w in result.warnings if "in 24 hours" in w] == [
        f"schedules/launch.yaml:{line}: warning: slots[3]: x-index would publish 145 posts in the 24 hours from "
        f"Thu 13 Jan 2022 00:00 GMT, {rule} (with the slots at schedules/launch.yaml:7)",
        f"schedules/launch.yaml:{line}: warning: slots[3]: x-index would publish 146 posts in the 24 hours from "
        f"Wed 12 Jan 2022 00:00 GMT, {rule} (with the slots at schedules/launch.yaml:4, schedules/launch.yaml:7)",
    ]


def test_check_enumerates_nothing_when_no_slot_can_reach_a_cap(campaign_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """The base campaign sends a few posts a day: the quota check costs no fire-time enumeration at all."""
    from bot import schedule as sched
    from bot.campaign import quotas
    from bot.campaign.problems import Problems

    campaign, problems, called = load(campaign_dir), Problems(), []
    monkeypatch.setattr(sched, "occurrences", lambda *a, **k: called.append(a))
    quotas.check(campaign, {}, problems)
    assert called == [] and problems.count == 0


FACEBOOK = """
  facebook-page:
    platform: facebook
    credentials: {access_token: MASTODON_A19_TOKEN}
"""


def test_reels_cap_is_documented_on_facebook_not_instagram():
    """``videos_per_day`` defaults to None; Facebook Pages' Reels API allows 30 a day, Instagram only its 100 posts."""
    assert Limits(1, 1, 1, frozenset(), 1, 1.0, frozenset(), 1, False).videos_per_day is None
    assert REGISTRY["facebook"].limits.videos_per_day == 30
    assert REGISTRY["instagram"].limits.videos_per_day is None
    assert REGISTRY["instagram"].limits.posts_per_day == 100


def test_video_posts_over_the_reels_cap_are_an_overrun(campaign_dir: Path):
    """31 video posts in 24 hours pass Facebook's 30 Reels; 31 text posts and 30 video posts do not."""
    accounts = campaign_dir / "config/accounts.yaml"
    accounts.write_text(accounts.read_text() + FACEBOOK)
    campaign = load(campaign_dir)
    videos = [Send(START + timedelta(minutes=30 * i), "facebook-page", "launch", 0, video=True) for i in range(31)]
    texts = [Send(START + timedelta(minutes=30 * i), "facebook-page", "launch", 1) for i in range(31)]
    [found] = overruns(campaign, videos)
    assert (found.account, found.cap, found.count, found.videos) == ("facebook-page", 30, 31, True)
    assert "31 video posts (Reels) in the 24 hours" in found.message() and "at most 30 in 24 hours" in found.message()
    assert overruns(campaign, texts) == [] and overruns(campaign, videos[:30] + texts) == []
