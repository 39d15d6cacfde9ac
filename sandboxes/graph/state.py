"""What the Graph sandbox holds: accounts with tokens, containers walking Instagram's and Threads' state
machine on an injectable clock, posts, Facebook photos and videos, quotas and call usage.

Shapes and numbers follow Meta's reference pages, cited where they are used:
- Instagram containers: https://developers.facebook.com/docs/instagram-platform/content-publishing/
  (``status_code`` IN_PROGRESS, FINISHED, ERROR, EXPIRED after 24 hours, PUBLISHED; media fetched from a public URL)
- Instagram errors: https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/error-codes
- Threads: https://developers.facebook.com/docs/threads/posts (containers, ``threads_publish``, 250 posts a day)
- Threads spoilers: https://developers.facebook.com/documentation/threads/create-posts/spoilers (``text_entities``
  SPOILER ranges, at most 10, and ``is_spoiler_media`` for IMAGE, VIDEO and CAROUSEL)
- Graph errors and usage headers: https://developers.facebook.com/docs/graph-api/guides/error-handling and
  https://developers.facebook.com/docs/graph-api/overview/rate-limiting
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandboxes.base import FaultQueue

DAY = 86400.0
CONTAINER_LIFETIME = DAY  # "containers expire after 24 hours" (Instagram content publishing guide)
DOWNLOAD_TIMEOUT = 5.0  # a URL slower than this fails as Instagram's 2207003 "takes too long to download"
PRODUCTS = ("facebook", "instagram", "threads")
# Daily publishing quotas: Instagram's content_publishing_limit (100 in the current guide; read at run time by
# the bot, so a lower value set here is what it must obey), Threads' threads_publishing_limit (250 posts a day).
QUOTAS = {"instagram": 100, "threads": 250, "facebook": 0}
REELS_PER_DAY = 30  # Facebook Reels publishing API: 30 a day per Page
HOURLY_CALLS = 4800  # calls an account may make in an hour before usage reaches 100%


class GraphError(Exception):
    """An answer in Graph's error envelope."""

    def __init__(
        self,
        message: str,
        code: int,
        subcode: int | None = None,
        *,
        status: int = 400,
        kind: str = "OAuthException",
        transient: bool = False,
        user_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.subcode, self.status = message, code, subcode, status
        self.kind, self.transient, self.user_msg = kind, transient, user_msg

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "is_transient": self.transient,
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        return {"error": error}


def download_failed(detail: str) -> GraphError:
    # The documented pair for a media URL Instagram cannot fetch (PLATFORMS.md, the error codes page).
    return GraphError(
        "The media could not be fetched from the URI provided.",
        9004,
        2207052,
        user_msg=f"Media download has failed. The media URI doesn't meet our requirements. ({detail})",
    )


@dataclass
class Account:
    """A Facebook Page, an Instagram professional account or a Threads user, with its one access token."""

    id: str
    product: str
    username: str
    name: str
    token: str
    token_expires: float
    scopes: set[str]
    calls: list[float] = field(default_factory=list)
    forced_usage: int | None = None
    quota: int | None = None
    followers: int = 0  # Threads: what profile_lookup reports as follower_count
    discoverable: bool = True  # Threads: whether profile_lookup may return this profile


@dataclass
class Container:
    id: str
    owner: str
    media_type: str  # IMAGE, VIDEO, REELS, CAROUSEL, TEXT
    text: str
    media: list[dict[str, Any]]
    created: float
    carousel_item: bool = False
    status: str = "IN_PROGRESS"  # stored states; FINISHED and EXPIRED are read from the clock
    error: str = ""
    published_id: str | None = None
    is_spoiler_media: bool = False  # Threads: the media behind a spoiler
    text_entities: list[dict[str, Any]] = field(default_factory=list)  # Threads: SPOILER ranges of the text


@dataclass
class Post:
    id: str
    owner: str
    text: str
    created: float
    permalink: str
    media: list[dict[str, Any]] = field(default_factory=list)
    reshare_of: str | None = None
    link: str | None = None
    kind: str = "post"  # post, reel, video
    is_spoiler_media: bool = False  # Threads: the media behind a spoiler
    text_entities: list[dict[str, Any]] = field(default_factory=list)  # Threads: SPOILER ranges of the text
    reply_to: str | None = None  # Threads: the post this one replies to


@dataclass
class Upload:
    """A Facebook video being uploaded (``/videos`` resumable or ``/video_reels``)."""

    id: str
    owner: str
    size: int
    reel: bool
    data: bytearray = field(default_factory=bytearray)
    finished: bool = False
    description: str = ""
    captions: list[str] = field(default_factory=list)
    post_id: str | None = None


class GraphState:
    """Everything the server holds, behind one lock; ``wall`` is the clock containers age by."""

    def __init__(self, wall: Callable[[], float] = time.time, processing_seconds: float = 0.0) -> None:
        self.lock = threading.RLock()
        self.wall = wall
        self.processing_seconds = processing_seconds  # how long a container stays IN_PROGRESS
        self.fail_processing = 0  # the next n containers end in ERROR
        self.draft_reels = 0  # the next n Facebook Reels stay drafts although PUBLISHED was asked
        self.accounts: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.containers: dict[str, Container] = {}
        self.posts: dict[str, Post] = {}
        self.photos: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, Upload] = {}
        self.faults = FaultQueue()
        self.crashes: list[list[Any]] = []  # [path fragment, count]: drop the connection after the work is done
        self.log: list[dict[str, Any]] = []
        self.fetched: list[str] = []  # every media URL the server downloaded (or tried to)
        self._ids = itertools.count(17841400000000001)

    def new_id(self) -> str:
        return str(next(self._ids))

    # ---- accounts and tokens ----

    def create_account(self, product: str, username: str, name: str, scopes: set[str] | None = None) -> Account:
        with self.lock:
            account = Account(
                id=self.new_id(),
                product=product,
                username=username,
                name=name,
                token=("EAAG" if product == "facebook" else "IGAA" if product == "instagram" else "THAA")
                + secrets.token_urlsafe(24),
                token_expires=self.wall() + 60 * DAY,  # long-lived tokens live 60 days
                scopes=set(scopes or ()),
            )
            self.accounts[account.id] = account
            self.by_token[account.token] = account
            return account

    def authenticate(self, token: str | None) -> Account:
        with self.lock:
            account = self.by_token.get(token or "")
            if account is None:
                raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
            if account.token_expires <= self.wall():
                # 190 with subcode 463: "session has expired" (access token error codes, Graph error handling guide)
                raise GraphError(
                    "Error validating access token: Session has expired.", 190, 463, user_msg="Token expired"
                )
            return account

    def refresh(self, account: Account) -> Account:
        """A new long-lived token for 60 more days (``ig_refresh_token`` / ``th_refresh_token``); the old one keeps
        working until it expires (another worker may still hold it)."""
        with self.lock:
            account.token = account.token[:4] + secrets.token_urlsafe(24)
            account.token_expires = self.wall() + 60 * DAY
            self.by_token[account.token] = account
            return account

    # ---- usage (X-App-Usage, X-Business-Use-Case-Usage) ----

    def count_call(self, account: Account) -> int:
        """Counts one call and returns the account's usage in percent of its hourly allowance."""
        with self.lock:
            now = self.wall()
            account.calls = [t for t in account.calls if t > now - 3600] + [now]
            if account.forced_usage is not None:
                return account.forced_usage
            return len(account.calls) * 100 // HOURLY_CALLS

    # ---- containers ----

    def container_status(self, container: Container) -> str:
        if container.status in ("ERROR", "PUBLISHED"):
            return container.status
        now = self.wall()
        if now >= container.created + CONTAINER_LIFETIME:
            return "EXPIRED"
        if now < container.created + self.processing_seconds:
            return "IN_PROGRESS"
        return "FINISHED"

    def published_today(self, owner: str, kind: str | None = None) -> int:
        since = self.wall() - DAY
        return sum(1 for p in self.posts.values() if p.owner == owner and p.created > since and kind in (None, p.kind))

    def quota_total(self, account: Account) -> int:
        return account.quota if account.quota is not None else QUOTAS[account.product]


def fetch(url: str, *, expect: tuple[str, ...], state: GraphState) -> bytes:
    """GET ``url`` as Instagram and Threads do: a public URL, no cookies, a bounded wait; the bytes must be one of
    the ``expect`` kinds ("jpeg", "png", "mp4"), recognised by their signature, not by the URL's name."""
    with state.lock:
        state.fetched.append(url)
    if not url.startswith(("http://", "https://")):
        raise download_failed("not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as answer:
            data: bytes = answer.read()
    except urllib.error.HTTPError as exc:
        raise download_failed(f"HTTP {exc.code}") from None
    except TimeoutError:
        raise GraphError("The media could not be fetched in time.", -2, 2207003) from None
    except (urllib.error.URLError, OSError) as exc:
        raise download_failed(type(exc).__name__) from None
    kind = (
        "jpeg"
        if data[:3] == b"\xff\xd8\xff"
        else "png"
        if data[:8] == b"\x89PNG\r\n\x1a\n"
        else "mp4"
        if data[4:8] == b"ftyp"
        else "unknown"
    )
    if kind not in expect:
        raise GraphError(
            f"The media format is not supported: got {kind}, expected {' or '.join(expect)}.",
            9004,
            2207052,
            user_msg="The media format is not supported.",
        )
    return data
