"""Unit tests of the pure reshare policy: every rule, with the reason it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.values import DISPLAY_NAME_UNKNOWN, Mention
from bot.resharing.policy import Context, Handle, Rules, decide, fold, judge

NOW = datetime(2022, 1, 12, 8, 0, tzinfo=UTC)
RULES = Rules(
    always_from=("@article19org", "@IndexCensorship", "@partner@mastodon.social"),
    never_from=("@troll", "@bot@evil.example"),
    blocked_words=("Lukashenka", "Lukašenka", "fake news"),
    max_per_hour=4,
    max_per_day=20,
)


def mention(text: str = "Free them #FreeAndreiandIrina", **kw) -> Mention:
    fields = dict(
        remote_id="1",
        url="https://example/1",
        author_id="u1",
        author_handle="supporter",
        author_name="A Supporter",
        text=text,
        created_at=NOW,
    )
    fields.update(kw)
    return Mention(**fields)


def ctx(**kw) -> Context:
    base = dict(rules=RULES, own_ids=frozenset({"own-id"}), own_handles=("x-index",), now=NOW)
    base.update(kw)
    return Context(**base)


def test_ordinary_supporter_is_allowed() -> None:
    """A plain tagged post from an unknown supporter is allowed, reason tagged."""
    assert decide(mention(), ctx()).action == "allow"
    assert decide(mention(), ctx()).reason == "tagged"


@pytest.mark.parametrize(
    "text",
    [
        "Lukashenka must go",
        "LUKASHENKA",
        "lukašenka lies",
        "ŁUKAŠENKA!",
        "#Lukashenka",
        "Ｌｕｋａｓｈｅｎｋａ",
        "Luka\u200bshenka",
        "#LukashenkaForever",
        "this is FAKE   News",
    ],
)
def test_blocked_words_match_case_accent_and_form_variants(text: str) -> None:
    """Blocked words match whatever the case, accents, full-width forms or zero-width tricks."""
    verdict = decide(mention(text), ctx())
    assert (verdict.action, verdict.reason) == ("skip", "blocked_word")


@pytest.mark.parametrize("text", ["Lukashenkaist propaganda", "fakenews", "Free Andrei"])
def test_blocked_words_are_whole_words(text: str) -> None:
    """A blocked word inside a longer word does not match."""
    assert decide(mention(text), ctx()).action == "allow"


def test_blocked_word_in_display_name_and_handle() -> None:
    """Blocked words are looked for in the author's display name and handle too."""
    by_name = decide(mention(author_name="Łukašenka fan"), ctx())
    by_handle = decide(mention(author_handle="@lukashenka_fan"), ctx())
    assert by_name.reason == by_handle.reason == "blocked_word"
    assert "display name" in by_name.detail and "handle" in by_handle.detail


def test_partner_passes_blocked_words_but_not_shape_rules() -> None:
    """always_from authors are allowed even naming a blocked word, yet their replies are still skipped."""
    partner = dict(author_handle="ARTICLE19ORG")
    assert decide(mention("Lukashenka jails journalists", **partner), ctx()).reason == "partner"
    assert decide(mention(is_reply=True, **partner), ctx()).reason == "reply"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_reply": True}, "reply"),
        ({"is_reshare": True}, "reshare"),
        ({"sensitive": True}, "sensitive"),
        ({"spoiler_text": "prison conditions"}, "sensitive"),
        ({"author_id": "own-id", "author_handle": "someone"}, "own"),
        ({"author_handle": "@X-Index"}, "own"),
        ({"author_handle": "Troll"}, "never_from"),
        ({"author_handle": "troll@other.example"}, "never_from"),
        ({"author_handle": "bot@evil.example"}, "never_from"),
    ],
)
def test_skip_rules(fields: dict, reason: str) -> None:
    """Replies, reshares, sensitive posts, own posts and never_from authors are skipped with their reason."""
    verdict = decide(mention(**fields), ctx())
    assert (verdict.action, verdict.reason) == ("skip", reason)


def test_skip_kinds_not_configured_are_allowed() -> None:
    """A shape rule left out of skip does not skip."""
    rules = Rules(skip=frozenset({"own"}))
    assert decide(mention(is_reply=True), ctx(rules=rules)).action == "allow"


def test_mastodon_handles_compare_with_domains() -> None:
    """always_from with a domain matches that remote account, or the local one on its own instance."""
    remote = mention(author_handle="partner@mastodon.social")
    local = mention(author_handle="partner")
    elsewhere = mention(author_handle="partner@impostor.example")
    assert decide(remote, ctx(instance="other.example")).reason == "partner"
    assert decide(local, ctx(instance="mastodon.social")).reason == "partner"
    assert decide(elsewhere, ctx(instance="mastodon.social")).reason == "tagged"
    # A bare always_from name is the local account, not a look-alike on another server.
    assert decide(mention(author_handle="article19org@impostor.example"), ctx(instance="m.example")).reason == "tagged"
    assert decide(mention(author_handle="article19org"), ctx(instance="m.example")).reason == "partner"


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        ({"last_hour": 4}, "cap_hour"),
        ({"last_day": 20}, "cap_day"),
        ({"author_last": NOW - timedelta(hours=5)}, "author_cooldown"),
    ],
)
def test_caps(counts: dict, reason: str) -> None:
    """Hour and day caps and the author cooldown skip what the policy would otherwise allow."""
    verdict = decide(mention(), ctx(**counts))
    assert (verdict.action, verdict.reason) == ("skip", reason)
    assert decide(mention(author_handle="IndexCensorship"), ctx(**counts)).reason == reason


def test_cooldown_over_allows_again() -> None:
    """An author reshared longer ago than the cooldown may be reshared again."""
    assert decide(mention(), ctx(author_last=NOW - timedelta(hours=7), last_hour=3)).action == "allow"


def test_review_mode_queues_instead_of_allowing() -> None:
    """In review mode a passing post waits for staff, partners go straight to the caps, skips stay skips."""
    rules = Rules(mode="review", blocked_words=("Lukashenka",), always_from=("@article19org",))
    assert decide(mention(), ctx(rules=rules)).action == "review"
    assert decide(mention("LUKASHENKA"), ctx(rules=rules)).action == "skip"
    partner = mention(author_handle="article19org")
    assert decide(partner, ctx(rules=rules)).reason == "partner"
    assert decide(partner, ctx(rules=rules, last_hour=4)).reason == "cap_hour"


def test_decide_is_deterministic() -> None:
    """The same post and context always give the same decision."""
    m = mention("Lukašenka", author_name="x")
    assert len({decide(m, ctx()) for _ in range(20)}) == 1


def test_spacing_and_folding_helpers() -> None:
    """Spacing defaults to an hour over max_per_hour; folding drops accents and case."""
    assert Rules(max_per_hour=4).spacing == timedelta(minutes=15)
    assert fold("ŁUKAŠENKA") == fold("lukasenka") == "lukasenka"
    assert Handle.parse("@User@Mastodon.Social") == Handle("user", "mastodon.social")
    assert judge(mention(), ctx()).action == "allow"


def test_review_listing_strips_terminal_escapes() -> None:
    """Untrusted post text shown to staff loses control and bidi characters and is cut to width."""
    from bot.cli.review import clean

    assert clean("Free\x1b[31m them\u202e now\n#tag") == "Free [31m them now #tag"
    assert clean("x" * 100, 10) == "x" * 9 + "…"


def test_unknown_display_name_goes_to_review_never_allow() -> None:
    """A mention whose display name the platform did not give is reviewed (display_name_unknown), partners excepted."""
    unknown = {DISPLAY_NAME_UNKNOWN: "no_permission"}
    decision = decide(mention(ref=unknown), ctx(platform="threads"))
    assert (decision.action, decision.reason) == ("review", "display_name_unknown")
    assert decision.detail == "threads did not say the author's display name (no permission)"
    assert decide(mention(ref=unknown), ctx(platform="threads", rules=Rules(mode="review"))).reason == (
        "display_name_unknown"
    )
    assert decide(mention("Lukashenka rules", ref=unknown), ctx(platform="threads")).action == "skip"
    assert decide(mention(author_handle="article19org", ref=unknown), ctx(platform="threads")).reason == "partner"
