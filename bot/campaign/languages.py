"""Language codes staff write (``language: be``, ``text: {en: ..., ru: ...}``): ISO 639-1, two lowercase letters.

Mastodon's ``language`` and Bluesky's ``langs`` take these codes as they are.
"""

from __future__ import annotations

# ISO 639-1 (the 183 two-letter codes of the ISO 639-2 registration authority's list).
CODES = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
    ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii
    ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi
    mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw
    sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk
    ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()
)

# What staff write where a code is meant: country codes and language names, with the code meant.
_MEANT = {
    "by": "be",
    "ua": "uk",
    "gr": "el",
    "cz": "cs",
    "dk": "da",
    "jp": "ja",
    "cn": "zh",
    "rs": "sr",
    "english": "en",
    "russian": "ru",
    "belarusian": "be",
    "ukrainian": "uk",
    "polish": "pl",
    "german": "de",
    "french": "fr",
    "spanish": "es",
}


def language_problem(code: object) -> str | None:
    """None for an ISO 639-1 code; otherwise what is wrong with ``code``, worded for staff."""
    if isinstance(code, str) and code in CODES:
        return None
    written = str(code)
    lower = written.strip().lower()
    meant = lower if lower in CODES else _MEANT.get(lower)
    if meant is None and lower[:2] in CODES and lower[2:3] in ("-", "_"):  # be-BY: a region is not needed
        meant = lower[:2]
    hint = f"; did you mean '{meant}'?" if meant else ""
    return f"unknown language '{written}' (expected an ISO 639-1 code like en, ru or be{hint})"
