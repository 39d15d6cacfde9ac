"""Post files that are plainly valid, taken without pydantic.

Validating a post through ``PostFile`` costs more than reading it. Nearly every
post is a few strings, a list of ``{file, alt}`` and perhaps a supporter and a
consent, each already of the type ``PostFile`` wants. ``plain_post`` takes
exactly those (None for anything else, which ``PostFile`` then validates and
words any problem for staff), so what is accepted here is what ``PostFile``
accepts, with the same values. A test checks this on every post of the corpus.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

_TEXT = frozenset(("link", "video", "captions", "captions_lang", "alt", "language", "note"))
_MEDIA = frozenset(("file", "alt"))
_SUPPORTER = frozenset(("name", "role", "organisation", "country"))
_CONSENT = frozenset(("given", "date", "recorded_by", "note"))


class Entry:
    """Attribute access to a checked mapping, None for a key not written (like the pydantic defaults)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data.get(name)


class PlainPost:
    """A checked post file with ``PostFile``'s attributes and defaults."""

    __slots__ = (
        "text",
        "variants",
        "media",
        "link",
        "video",
        "captions",
        "captions_lang",
        "alt",
        "supporter",
        "consent",
        "language",
        "note",
    )

    def __init__(self, data: dict[str, Any]) -> None:
        get = data.get
        self.text = data["text"]
        self.variants = get("variants")
        self.media = [Entry(m) for m in get("media") or ()]
        self.link, self.video, self.captions, self.captions_lang = (
            get("link"),
            get("video"),
            get("captions"),
            get("captions_lang"),
        )
        self.alt, self.language, self.note = get("alt"), get("language"), get("note")
        supporter, consent = get("supporter"), get("consent")
        self.supporter = Entry(supporter) if supporter is not None else None
        self.consent = Entry(consent) if consent is not None else None


def plain_post(data: Any) -> PlainPost | None:
    """``data`` as a post when every key and value is plainly what ``PostFile`` takes, else None."""
    if type(data) is not dict or type(data.get("text")) is not str:
        return None
    for key, value in data.items():
        if key == "text" or (key in _TEXT and _text_or_none(value)):
            continue
        if (
            key == "variants"
            and type(value) is dict
            and all(type(k) is str and type(v) is str for k, v in value.items())
        ):
            continue
        if key == "media" and type(value) is list and all(_media(m) for m in value):
            continue
        if key == "supporter" and _entry(value, _SUPPORTER) and type(value.get("name")) is str:
            continue
        if key == "consent" and _consent(value):
            continue
        return None
    return PlainPost(data)


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _entry(value: Any, keys: frozenset[str]) -> bool:
    return (
        type(value) is dict
        and value.keys() <= keys
        and all(_text_or_none(v) for k, v in value.items() if k not in ("given", "date"))
    )


def _media(value: Any) -> bool:
    return _entry(value, _MEDIA) and type(value.get("file")) is str


def _consent(value: Any) -> bool:
    # type() rather than isinstance(): a datetime is a date, but PostFile refuses one with a time.
    return (
        _entry(value, _CONSENT)
        and type(value.get("given")) is bool
        and (value.get("date") is None or type(value["date"]) is _dt.date)
    )
