"""The campaign as the bot uses it: accounts, posts, queues, schedules, reshare policy.

Built by ``bot.campaign.loader`` from the files; never holds a secret value
(accounts name their environment variables only).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, dataclass_transform
from zoneinfo import ZoneInfo

from bot.core.values import ImageAttachment, Outgoing, VideoAttachment

# Every part of the campaign is a plain frozen dataclass with slots, not a pydantic model: the
# files are validated by pydantic (bot.campaign.files) and the loader builds these from already
# checked values, so nothing is checked again here; building each class as a pydantic model
# costs a worker about 1 MB for its whole life. Dataclasses do not convert what they are given:
# pass the types written here (tuples where tuples are written).
T = TypeVar("T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def _frozen(cls: type[T]) -> type[T]:
    # A function, not ``dataclass(...)`` kept in a variable: type checkers see only the former as a dataclass.
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


@_frozen
class Account:
    id: str
    platform: str
    base_url: str | None = None
    handle: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # role -> NAME of the env variable
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 1  # of the account in its file, for messages
    file: str = "config/accounts.yaml"  # or config/accounts/<part>.yaml, for messages
    # ISO 639-1 code of the texts it publishes; the loader always sets it (default: the campaign's language).
    # None (an account built by hand) takes each post in the post's own language.
    language: str | None = None


# A campaign holds thousands of posts for the worker's whole life: a pydantic instance would
# cost about four times the memory and time of a slots object.
# Shared by the posts without variants or media (most of them): nothing writes to a frozen post's parts.
_NONE: dict[str, str] = {}
_NO_MEDIA: list[Any] = []


@_frozen
class Media:
    file: str  # as written, relative to posts/
    path: Path
    alt: str


@_frozen
class Video:
    file: str
    path: Path
    captions_path: Path | None = None
    alt: str
    captions_lang: str = "en"
    cover: Path | None = None  # a cover image (posts' ``cover:``); Instagram Reels use it, other platforms ignore it
    cover_file: str | None = None  # ``cover:`` as written, for messages


@_frozen
class Translation:
    """A post's text in one more language, and its per-platform variants in that language."""

    text: str
    variants: dict[str, str] = field(default_factory=dict)


_NO_TRANSLATIONS: dict[str, Translation] = {}


@_frozen
class Supporter:
    name: str
    role: str | None = None
    organisation: str | None = None
    country: str | None = None


@_frozen
class Consent:
    given: bool
    date: _dt.date | None = None
    recorded_by: str | None = None


class _Rare(NamedTuple):
    """The parts of a post most posts leave out, kept together so such a post holds one None for all of them."""

    file_name: str | None
    variants: dict[str, str]
    video: Video | None
    supporter: Supporter | None
    consent: Consent | None
    reshare_of: str | None
    translations: dict[str, Translation]


_NO_RARE = _Rare(None, _NONE, None, None, None, None, _NO_TRANSLATIONS)


@dataclass(frozen=True, slots=True, init=False)
class Post:
    id: str
    queue: str | None
    # The file as its folder (one string shared by the folder's posts) and its name (in ``_rare``), None for
    # "<id>.yaml"; ``path`` builds the Path when asked. A Path per post would be about 4 MB of a
    # worker's memory for 10,000 posts, and a whole path string per post about 0.8 MB.
    folder: str
    text: str
    media: list[Media]
    link: str | None
    # The language of ``text`` and ``variants`` (the loader always sets it; None: a post built without one,
    # whose text serves every language); the post's texts in other languages are ``translations``.
    language: str | None
    # The other parts (properties below), None where the post has none of them: 48 bytes less per post than
    # a slot each, about 0.4 MB of a worker holding 10,000 posts (bench/footprint.py).
    _rare: _Rare | None

    def __init__(
        self,
        *,
        id: str,
        text: str,
        path: Path | str | None = None,
        where: str | None = None,
        folder: str | None = None,
        file_name: str | None = None,
        queue: str | None = None,
        variants: dict[str, str] | None = None,
        media: list[Media] | None = None,
        link: str | None = None,
        video: Video | None = None,
        supporter: Supporter | None = None,
        consent: Consent | None = None,
        reshare_of: str | None = None,
        language: str | None = None,
        translations: dict[str, Translation] | None = None,
        _rare: _Rare | None = None,
    ) -> None:
        """``_rare`` is for ``dataclasses.replace``, which passes it: the parts named here replace its parts
        (given a value; None keeps what ``_rare`` holds)."""
        put = object.__setattr__  # frozen: the only way in
        put(self, "id", id)
        put(self, "queue", queue)
        if folder is None:
            folder, _, name = str(path if path is not None else where).rpartition(os.sep)
            file_name = None if name == f"{id}.yaml" else name
        put(self, "folder", folder)
        put(self, "text", text)
        put(self, "media", _NO_MEDIA if media is None else media)
        put(self, "link", link)
        put(self, "language", language)
        was = _rare or _NO_RARE
        rare = _Rare(
            was.file_name if file_name is None else file_name,
            was.variants if variants is None else variants,
            was.video if video is None else video,
            was.supporter if supporter is None else supporter,
            was.consent if consent is None else consent,
            was.reshare_of if reshare_of is None else reshare_of,
            was.translations if translations is None else translations,
        )
        put(self, "_rare", None if rare == _NO_RARE else rare)

    @property
    def file_name(self) -> str | None:
        """The file's name where it is not "<id>.yaml"."""
        return self._rare.file_name if self._rare else None

    @property
    def variants(self) -> dict[str, str]:
        """Texts by platform, in the post's own language."""
        return self._rare.variants if self._rare else _NONE

    @property
    def video(self) -> Video | None:
        return self._rare.video if self._rare else None

    @property
    def supporter(self) -> Supporter | None:
        return self._rare.supporter if self._rare else None

    @property
    def consent(self) -> Consent | None:
        return self._rare.consent if self._rare else None

    @property
    def reshare_of(self) -> str | None:
        """A partner's post this one reshares (LinkedIn URL or URN); the text is our commentary."""
        return self._rare.reshare_of if self._rare else None

    @property
    def translations(self) -> dict[str, Translation]:
        """The post's texts in other languages, by ISO 639-1 code."""
        return self._rare.translations if self._rare else _NO_TRANSLATIONS

    @property
    def where(self) -> str:
        """The post's YAML file, as a string."""
        return f"{self.folder}{os.sep}{self.file_name or self.id + '.yaml'}"

    @property
    def path(self) -> Path:
        """The post's YAML file."""
        return Path(self.where)

    @property
    def languages(self) -> list[str]:
        """The languages the post has a text in, its own first (none for a post built without a language)."""
        return [*([self.language] if self.language else []), *self.translations]

    def has_language(self, language: str | None) -> bool:
        """Whether the post has a text for an account publishing in ``language`` (None: in the post's own)."""
        return language is None or self.language is None or language == self.language or language in self.translations

    def text_for(self, platform: str, language: str | None = None) -> str:
        """The text published on ``platform`` in ``language`` (None: the post's own): the platform's variant in
        that language, else the text in that language, with the link appended. LookupError when the post has
        no text in ``language`` (``bot check`` reports it, so a loaded campaign never asks)."""
        if language in self.translations:
            text, variants = self.translations[language].text, self.translations[language].variants
        elif language is None or language == self.language or self.language is None:
            text, variants = self.text, self.variants
        else:
            raise LookupError(f"post '{self.id}' has no {language} text (it has {', '.join(self.languages)})")
        text = (variants.get(platform) or text).strip()
        if self.link and self.link not in text:
            text = f"{text}\n{self.link}"
        return text

    def outgoing(self, platform: str, key: str, language: str | None = None) -> Outgoing:
        """What an adapter publishes for this post on ``platform``, in ``language`` (an account's; None: the post's)."""
        video = None
        if self.video is not None:
            v = self.video
            video = VideoAttachment(v.path, v.alt, v.captions_path, v.captions_lang, cover=v.cover)
        return Outgoing(
            key=key,
            text=self.text_for(platform, language),
            images=tuple(ImageAttachment(m.path, m.alt) for m in self.media),
            video=video,
            language=language or self.language,
            reshare_of=self.reshare_of,
        )


@_frozen
class Slot:
    index: int
    line: int
    kind: Literal["at", "every", "cron"]
    at: datetime | None = None  # naive, in the schedule's time zone
    times: tuple[time, ...] = ()
    days: tuple[str, ...] = ()  # crontab day names (mon..sun); empty means every day
    cron: str | None = None
    post: str | None = None
    queue: str | None = None
    accounts: tuple[str, ...]

    @property
    def target(self) -> str:
        return f"post:{self.post}" if self.post else f"queue:{self.queue}"


@_frozen
class Schedule:
    name: str
    path: Path
    timezone: ZoneInfo
    window_start: date | None = None
    window_end: date | None = None  # inclusive: the whole day
    grace: timedelta = timedelta(hours=1)
    slots: list[Slot] = field(default_factory=list)


@_frozen
class Track:
    hashtags: list[str]  # without '#'
    accounts: list[str]
    interval: float | None = None  # seconds between polls; None: the platform's default
    # Cost-aware search (X bills reads per post returned): posts a day the reading account may be
    # billed for (None: no budget), and the longest gap back-off stretches a quiet poll to (None: 30 min).
    daily_reads: int | None = None
    max_interval: float | None = None


@_frozen
class Policy:
    always_from: list[str] = field(default_factory=list)
    never_from: list[str] = field(default_factory=list)
    blocked_words: list[str] = field(default_factory=list)
    skip: set[str] = field(default_factory=set)
    max_per_hour: int = 4
    max_per_day: int = 20
    mode: Literal["auto", "review", "dry-run"] = "review"
    author_cooldown: timedelta = timedelta(hours=6)
    across_accounts: bool = False
    # Trust signals (issue 15.4): per platform name; a platform not named has no minimum.
    min_account_age: dict[str, timedelta] = field(default_factory=dict)
    min_followers: dict[str, int] = field(default_factory=dict)
    new_accounts: Literal["review", "skip", "allow"] = "review"  # a post whose author is below a minimum
    unknown_signals: Literal["new", "ignore"] = "new"  # the platform did not say the age or followers
    first_time_authors: Literal["allow", "review"] = "allow"  # authors this campaign never reshared
    max_per_author_per_day: int | None = None  # per account; None: only the cooldown limits an author


@_frozen
class ReshareConfig:
    track: list[Track] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)


@_frozen
class MediaHostSettings:
    """config/media_host.yaml: an S3-compatible bucket that serves media to platforms fetching it by URL."""

    bucket: str
    endpoint_url: str | None = None  # None: AWS S3 itself
    region: str | None = None
    prefix: str = ""  # object keys start with it (one bucket shared by several campaigns)
    path_style: bool = False  # https://host/bucket/key instead of https://bucket.host/key (MinIO, some B2 setups)
    url_lifetime: float = 3600.0  # seconds a presigned URL stays valid
    credentials: dict[str, str] = field(default_factory=dict)  # role -> NAME of the env variable
    line: int = 1  # of the media_host block, for messages


@_frozen
class Campaign:
    root: Path
    name: str
    accounts: dict[str, Account]
    posts: dict[str, Post]
    queues: dict[str, list[str]]  # queue name -> post ids in file-name order
    schedules: list[Schedule]
    reshare: ReshareConfig | None = None
    media_host: MediaHostSettings | None = None
    language: str = "en"  # the default language of accounts and of texts written without one (ISO 639-1)
