"""Fast unit tests of blocked-word matching: evasions caught, ordinary words left alone (no servers)."""

from __future__ import annotations

import pytest

from bot.resharing.matching import Term, explain, matcher, variants

BLOCKED = ("traitor", "extremist", "fake news", "предатель", "здраднік", "хлусня", '="bob"', "1488", "crypto")
M = matcher(BLOCKED)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("traitors everywhere", "traitor"),
        ("a traitor's work", "traitor"),
        ("TRAITOR", "traitor"),
        ("tr\u0430itor", "traitor"),  # Cyrillic а
        ("\u0422RAITOR", "traitor"),  # Cyrillic Т
        ("\u03c4rai\u03c4\u03bfr", "traitor"),  # Greek τ and ο
        ("\u0442\u0433\u0430\u0456\u0442\u043e\u0433", "traitor"),  # every letter Cyrillic
        ("𝔱𝔯𝔞𝔦𝔱𝔬𝔯", "traitor"),  # mathematical letters (NFKC)
        ("ｔｒａｉｔｏｒ", "traitor"),  # full width
        ("tr\u200bai\u00adt\u2060or", "traitor"),  # zero-width space, soft hyphen, word joiner
        ("t\u0336r\u0336a\u0336i\u0336t\u0336o\u0336r\u0336", "traitor"),  # strike-through marks
        ("t.r.a.i.t.o.r", "traitor"),
        ("t r a i t o r", "traitor"),
        ("t-r-a-i-t-o-r-s", "traitor"),
        ("t_r_a_i_t_o_r", "traitor"),
        ("trai-tor", "traitor"),
        ("traaaaitooor", "traitor"),
        ("tr41t0r", "traitor"),
        ("tra1tor", "traitor"),
        ("tr@itor", "traitor"),
        ("#TraitorsOut", "traitor"),
        ("EXTREMISTS", "extremist"),
        ("this is FAKE   News", "fake news"),
        ("fake n\u0435ws", "fake news"),
        ("предатели", "предатель"),
        ("предателям", "предатель"),
        ("п\u0440\u0435датель", "предатель"),
        ("пpeдaтeлями", "предатель"),  # Latin p, e, a inside a Russian word
        ("п р е д а т е л ь", "предатель"),
        ("предааатель", "предатель"),
        ("здраднікі", "здраднік"),
        ("здраднікамі", "здраднік"),
        ("здраднікаў", "здраднік"),
        ("хлуснёй", "хлусня"),
        ("BOB", '="bob"'),
        ("b0b", '="bob"'),
        ("1488", "1488"),
        ("crypt0 airdrop", "crypto"),
    ],
)
def test_disguised_forms_match(text: str, word: str) -> None:
    """Case, look-alike letters, invisible characters, separators, repeats, substitutions and inflections all match."""
    hit = M.find(text)
    assert hit is not None and hit.term.written == word, text


@pytest.mark.parametrize(
    "text",
    [
        "traditional values",
        "extremely worried",
        "an extreme sentence",
        "fakenews",
        "fake stories, real news",
        "bobs",
        "booob",
        "14 88",
        "cryptography lecture",
        "предательство",  # a derived noun, not an inflection
        "предать",
        "здрада",
        "здрадніцтва",
        "I am a t r u e friend",
        "a b c d e",
        "U.S.A. and E.U. statements",
        "cop on the corner",
        "Free Andrei and Irina! #FreeAndreiandIrina",
        "Свободу Андрею и Ирине!",
        "Волю Андрэю і Ірыне!",
    ],
)
def test_ordinary_words_do_not_match(text: str) -> None:
    """Words that only share letters with a blocked word (traditional, extremely, предательство) are not blocked."""
    hit = M.find(text)
    assert hit is None, (text, hit)


def test_stemmer_also_folds_some_derivations() -> None:
    """Snowball's English stemmer takes -ous off (traitorous -> traitor), so that derivation matches too."""
    assert M.find("the traitorous") is not None


def test_exact_form_does_not_inflect_but_plain_word_does() -> None:
    """="word" matches that form only, while the plain word also matches its plural."""
    assert matcher(('="traitor"',)).find("traitors") is None
    assert matcher(('="traitor"',)).find("TRAITOR") is not None
    assert matcher(("traitor",)).find("traitors") is not None


def test_terms_parse_language_and_kind() -> None:
    """Latin words stem as English, Cyrillic as Russian, Belarusian letters give a prefix, short ones go exact."""
    assert Term.parse("traitors").keys == ((("en", "traitor"),),)
    assert Term.parse("предатели").keys == ((("ru", "предател"),),)  # и is Russian only
    assert Term.parse("здраднік").keys == ((("be", "здраднік"),),)  # і is Belarusian only
    assert Term.parse("хлусня").keys == ((("ru", "хлусн"), ("be", "хлусн")),)  # either language
    assert Term.parse("ілжа").keys == ((("exact", "ілжа"),),)  # a three-letter prefix would match too much
    assert Term.parse("   ") is None


def test_matcher_is_built_once_per_list() -> None:
    """The same blocked list gives the same compiled matcher, so the policy does not rebuild it per post."""
    assert matcher(BLOCKED) is M


def test_explain_lists_key_and_caught_variants() -> None:
    """explain names the stemmer used and says MATCHES for every generated disguise of the word."""
    lines = explain("traitor", variants("traitor"))
    assert "English Snowball stem" in lines[2]
    assert [line for line in lines[3:] if "no match" in line] == []
    assert len(lines) >= 9


def test_bot_check_explain_word_prints_semantics(capsys: pytest.CaptureFixture[str]) -> None:
    """`bot check --explain-word` prints the word's key and which disguises and inflections it catches, exit 0."""
    from bot.cli import main

    assert main(["check", "--explain-word", '="traitor"']) == 0
    out = capsys.readouterr().out
    assert "exact form only" in out and "MATCHES: TRAITOR" in out and "no match: traitors" in out
