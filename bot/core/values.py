"""What travels between the campaign, the publisher, the platforms and the tracker: plain values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

Progress = Callable[[int, int], None]
"""Upload progress callback: (bytes sent, total bytes)."""

DISPLAY_NAME_UNKNOWN = "display_name_unknown"
"""``Mention.ref`` key of a mention whose author's display name the platform did not give (its value says why):
``author_name`` then holds no more than the handle, so the policy sends the mention to review, never allows it."""


class AccountLike(Protocol):
    """What an adapter needs to know of an account (``bot.campaign`` models provide it)."""

    # Read-only members: the campaign's accounts are frozen, and adapters never change them.
    @property
    def id(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def handle(self) -> str | None: ...
    @property
    def credentials(self) -> Mapping[str, str]: ...  # role -> NAME of the env variable (never the value)
    @property
    def options(self) -> Mapping[str, Any]: ...


class MediaHost(Protocol):
    """Public, expiring URLs for media files, for platforms that fetch media themselves (Instagram, Threads,
    Facebook's large videos) instead of taking an upload. ``bot.mediahost`` implements it over an
    S3-compatible bucket; tests may serve files from any loopback HTTP server behind the same calls.
    """

    def url_for(self, path: Path, *, publication: str) -> str:
        """A URL the platform can GET ``path`` from now (uploading it first if the host lacks it); ``publication``
        (an ``Outgoing.key``) holds the file until ``release``. Each call may return a fresh URL."""
        ...

    def release(self, publication: str) -> None:
        """The publication is confirmed (or given up): the host may delete files no other publication holds."""
        ...


@dataclass(frozen=True)
class Limits:
    """What a platform accepts; ``bot check`` compares campaign files against it offline."""

    max_text: int
    max_images: int
    image_max_bytes: int
    image_formats: frozenset[str]  # Pillow format names: PNG, JPEG, GIF, WEBP
    video_max_bytes: int
    video_max_seconds: float
    video_formats: frozenset[str]  # PyAV container names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    alt_max: int
    captions: bool  # whether the platform takes a captions (VTT) file with a video
    images_reencoded: bool = False  # adapter shrinks images to fit, so image_max_bytes is a source cap
    max_caption: int | None = None  # text limit when the post carries media, where lower (Telegram: 1,024)
    alt_text: bool = True  # whether the platform shows alt text at all (Telegram does not: it is not sent)
    # Posts the platform lets one account publish in 24 hours, where it publishes a cap (None: no published cap);
    # ``bot plan`` and ``bot check`` warn when the schedules would send an account more.
    posts_per_day: int | None = None
    # Video posts (Reels) it lets one account publish in 24 hours, besides ``posts_per_day`` (None: no such cap).
    videos_per_day: int | None = None


@dataclass(frozen=True)
class ImageAttachment:
    path: Path
    alt: str


@dataclass(frozen=True)
class VideoAttachment:
    path: Path
    alt: str
    captions: Path | None = None
    captions_lang: str = "en"
    # A cover image for the video (Instagram Reels' ``cover_url``); platforms without a cover parameter ignore it.
    cover: Path | None = None


class Notes(Protocol):
    """A publication's durable scratchpad: what an adapter must remember across a crash to reconcile
    without an idempotency key (Instagram's container id before ``media_publish``). ``put`` returns once
    the value is stored (in the ledger, for the worker), so write it before the call it protects."""

    def get(self, key: str) -> str | None: ...
    def put(self, key: str, value: str) -> None: ...


class MemoryNotes:
    """Notes that live as long as the process: for ``bot publish`` without a ledger row, and tests."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._values = dict(initial or {})

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def put(self, key: str, value: str) -> None:
        self._values[key] = value


@dataclass(frozen=True)
class Outgoing:
    """One post as it goes to one account: text already chosen for this platform."""

    key: str  # stable publication key: idempotency key, record key seed, reconcile marker
    text: str
    images: tuple[ImageAttachment, ...] = ()
    video: VideoAttachment | None = None
    language: str | None = None
    # A partner's post this one reshares (LinkedIn: a share or ugcPost URN or URL); the text is our commentary.
    reshare_of: str | None = None
    # The publisher passes ledger-backed notes; the same object reaches ``find_published`` after a crash.
    notes: Notes = field(default_factory=MemoryNotes, compare=False, repr=False)


@dataclass(frozen=True)
class Receipt:
    remote_id: str
    url: str


@dataclass(frozen=True)
class Identity:
    id: str
    handle: str


@dataclass(frozen=True)
class Mention:
    """A post found under a tracked hashtag; written by anyone, so untrusted."""

    remote_id: str
    url: str
    author_id: str
    author_handle: str
    author_name: str
    text: str
    created_at: datetime | None
    is_reply: bool = False
    is_reshare: bool = False
    sensitive: bool = False  # marked sensitive or behind a content warning
    spoiler_text: str = ""
    lang: str | None = None
    ref: Mapping[str, str] = field(default_factory=dict)  # platform extras (Bluesky: uri, cid)
    # Text beyond the body that readers see with the post, so the blocked-word filter reads it too.
    alt_texts: tuple[str, ...] = ()  # image and video descriptions
    card_title: str = ""  # the link preview's title
    quoted_text: str = ""  # the text of a post this one quotes
    # Trust signals, None where the platform did not say (the policy decides what unknown means).
    author_created_at: datetime | None = None  # when the author's account was made
    author_followers: int | None = None

    def __post_init__(self) -> None:
        # A mention read back from the ledger's JSON carries a list here.
        object.__setattr__(self, "alt_texts", tuple(self.alt_texts))


@dataclass(frozen=True)
class MentionPage:
    mentions: list[Mention]  # oldest first
    cursor: str | None  # pass back to get only newer posts next time
