"""Trust signals (issue 15.4): account age, followers, unknown signals, first-time authors, the per-author caps."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.campaign import inspect, load
from bot.core.model import Policy
from bot.core.values import Mention
from bot.ledger.db import open_engine
from bot.ledger.reshares import NewDecision, ReshareLedger, mention_from_json, mention_to_json
from bot.platforms import REGISTRY
from bot.resharing.policy import Context, Rules, decide

NOW = datetime(2022, 1, 12, 8, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
BASE = Path(__file__).resolve().parents[1] / "cases" / "base"
RULES = Rules(
    always_from=("@partner",),
    min_account_age={"x": timedelta(days=30), "mastodon": timedelta(days=7)},
    min_followers={"x": 10},
)


def mention(**kw) -> Mention:
    fields = dict(
        remote_id="1",
        url="https://example/1",
        author_id="u1",
        author_handle="supporter",
        author_name="A Supporter",
        text="Free them #FreeAndreiandIrina",
        created_at=NOW,
        author_created_at=OLD,
        author_followers=500,
    )
    fields.update(kw)
    return Mention(**fields)


def ctx(rules: Rules = RULES, **kw) -> Context:
    return Context(**{"rules": rules, "now": NOW, "platform": "x", **kw})


def verdict(m: Mention, c: Context) -> tuple[str, str]:
    got = decide(m, c)
    return got.action, got.reason


def test_an_old_account_with_followers_is_allowed() -> None:
    """An author above every minimum of the platform passes the trust signals."""
    assert verdict(mention(), ctx()) == ("allow", "tagged")


@pytest.mark.parametrize(
    ("made", "platform", "expected"),
    [
        (NOW - timedelta(days=3), "x", ("review", "new_account")),
        (NOW - timedelta(days=29, hours=23), "x", ("review", "new_account")),
        (NOW - timedelta(days=31), "x", ("allow", "tagged")),
        (NOW + timedelta(days=2), "x", ("review", "new_account")),  # made "in the future": never old
        (NOW - timedelta(days=8), "mastodon", ("allow", "tagged")),
        (NOW - timedelta(days=3), "bluesky", ("allow", "tagged")),  # no minimum named for Bluesky
    ],
)
def test_account_age_minimum_per_platform(made: datetime, platform: str, expected: tuple[str, str]) -> None:
    """An account younger than its platform's min_account_age is routed to review; other platforms are not held."""
    assert verdict(mention(author_created_at=made), ctx(platform=platform)) == expected


def test_new_account_detail_names_the_age_and_the_setting() -> None:
    """The reason's detail says how old the account is and which setting held it."""
    got = decide(mention(author_created_at=NOW - timedelta(days=3)), ctx())
    assert "3.0 days old" in got.detail and "min_account_age x 30d" in got.detail


@pytest.mark.parametrize(("followers", "expected"), [(9, ("review", "few_followers")), (10, ("allow", "tagged"))])
def test_follower_minimum(followers: int, expected: tuple[str, str]) -> None:
    """Fewer followers than min_followers routes the post to review; the minimum itself passes."""
    assert verdict(mention(author_followers=followers), ctx()) == expected


@pytest.mark.parametrize(("setting", "expected"), [("review", "review"), ("skip", "skip"), ("allow", "allow")], ids=str)
def test_new_accounts_setting_decides_where_a_new_account_goes(setting: str, expected: str) -> None:
    """new_accounts: review holds the post for staff, skip drops it, allow ignores the minimums."""
    rules = replace(RULES, new_accounts=setting)
    got = decide(mention(author_created_at=NOW - timedelta(days=1)), ctx(rules))
    assert got.action == expected
    assert got.reason == ("tagged" if setting == "allow" else "new_account")


@pytest.mark.parametrize(
    ("unknown", "field", "expected"),
    [
        ("new", "author_created_at", ("review", "unknown_account")),
        ("new", "author_followers", ("review", "unknown_account")),
        ("ignore", "author_created_at", ("allow", "tagged")),
        ("ignore", "author_followers", ("allow", "tagged")),
    ],
)
def test_unknown_signals(unknown: str, field: str, expected: tuple[str, str]) -> None:
    """An age or follower count the platform did not give counts as a new account unless unknown_signals: ignore."""
    rules = replace(RULES, unknown_signals=unknown)
    assert verdict(mention(**{field: None}), ctx(rules)) == expected


def test_unknown_signal_without_a_minimum_is_not_held() -> None:
    """An unknown value matters only where the platform has a minimum for it."""
    assert verdict(mention(author_created_at=None, author_followers=None), ctx(platform="bluesky")) == (
        "allow",
        "tagged",
    )


def test_partners_bypass_trust_signals_and_first_time_routing() -> None:
    """always_from partners are reshared even from a new account with no followers, the first time too."""
    rules = replace(RULES, first_time_authors="review")
    fresh = mention(author_handle="partner", author_created_at=NOW, author_followers=0)
    assert verdict(fresh, ctx(rules, author_known=False)) == ("allow", "partner")


@pytest.mark.parametrize(("setting", "expected"), [("review", ("review", "first_time_author")), ("allow", None)])
def test_first_time_authors(setting: str, expected: tuple[str, str] | None) -> None:
    """An author the campaign never reshared waits for review when first_time_authors: review; a known one does not."""
    rules = replace(RULES, first_time_authors=setting)
    assert verdict(mention(), ctx(rules, author_known=False)) == (expected or ("allow", "tagged"))
    assert verdict(mention(), ctx(rules, author_known=True)) == ("allow", "tagged")


def test_per_author_daily_cap_holds_for_partners_too() -> None:
    """max_per_author_per_day skips an author's next post once reached, partner or not, and names the cap."""
    rules = replace(RULES, max_per_author_per_day=2, author_cooldown=timedelta(0))
    assert verdict(mention(), ctx(rules, author_day=1)) == ("allow", "tagged")
    got = decide(mention(), ctx(rules, author_day=2))
    assert (got.action, got.reason) == ("skip", "cap_author_day") and "max_per_author_per_day 2" in got.detail
    assert verdict(mention(author_handle="partner"), ctx(rules, author_day=2)) == ("skip", "cap_author_day")


def test_author_cooldown_default_is_six_hours_and_comes_before_trust() -> None:
    """The default cooldown is six hours; a cooled-down author is skipped before any trust routing."""
    assert Rules().author_cooldown == Policy().author_cooldown == timedelta(hours=6)
    new = mention(author_created_at=NOW)
    assert verdict(new, ctx(author_last=NOW - timedelta(hours=5, minutes=59))) == ("skip", "author_cooldown")
    assert verdict(mention(), ctx(author_last=NOW - timedelta(hours=6))) == ("allow", "tagged")


def test_mode_review_keeps_its_reason_and_trust_routing_names_its_rule() -> None:
    """In mode review a trusted author waits as awaiting_review, a new one as new_account."""
    rules = replace(RULES, mode="review")
    assert verdict(mention(), ctx(rules)) == ("review", "awaiting_review")
    assert verdict(mention(author_followers=0), ctx(rules)) == ("review", "few_followers")


def test_trust_signals_survive_the_ledger(tmp_path: Path) -> None:
    """A mention's author creation time and followers are stored with the decision and read back alike."""
    m = mention(author_created_at=NOW - timedelta(days=2), author_followers=3)
    assert mention_from_json(mention_to_json(m)) == m
    assert (
        mention_from_json(mention_to_json(mention(author_created_at=None, author_followers=None))).author_followers
        is None
    )


def test_author_record_counts_the_day_and_the_campaign_history(tmp_path: Path) -> None:
    """author_record gives this account's last row and 24-hour count, and whether any account reshared the author."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    ledger = ReshareLedger(engine, "free")
    rows = [
        ("1", "x-a", "done", NOW - timedelta(hours=30)),
        ("2", "x-a", "queued", NOW - timedelta(hours=2)),
        ("3", "x-b", "done", NOW - timedelta(hours=1)),
    ]
    for remote_id, account, status, when in rows:
        ledger.record(
            when, [NewDecision("x", "x", account, account, mention(remote_id=remote_id), "allow", status, "t")]
        )
    counted, reshared = ["pending", "resharing", "queued", "done"], ["pending", "resharing", "done"]
    a = ledger.author_record("x", "x-a", "u1", NOW, counted, reshared)
    assert (a.last, a.day, a.reshared_before) == (NOW - timedelta(hours=2), 1, True)
    nobody = ledger.author_record("x", "x-a", "u2", NOW, counted, reshared)
    assert (nobody.last, nobody.day, nobody.reshared_before) == (None, 0, False)
    assert not ledger.author_record("mastodon:m.example", "x-a", "u1", NOW, counted, reshared).reshared_before
    engine.dispose()


def test_reshare_yaml_trust_settings_are_loaded(tmp_path: Path) -> None:
    """Per-platform minimums, one value for every platform, and the routing settings reach the campaign's Policy."""
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    (root / "config" / "reshare.yaml").write_text(
        "track:\n  - hashtags: [FreeAndreiandIrina]\n    accounts: [x-index]\n"
        "policy:\n  min_account_age: {x: 30d, mastodon: 7d}\n  min_followers: 10\n"
        "  new_accounts: skip\n  unknown_signals: ignore\n  first_time_authors: review\n"
        "  max_per_author_per_day: 2\n  author_cooldown: 2h\n"
    )
    policy = load(root).reshare.policy
    assert policy.min_account_age == {"x": timedelta(days=30), "mastodon": timedelta(days=7)}
    assert policy.min_followers == dict.fromkeys(REGISTRY, 10)  # one value: every platform the bot knows
    rules = Rules.from_policy(policy)
    assert (rules.new_accounts, rules.unknown_signals, rules.first_time_authors) == ("skip", "ignore", "review")
    assert (rules.max_per_author_per_day, rules.author_cooldown) == (2, timedelta(hours=2))


def test_reshare_yaml_trust_mistakes_are_reported_at_their_line(tmp_path: Path) -> None:
    """An unknown platform, a bad duration, a bad count and an unknown routing value each get file:line."""
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    (root / "config" / "reshare.yaml").write_text(
        "track:\n  - hashtags: [FreeAndreiandIrina]\n    accounts: [x-index]\n"
        "policy:\n"
        "  min_account_age:\n"
        "    x: 30d\n"
        "    twiter: 7d\n"
        "    mastodon: a week\n"
        "  min_followers: {bluesky: many}\n"
    )
    errors = "\n".join(inspect(root).errors)
    assert "config/reshare.yaml:7: policy.min_account_age.twiter: unknown platform 'twiter'" in errors
    assert "config/reshare.yaml:8: policy.min_account_age.mastodon: got 'a week' (expected a duration" in errors
    assert "config/reshare.yaml:9: policy.min_followers.bluesky: got 'many' (expected a whole number" in errors
    reshare = root / "config" / "reshare.yaml"
    reshare.write_text(reshare.read_text().split("  min_account_age")[0] + "  new_accounts: maybe\n")
    [error] = inspect(root).errors
    assert error.startswith("config/reshare.yaml:5: policy.new_accounts: 'maybe' is not allowed")
