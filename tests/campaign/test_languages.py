"""Per-language texts: how posts, variants and accounts' languages combine, and what ``bot check`` reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaign import inspect, load
from bot.campaign.languages import CODES, language_problem

BE_ACCOUNT = """
  mastodon-by:
    platform: mastodon
    base_url: https://mastodon.social
    language: be
    credentials: {access_token: MASTODON_A19_TOKEN}
"""
TRILINGUAL = """text:
  en: |
    Free Andrei and Irina. #FreeAndreiandIrina
  ru: |
    Свободу Андрею и Ирине. #FreeAndreiandIrina
  be: |
    Свабоду Андрэю і Ірыне. #FreeAndreiandIrina
variants:
  x: "Free Andrei and Irina now. #FreeAndreiandIrina"
  bluesky: {ru: "Свободу Андрею и Ирине сейчас. #FreeAndreiandIrina"}
link: https://example.org/petition
"""


def _add_account(root: Path, block: str = BE_ACCOUNT, to: str = "x-index, mastodon-a19, bluesky-index") -> None:
    """Append ``block`` to accounts.yaml and put its account on the launch slot."""
    accounts = root / "config/accounts.yaml"
    accounts.write_text(accounts.read_text() + block)
    account = block.strip().split(":")[0]
    schedule = root / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text().replace(f"accounts: [{to}]", f"accounts: [{to}, {account}]", 1))


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_iso_639_1_has_its_183_codes():
    """The code list is ISO 639-1's 183 two-letter codes, Belarusian, Russian and English among them."""
    assert len(CODES) == 183 and {"be", "ru", "en", "uk", "no"} <= CODES
    assert all(len(code) == 2 and code.islower() for code in CODES)


@pytest.mark.parametrize(
    ("written", "meant"),
    [("by", "be"), ("BE", "be"), ("be-BY", "be"), ("ua", "uk"), ("russian", "ru"), ("xx", None), ("3", None)],
)
def test_unknown_language_says_what_was_meant(written: str, meant: str | None):
    """A country code, capitals, a region or a language's name is refused with the code staff meant, if any."""
    problem = language_problem(written)
    assert problem is not None and problem.startswith(f"unknown language '{written}' (expected an ISO 639-1 code")
    assert (f"did you mean '{meant}'?" in problem) if meant else "did you mean" not in problem


def test_per_language_text_and_variants_combine(campaign_dir: Path):
    """Each language has its text; a variant without languages is the default language's, one with them its own."""
    (campaign_dir / "posts/launch.yaml").write_text(TRILINGUAL)
    post = load(campaign_dir).posts["launch"]
    link = "\nhttps://example.org/petition"
    assert post.languages == ["en", "ru", "be"] and post.language == "en"
    assert post.text_for("x", "en") == "Free Andrei and Irina now. #FreeAndreiandIrina" + link
    assert post.text_for("x", "ru") == "Свободу Андрею и Ирине. #FreeAndreiandIrina" + link
    assert post.text_for("bluesky", "ru") == "Свободу Андрею и Ирине сейчас. #FreeAndreiandIrina" + link
    assert post.text_for("mastodon", "be") == "Свабоду Андрэю і Ірыне. #FreeAndreiandIrina" + link
    assert post.text_for("x") == post.text_for("x", "en")
    with pytest.raises(LookupError, match="no de text"):
        post.text_for("x", "de")


def test_outgoing_carries_the_accounts_language(campaign_dir: Path):
    """The publisher's Outgoing holds the account's language and the text in it (Mastodon and Bluesky send it)."""
    (campaign_dir / "posts/launch.yaml").write_text(TRILINGUAL)
    _add_account(campaign_dir)
    campaign = load(campaign_dir)
    account = campaign.accounts["mastodon-by"]
    out = campaign.posts["launch"].outgoing(account.platform, "key-1", account.language)
    assert (out.language, out.text.splitlines()[0]) == ("be", "Свабоду Андрэю і Ірыне. #FreeAndreiandIrina")
    english = campaign.posts["launch"].outgoing("x", "key-2", campaign.accounts["x-index"].language)
    assert english.language == "en" and english.text.startswith("Free Andrei and Irina now.")


def test_accounts_default_to_the_campaigns_language(campaign_dir: Path):
    """``language: ru`` at the top of accounts.yaml makes plain texts and accounts without a language Russian."""
    accounts = campaign_dir / "config/accounts.yaml"
    accounts.write_text(
        accounts.read_text().replace("campaign: test-campaign", "campaign: test-campaign\nlanguage: ru")
    )
    campaign = load(campaign_dir)
    assert campaign.language == "ru" and {a.language for a in campaign.accounts.values()} == {"ru"}
    assert campaign.posts["launch"].language == "ru"
    assert campaign.posts["launch"].outgoing("mastodon", "k", "ru").language == "ru"


def test_without_settings_everything_is_english(campaign_dir: Path):
    """With no language anywhere the campaign, its accounts and its plain posts are English, as before."""
    campaign = load(campaign_dir)
    assert campaign.language == "en" and {a.language for a in campaign.accounts.values()} == {"en"}
    assert {p.language for p in campaign.posts.values()} == {"en"}
    assert all(not p.translations for p in campaign.posts.values())


def test_belarusian_account_without_be_text_is_reported(campaign_dir: Path):
    """A Belarusian account scheduled a post with only en and ru text is an error naming post, account and languages."""
    post = campaign_dir / "posts/launch.yaml"
    post.write_text(TRILINGUAL.replace("  be: |\n    Свабоду Андрэю і Ірыне. #FreeAndreiandIrina\n", ""))
    _add_account(campaign_dir)
    result = inspect(campaign_dir, warnings=False)
    line = _line_of(campaign_dir / "config/accounts.yaml", "mastodon-by:")
    assert result.errors == [
        f"posts/launch.yaml:1: text: mastodon-by (config/accounts.yaml:{line}) publishes in be, but post 'launch' "
        "has no be text, only en, ru (expected text.be: the words in be, or take the post out of the slots of "
        "that account)"
    ]


def test_plain_english_post_to_belarusian_account_is_reported(campaign_dir: Path):
    """A plain text is in the campaign's language: a Belarusian account cannot publish it."""
    _add_account(campaign_dir)
    errors = inspect(campaign_dir, warnings=False).errors
    assert len(errors) == 1 and errors[0].startswith("posts/launch.yaml:1: text: mastodon-by (config/accounts.yaml:")
    assert "has no be text, only en (expected text.be" in errors[0]


def test_queue_posts_are_checked_for_the_accounts_of_the_queue_slot(campaign_dir: Path):
    """Every post of a queue a Belarusian account takes from is reported, in its own file."""
    _add_account(campaign_dir, to="mastodon-a19")
    errors = inspect(campaign_dir, warnings=False).errors
    queue = sorted(p.name for p in (campaign_dir / "posts/sample-posts").glob("*.yaml"))
    assert [e.split(":")[0] for e in errors] == [f"posts/sample-posts/{name}" for name in queue]
    assert all("mastodon-by (config/accounts.yaml:" in e and "has no be text" in e for e in errors)


def test_unknown_language_codes_are_reported_where_written(campaign_dir: Path):
    """Unknown codes in the campaign, an account, a post's language and a text's keys each get their line."""
    accounts = campaign_dir / "config/accounts.yaml"
    accounts.write_text(
        accounts.read_text().replace("campaign: test-campaign", "campaign: test-campaign\nlanguage: english")
        + BE_ACCOUNT.replace("language: be", "language: by")
    )
    post = campaign_dir / "posts/launch.yaml"
    post.write_text(TRILINGUAL.replace("  ru: |", "  RU: |") + "language: xx\n")
    errors = inspect(campaign_dir, warnings=False).errors
    by = _line_of(accounts, "language: by")
    assert errors == [
        "config/accounts.yaml:2: language: unknown language 'english' (expected an ISO 639-1 code like en, ru or be; "
        "did you mean 'en'?)",
        f"config/accounts.yaml:{by}: accounts.mastodon-by.language: unknown language 'by' (expected an ISO 639-1 "
        "code like en, ru or be; did you mean 'be'?)",
        "posts/launch.yaml:4: text.RU: unknown language 'RU' (expected an ISO 639-1 code like en, ru or be; "
        "did you mean 'ru'?)",
        "posts/launch.yaml:10: variants.bluesky.ru: the post has no ru text (expected text.ru too, or remove this "
        "variant)",
        "posts/launch.yaml:12: language: unknown language 'xx' (expected an ISO 639-1 code like en, ru or be)",
    ]


def test_length_is_checked_per_language(campaign_dir: Path):
    """A Russian text too long for a Russian X account is reported at its own line, with the variant to add."""
    long_ru = "Свободу Андрею и Ирине! " * 14
    (campaign_dir / "posts/launch.yaml").write_text(
        f'text:\n  en: "Free Andrei and Irina."\n  ru: "{long_ru.strip()}"\nvariants:\n  x: "Free them."\n'
    )
    _add_account(campaign_dir, "\n  x-ru:\n    platform: x\n    language: ru\n" + _X_CREDENTIALS)
    errors = inspect(campaign_dir, warnings=False).errors
    assert len(errors) == 1 and errors[0].startswith("posts/launch.yaml:3: text.ru: too long for x-ru: ")
    assert errors[0].endswith("(expected at most 280, or add variants.x.ru)")


def test_plain_variant_needs_a_text_in_its_language(campaign_dir: Path):
    """A variant without languages is in the campaign's language: with no text in it, staff are told to write languages."""
    (campaign_dir / "posts/launch.yaml").write_text('text: {ru: "Свободу!", be: "Свабоду!"}\nvariants:\n  x: "Free!"\n')
    errors = inspect(campaign_dir, warnings=False).errors
    assert (
        "posts/launch.yaml:3: variants.x: a variant written without a language is in en (the campaign's language), "
        "which text has no words in (expected one per language like x: {ru: ...})"
    ) in errors


def test_post_language_names_the_plain_texts_language(campaign_dir: Path):
    """``language: ru`` on a post with one text makes it Russian: Russian accounts publish it, English ones cannot."""
    post = campaign_dir / "posts/launch.yaml"
    post.write_text(post.read_text() + "language: ru\n")
    _add_account(campaign_dir, BE_ACCOUNT.replace("mastodon-by", "mastodon-ru").replace("language: be", "language: ru"))
    errors = inspect(campaign_dir, warnings=False).errors
    assert len(errors) == 1 and "x-index (config/accounts.yaml:3), mastodon-a19 (config/accounts.yaml:7)" in errors[0]
    assert "publish in en, but post 'launch' has no en text, only ru" in errors[0]


def test_empty_and_malformed_language_texts(campaign_dir: Path):
    """An empty text in one language, a list for a text and an unquoted ``no`` each say what was expected."""
    post = campaign_dir / "posts/launch.yaml"
    post.write_text('text:\n  en: ""\n  no: "Fri Andrei og Irina."\n')
    errors = inspect(campaign_dir, warnings=False).errors
    assert "posts/launch.yaml:2: text.en: got an empty text (expected the words of the post in en)" in errors
    assert any("write Norwegian as 'no' in quotes" in e for e in errors)
    post.write_text("text: [a, b]\n")
    assert inspect(campaign_dir, warnings=False).errors[0] == (
        "posts/launch.yaml:1: text: got ['a', 'b'] (expected the words of the post, or one per language like "
        "{en: ..., ru: ...})"
    )


_X_CREDENTIALS = """    credentials: {consumer_key: X_INDEX_CONSUMER_KEY, consumer_secret: X_INDEX_CONSUMER_SECRET,
                  access_token: X_INDEX_ACCESS_TOKEN, access_token_secret: X_INDEX_ACCESS_TOKEN_SECRET}
"""
