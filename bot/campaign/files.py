"""The shapes of the YAML files staff edit, as pydantic models (unknown keys are errors).

These models check structure and types only; meaning (known accounts, media,
time zones, lengths) is checked by the loader, which can say more helpful things.
Free-form values (dates and times of slots, durations) are ``Any`` here and
parsed by the loader so that a mistake gets one clear message, not a union's.
"""

from __future__ import annotations

import datetime as _dt
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountEntry(_File):
    platform: str
    base_url: str | None = None
    handle: str | None = None
    credentials: dict[str, str] = Field(default_factory=dict)
    max_characters: PositiveInt | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    language: str | None = None  # ISO 639-1; default: the campaign's language


class AccountsFile(_File):
    campaign: str | None = None  # the campaign's name in logs and the ledger; default: the folder's name
    language: str | None = None  # the campaign's default language (ISO 639-1); default: en
    accounts: dict[str, Any]  # each value is an AccountEntry, validated on its own


class MediaEntry(_File):
    file: str
    alt: str | None = None


class SupporterEntry(_File):
    name: str
    role: str | None = None
    organisation: str | None = None
    country: str | None = None


class ConsentEntry(_File):
    given: bool
    date: _dt.date | None = None
    recorded_by: str | None = None
    note: str | None = None


class PostFile(_File):
    # A text, or one per language ({en: ..., ru: ...}); each variant the same. Checked by the loader.
    text: Any  # a reshare (reshare_of) may leave it empty: text: ""
    variants: dict[str, Any] = Field(default_factory=dict)
    media: list[MediaEntry] = Field(default_factory=list)
    link: str | None = None
    reshare_of: str | None = None  # a partner's post this one reshares (LinkedIn: its URL or URN)
    video: str | None = None
    captions: str | None = None
    captions_lang: str | None = None
    alt: str | None = None  # the video's alt text
    cover: str | None = None  # the video's cover image (Instagram Reels), relative to posts/
    supporter: SupporterEntry | None = None
    consent: ConsentEntry | None = None
    language: str | None = None
    note: str | None = None  # for staff; never published


class WindowEntry(_File):
    start: date | None = None
    end: date | None = None


class SlotEntry(_File):
    at: Any = None
    every: str | None = None
    times: list[str] | None = None
    days: list[str] | None = None
    cron: str | None = None
    post: str | None = None
    queue: str | None = None
    accounts: list[str]
    note: str | None = None


class ScheduleFile(_File):
    timezone: str
    window: WindowEntry | None = None
    grace: Any = None
    slots: list[Any] = Field(default_factory=list)  # each a SlotEntry, validated on its own
    note: str | None = None


class TrackEntry(_File):
    hashtags: list[str]
    accounts: list[str]
    interval: Any = None
    daily_reads: int | None = Field(default=None, ge=0)  # X bills reads per post returned
    max_interval: Any = None  # the longest gap back-off may stretch a quiet poll to


class PolicyEntry(_File):
    always_from: list[str] = Field(default_factory=list)
    never_from: list[str] = Field(default_factory=list)
    blocked_words: list[str] = Field(default_factory=list)
    skip: list[Literal["replies", "reshares", "own", "sensitive"]] = Field(default_factory=list)
    max_per_hour: int = Field(default=4, ge=0)
    max_per_day: int = Field(default=20, ge=0)
    mode: Literal["auto", "review", "dry-run"] = "review"
    author_cooldown: Any = None
    across_accounts: bool = False
    # Trust signals: a mapping platform -> value, or one value for every platform; parsed by the loader.
    min_account_age: Any = None
    min_followers: Any = None
    new_accounts: Literal["review", "skip", "allow"] = "review"
    unknown_signals: Literal["new", "ignore"] = "new"
    first_time_authors: Literal["allow", "review"] = "allow"
    max_per_author_per_day: int | None = Field(default=None, ge=1)


class ReshareFile(_File):
    track: list[TrackEntry] = Field(default_factory=list)
    policy: PolicyEntry = Field(default_factory=PolicyEntry)
