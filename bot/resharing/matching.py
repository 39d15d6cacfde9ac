"""Blocked-word matching that survives the ways trolls disguise a word.

A blocked word matches a post's word when both come to the same key after:
Unicode NFKC, removal of default-ignorable (invisible, joining) characters, accent stripping,
look-alike letters read through Unicode TR39 confusable skeletons (ICU's SpoofChecker) into
Latin or Cyrillic, common digit and symbol substitutions (``tr41t0r``, ``tr@itor``), letters
spelled out with separators (``t.r.a.i.t.o.r``), repeated letters squeezed (``traaaitor``), and
inflection: Snowball stemmers for English and Russian (PyStemmer), and for Belarusian, which
Snowball has no stemmer for, the word less its vowel ending as a prefix followed by at most
three letters. ``="word"`` asks for that word form only (no stemming, no squeezing).

Matching is on whole words: ``traitor`` never matches inside ``traditional``.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import icu  # PyICU (wheel: pyicu-wheels): ICU's TR39 skeletons, the reference implementation
import regex
import Stemmer  # PyStemmer: Snowball stemmers in C

Key = tuple[str, str]  # (kind, form): kind is en, ru, be or exact

# Letters NFKD does not decompose, folded so "Łukašenka" and "LUKASENKA" are the same word.
FOLD = str.maketrans(
    {
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ø": "o",
        "Ø": "O",
        "ħ": "h",
        "ı": "i",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "þ": "th",
        "Þ": "TH",
        "ŀ": "l",
    }
)
# Default_Ignorable_Code_Point: zero-width spaces and joiners, soft hyphen, bidi marks, variation
# selectors, Hangul fillers: all render as nothing, so a troll can put them inside a word unseen.
INVISIBLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
WORD = regex.compile(r"[\p{L}\p{N}]+")
# A word with @ or $ standing for letters inside it (tr@itor, $hame), but not an @handle's @.
LEET_WORD = regex.compile(r"(?:\$(?=\p{L}))?[\p{L}\p{N}]+(?:[@$]+[\p{L}\p{N}]+)*\$?")
CAMEL = regex.compile(r"(?<=\p{Ll})(?=\p{Lu})")
# Three or more single characters, each apart from the next by one to three separator characters
# (t.r.a.i.t.o.r, t r a i t o r, t-r-a-i-t-o-r); whole words are never joined across spaces.
SPELLED = regex.compile(
    r"(?<![\p{L}\p{N}@$])[\p{L}\p{N}@$](?:[^\p{L}\p{N}@$\n]{1,3}[\p{L}\p{N}@$](?![\p{L}\p{N}])){2,}(?![\p{L}\p{N}])"
)
# Pieces of one word glued by punctuation with no space (trai.tor, trai-tor, trai_tor).
GLUED = regex.compile(r"[\p{L}\p{N}@$]+(?:[._\-·*'’]+[\p{L}\p{N}@$]+)+")
REPEATED = regex.compile(r"(.)\1+")
NOT_WORD = regex.compile(r"[^\p{L}\p{N}@$]+")
CYRILLIC_WORD = regex.compile(r"\p{Cyrillic}+")
BELARUSIAN_ONLY = frozenset("іў")
RUSSIAN_ONLY = frozenset("иъщ")
BELARUSIAN_ENDING = regex.compile(r"[аеёіоуыэюяйиь]+$")
MIN_PREFIX = 4  # a shorter Belarusian stem would match too many unrelated words: it is matched exactly
MAX_ENDING = 3  # letters a Belarusian prefix may be followed by (здраднік -> здраднікамі)
# Leetspeak is not a confusable in TR39's sense (a 4 does not look like an a), so these are ours.
LEET_LATIN = (str.maketrans("0134578@$", "oieastbas"), str.maketrans("0134578@$", "oleastbas"))
LEET_CYRILLIC = str.maketrans({"0": "о", "3": "з", "4": "ч", "6": "б", "@": "а", "$": "s"})
LEET_CHARS = frozenset("0123456789@$")

_SPOOF = icu.SpoofChecker()
_local = threading.local()  # PyStemmer stemmers are not safe to share across threads


def _stemmer(language: str) -> Stemmer.Stemmer:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    if language not in stemmers:
        stemmers[language] = Stemmer.Stemmer(language)
    return stemmers[language]


def normalize(text: str) -> str:
    """NFKC, invisible characters removed, accents stripped; case is kept (camelCase and look-alikes need it)."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(FOLD)
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


@lru_cache(maxsize=8192)
def latin_shape(ch: str) -> str:
    """The ASCII letters ``ch`` looks like (its TR39 skeleton), lower case; else ``ch`` casefolded."""
    if ch.isascii():
        return ch.lower()
    # A lower-case look-alike first (Cyrillic і is i), then the capital's (Cyrillic т looks like T).
    for form in (ch.lower(), ch.upper(), ch):
        shape = _SPOOF.getSkeleton(0, form)
        if shape.isascii() and shape.isalpha():
            return str(shape.lower())
    return ch.casefold()


def _cyrillic_of_latin() -> tuple[dict[str, str], dict[str, str]]:
    """Each ASCII letter or digit a Cyrillic letter looks like, mapped back to that letter (TR39 in reverse).

    The second table holds a shape's other letter where two share it (b: в and ь), for a second reading.
    """
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    russian = [chr(c) for c in range(0x430, 0x450)]
    others = [chr(c) for c in range(0x450, 0x530) if chr(c).isalpha() and chr(c).islower()]
    for ch in russian + others:  # Russian letters win a shape two letters share
        for form in (ch, ch.upper()):
            shape = _SPOOF.getSkeleton(0, form)
            if len(shape) == 1 and shape.isascii() and shape.isalnum():
                key = shape.lower()
                (second if key in first else first).setdefault(key, ch)
                break
    return first, second


CYRILLIC_OF_LATIN, CYRILLIC_ALTERNATE = _cyrillic_of_latin()


def latin_reading(token: str) -> str:
    return "".join(latin_shape(c) for c in token)


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u052f"


def cyrillic_reading(token: str, *, alternate: bool = False) -> str:
    out = []
    for c in token:
        if _is_cyrillic(c):
            out.append(c.lower())
        else:
            for s in latin_shape(c):
                out.append((alternate and CYRILLIC_ALTERNATE.get(s)) or CYRILLIC_OF_LATIN.get(s, s))
    return "".join(out)


def squeeze(word: str) -> str:
    """Runs of one letter as one letter (traaaitor -> traitor)."""
    return str(REPEATED.sub(r"\1", word))


def _stem(language: str, word: str) -> str:
    return str(_stemmer(language).stemWord(word))


def _is_latin(word: str) -> bool:
    return word.isascii() and word.isalpha()


@lru_cache(maxsize=65536)
def token_keys(token: str) -> frozenset[Key]:
    """Every key a post's word may match under: its readings in Latin and Cyrillic, stemmed, squeezed, cut."""
    keys: set[Key] = {("exact", token.casefold())}
    leet = any(c in LEET_CHARS for c in token) and any(c.isalpha() for c in token)
    latin = {latin_reading(token)}
    if leet:
        latin |= {latin_reading(token.translate(t)) for t in LEET_LATIN}
    # Only a word with a Cyrillic letter in it is read as Cyrillic: English words written in Latin
    # letters would otherwise come to Russian words that look alike (cop -> сор).
    cyrillic: set[str] = set()
    if any(_is_cyrillic(c) for c in token):
        forms = [token, token.translate(LEET_CYRILLIC)] if leet else [token]
        cyrillic = {cyrillic_reading(f, alternate=alt) for f in forms for alt in (False, True)}
    for word in latin:
        if _is_latin(word):
            keys.add(("exact", word))
            keys.add(("en", squeeze(_stem("english", word))))
            keys.add(("en", squeeze(_stem("english", squeeze(word)))))
    for word in cyrillic:
        if CYRILLIC_WORD.fullmatch(word):
            keys.add(("exact", word))
            squeezed = squeeze(word)
            keys.add(("ru", squeeze(_stem("russian", word))))
            keys.add(("ru", squeeze(_stem("russian", squeezed))))
            for cut in range(MAX_ENDING + 1):
                if len(squeezed) - cut >= MIN_PREFIX:
                    keys.add(("be", squeezed[: len(squeezed) - cut]))
    return frozenset(keys)


def _languages(word: str) -> tuple[str, ...]:
    letters = set(word.lower())
    if regex.search(r"\p{Cyrillic}", word):
        if letters & BELARUSIAN_ONLY:
            return ("be",)
        if letters & RUSSIAN_ONLY:
            return ("ru",)
        return ("ru", "be")  # written alike in both (хлусня, вораг): either language's forms match
    if regex.search(r"\p{L}", word):
        return ("en",)
    return ("exact",)  # digits and symbols only (1488): no language to inflect


def word_keys(word: str, *, exact: bool) -> tuple[Key, ...]:
    """The keys a blocked word's forms in a post come to (any one of them matches)."""
    languages = _languages(word)
    norm = normalize(word)
    if languages == ("en",):
        reading = latin_reading(norm)
    elif languages == ("exact",):
        reading = norm.casefold()
    else:
        reading = cyrillic_reading(norm)
    if exact or languages == ("exact",):
        return (("exact", reading),)
    keys: list[Key] = []
    for language in languages:
        if language == "en":
            keys.append(("en", squeeze(_stem("english", reading))))
        elif language == "ru":
            keys.append(("ru", squeeze(_stem("russian", reading))))
        else:
            prefix = BELARUSIAN_ENDING.sub("", squeeze(reading))
            keys.append(("be", prefix) if len(prefix) >= MIN_PREFIX else ("exact", reading))
    return tuple(keys)


@dataclass(frozen=True)
class Term:
    """One blocked word or phrase as staff wrote it, and the key each of its words must match."""

    written: str
    keys: tuple[tuple[Key, ...], ...]  # per word, the keys any one of which matches it
    exact: bool

    @classmethod
    def parse(cls, written: str) -> Term | None:
        """``word``, ``a phrase``, or ``="exact form"``; None for an entry with no word in it."""
        body, exact = written.strip(), False
        if body.startswith("="):
            body, exact = body[1:].strip().strip("\"'“”«»"), True
        words = WORD.findall(normalize(body))
        if not words:
            return None
        return cls(written, tuple(word_keys(w, exact=exact) for w in words), exact)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.keys[0])


@dataclass(frozen=True)
class Hit:
    term: Term
    found: str  # the post's words that matched, normalized


Token = tuple[str, int, int]  # a word and where it is in the normalized text: [start, end)


def _joined(norm: str, pattern: regex.Pattern[str]) -> tuple[str, list[int]]:
    """``norm`` with each ``pattern`` match's separators removed, and each kept character's index in ``norm``."""
    out: list[str] = []
    where: list[int] = []
    last = 0
    for m in pattern.finditer(norm):
        out.append(norm[last : m.start()])
        where.extend(range(last, m.start()))
        for i in range(m.start(), m.end()):
            if not NOT_WORD.match(norm[i]):
                out.append(norm[i])
                where.append(i)
        last = m.end()
    out.append(norm[last:])
    where.extend(range(last, len(norm)))
    return "".join(out), where


def readings(norm: str) -> Iterator[list[Token]]:
    """The word sequences normalized text may be read as, with positions: plain, camelCase split,
    with @/$ as letters, spelled-out joined (the plain reading first)."""
    plain = [(m.group(), m.start(), m.end()) for m in WORD.finditer(norm)]
    yield plain
    if CAMEL.search(norm):
        split: list[Token] = []
        for word, start, _ in plain:
            cuts = [0, *(m.start() for m in CAMEL.finditer(word)), len(word)]
            split += [(word[a:b], start + a, start + b) for a, b in zip(cuts, cuts[1:]) if b > a]
        yield split
    joined = [(norm, list(range(len(norm))))] if "@" in norm or "$" in norm else []
    for pattern in (SPELLED, GLUED):
        if pattern.search(norm):
            joined.append(_joined(norm, pattern))
    for text, where in joined:
        yield [(m.group(), where[m.start()], where[m.end() - 1] + 1) for m in LEET_WORD.finditer(text)]


def streams(text: str) -> Iterator[list[str]]:
    """The word sequences ``text`` may be read as: plain, camelCase split, with @/$ as letters, spelled-out joined."""
    seen: set[tuple[str, ...]] = set()
    for tokens in readings(normalize(text)):
        words = [word for word, _, _ in tokens]
        if tuple(words) not in seen:
            seen.add(tuple(words))
            yield words


@dataclass
class Matcher:
    """The blocked words of one campaign, indexed by the key of each term's first word."""

    terms: tuple[Term, ...]
    first: dict[Key, list[Term]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for term in self.terms:
            for key in term.keys[0]:
                self.first.setdefault(key, []).append(term)

    def find(self, text: str) -> Hit | None:
        """The first blocked term in ``text``, or None."""
        if not self.first or not text:
            return None
        for words in streams(text):
            keys = [token_keys(w) for w in words]
            for i, here in enumerate(keys):
                for key in here & self.first.keys():
                    for term in self.first[key]:
                        n = len(term.keys)
                        if i + n <= len(keys) and all(keys[i + j].intersection(term.keys[j]) for j in range(1, n)):
                            return Hit(term, " ".join(words[i : i + n]))
        return None

    def locate(self, text: str) -> list[tuple[int, int, Term]]:
        """Where in ``text`` (as written) each blocked term matches: (start, end, term), in order, for showing.

        ``find`` decides; this reads the same words at the same keys and maps them back through a
        normalization done character by character, so a highlight falls on the characters the reader sees.
        """
        if not self.first or not text:
            return []
        pieces = [normalize(ch) for ch in text]
        norm = "".join(pieces)
        origin = [i for i, piece in enumerate(pieces) for _ in piece]
        spans: dict[tuple[int, int], Term] = {}
        for tokens in readings(norm):
            keys = [token_keys(word) for word, _, _ in tokens]
            for i, here in enumerate(keys):
                for key in here & self.first.keys():
                    for term in self.first[key]:
                        n = len(term.keys)
                        if i + n <= len(keys) and all(keys[i + j].intersection(term.keys[j]) for j in range(1, n)):
                            start, end = origin[tokens[i][1]], origin[tokens[i + n - 1][2] - 1] + 1
                            spans.setdefault((start, end), term)
        kept: list[tuple[int, int, Term]] = []
        for (start, end), term in sorted(spans.items(), key=lambda item: (item[0][0], -item[0][1])):
            if not kept or start >= kept[-1][1]:  # overlapping readings of one place: the longest wins
                kept.append((start, end, term))
        return kept


@lru_cache(maxsize=64)
def matcher(blocked: tuple[str, ...]) -> Matcher:
    """The matcher for a campaign's blocked words, built once per distinct list."""
    return Matcher(tuple(t for t in (Term.parse(w) for w in blocked) if t is not None))


def explain(written: str, samples: Iterable[str] = ()) -> list[str]:
    """Lines telling staff what a blocked word matches: its language, key, and which sample words it catches."""
    term = Term.parse(written)
    if term is None:
        return [f"{written!r} has no letters or digits: it matches nothing"]
    how = {
        "en": "English Snowball stem (plural and inflected forms match)",
        "ru": "Russian Snowball stem (inflected forms match)",
        "be": f"Belarusian prefix (no stemmer): the word less its vowel ending, then up to {MAX_ENDING} letters",
        "exact": "this exact form only (no inflection, no squeezing of repeated letters)",
    }
    lines = [f"blocked {'exact form' if term.exact else 'word'}: {written}"]
    words = WORD.findall(normalize(written.lstrip("= ").strip("\"'“”«»")))
    for word, keys in zip(words, term.keys, strict=True):
        lines.append(f"  {word}: normalized {normalize(word).casefold()!r}")
        lines += [f"    matched by {how[kind]}: key {form!r}" for kind, form in keys]
    one = matcher((written,))
    for sample in samples:
        hit = one.find(sample)
        lines.append(f"  {'MATCHES' if hit else 'no match'}: {sample}")
    return lines


def _look_alike(ch: str) -> str:
    """A letter of the other script that looks like ``ch`` (Latin for Cyrillic and the reverse), else ``ch``."""
    if "\u0400" <= ch <= "\u052f":
        shape = latin_shape(ch)
        return shape if len(shape) == 1 and shape.isascii() else ch
    return CYRILLIC_OF_LATIN.get(ch, ch) if ch.isalpha() else ch


def variants(written: str) -> list[str]:
    """Disguised spellings of a blocked word that a troll might try, for ``explain``."""
    term = Term.parse(written)
    if term is None:
        return []
    base = " ".join(WORD.findall(normalize(written.lstrip("= ").strip("\"'“”«»"))))
    first = base.split(" ")[0]
    leet = str.maketrans("aeiost", "4310$7")
    out = [
        base.upper(),
        "".join(_look_alike(c) for c in base),
        "\u200b".join(base),
        ".".join(first) + base[len(first) :],
        " ".join(first) + base[len(first) :],
        base.translate(leet),
        regex.sub(r"([aeiouаеиоуыэюяі])", r"\1\1\1", base, count=1),
    ]
    stem = term.keys[0][0][1]  # the first word's stem or prefix: inflections grow from it
    rest = base[len(first) :]
    languages = _languages(first)  # an exact form shows the inflections it does not match
    if "en" in languages:
        out += [base + "s", base + "'s"]
    elif "ru" in languages:
        out += [stem + "ами" + rest, stem + "ом" + rest]
    elif "be" in languages:
        out += [stem + "амі" + rest, stem + "аў" + rest]
    return out
