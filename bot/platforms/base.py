"""The one interface every platform adapter implements.

``Platform`` is a template method: the public calls (``publish``, ``stage``, ``find_published``,
``reshare``, ``fetch_mentions``, ``whoami``) own validation, the rate-limit gate,
error mapping and logging; a platform module fills in the ``_``-prefixed hooks
with its own client calls and says how its client's exceptions map to ours.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from bot.core.errors import (
    BotError,
    ContentRejected,
    LeaseLost,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
)
from bot.core.values import (
    AccountLike,
    Identity,
    ImageAttachment,
    Limits,
    MediaHost,
    Mention,
    MentionPage,
    Outgoing,
    Progress,
    Receipt,
    VideoAttachment,
)

T = TypeVar("T")


@dataclass(frozen=True)
class PostChange:
    """A stream's news about a post already published: ``edited`` (with the new version) or ``deleted``."""

    kind: Literal["edited", "deleted"]
    remote_id: str
    mention: Mention | None = None  # the edited post as it reads now


EARLIER_VERSIONS = "earlier_versions"
"""``Mention.ref`` key of a platform whose edit makes a new post with a new id (X): the ids this version
replaces, comma-joined. The tracker treats such a mention as an edit of a post it already decided on."""


def surely_fits(text: str, limit: int) -> bool:
    """Whether ``text`` fits ``limit`` however a platform counts it, without counting exactly.

    X's exact count (twitter-text) costs milliseconds a text and about 10 MB of memory once imported,
    and most campaign texts are far below their limit. Upper bound: a character counts at most 2
    (exactly 1 when ASCII), a URL at most 23 more than its characters, and every URL holds a dot or a scheme.
    """
    per_char = 1 if text.isascii() else 2
    return per_char * len(text) + 23 * (text.count(".") + text.count("://")) <= limit


class RateStore(Protocol):
    """Rate-limit state shared by every worker of one ledger (implemented in ``bot.ledger.budgets``).

    Keys are (platform, bucket); a bucket is an account's (``acct:<id>:<bucket>``) or an app's
    (``app:<id>:<bucket>``). Reads may be cached a few seconds and uses counted in batches: the gate
    asks it before every call, so it must cost no round trip in the common case.
    """

    def blocked_until(self, platform: str, bucket: str) -> float:
        """Epoch seconds until which some worker was told to stop using ``bucket``; 0 when free."""
        ...

    def block(self, platform: str, bucket: str, until: float) -> None:
        """Every worker stops using ``bucket`` until ``until`` (epoch seconds)."""
        ...

    def spend(self, platform: str, bucket: str, limit: int, window: float) -> None:
        """One use of an app-wide ``bucket`` allowed ``limit`` uses per ``window`` seconds (all workers)."""
        ...

    def workers(self) -> int:
        """How many live workers share the limits now (at least 1); cached like ``blocked_until``.

        For limits a worker paces within itself (Telegram's per-second flood limits): each takes this share.
        """
        ...


class RateGate:
    """Remembers, per bucket, until when a platform told us to stop sending.

    Adapters feed it from rate-limit headers (``observe``) and 429 answers
    (``block``); the base refuses to send before the reset time. With a ``store`` (``share``) what
    one worker learns stops every worker: a bucket ``app=True`` is the app's (all its accounts).
    """

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._store: RateStore | None = None
        self._platform = ""
        self._account = ""
        self._app: str | None = None

    def share(self, store: RateStore, platform: str, account: str, app: str | None = None) -> None:
        """Share this gate's blocks with the other workers through ``store``; ``app``: the app's id, if any."""
        self._store, self._platform, self._account, self._app = store, platform, account, app

    def _shared(self, bucket: str, app: bool) -> str | None:
        if self._store is None or (app and self._app is None):
            return None
        return f"app:{self._app}:{bucket}" if app else f"acct:{self._account}:{bucket}"

    def observe(self, bucket: str, remaining: int | None, reset_at: float | None, *, app: bool = False) -> None:
        if remaining is not None and remaining <= 0 and reset_at is not None:
            self.block(bucket, reset_at - self._wall(), app=app)

    def block(self, bucket: str, seconds: float | None, *, app: bool = False) -> None:
        seconds = 60.0 if seconds is None else max(seconds, 0.0)
        with self._lock:
            until = self._wall() + seconds
            self._until[bucket] = max(self._until.get(bucket, 0.0), until)
        key = self._shared(bucket, app)
        if key is not None and self._store is not None:
            self._store.block(self._platform, key, until)

    def spend(self, bucket: str, limit: int, window: float) -> None:
        """One use of the app-wide ``bucket`` (``limit`` per ``window`` seconds for all the app's accounts)."""
        key = self._shared(bucket, True)
        if key is not None and self._store is not None:
            self._store.spend(self._platform, key, limit, window)

    def wait_needed(self, *buckets: str) -> float:
        """Seconds to wait before any of these buckets may be used; 0 when free."""
        now = self._wall()
        with self._lock:
            waits = [self._until.get(b, 0.0) - now for b in (*buckets, "*")]
        store = self._store
        if store is not None:
            for bucket in (*buckets, "*"):
                waits.append(store.blocked_until(self._platform, f"acct:{self._account}:{bucket}") - now)
                if self._app is not None:
                    waits.append(store.blocked_until(self._platform, f"app:{self._app}:{bucket}") - now)
        return max([0.0, *waits])


class Platform(ABC):
    """Base of every adapter. One instance serves one account."""

    name: ClassVar[str]
    limits: ClassVar[Limits]
    required_credentials: ClassVar[tuple[str, ...]]
    needs_handle: ClassVar[bool] = False
    default_base_url: ClassVar[str | None] = None
    supports_streaming: ClassVar[bool] = False
    # Whether the platform can find posts by hashtag, so an account of it may appear under ``track:`` in
    # config/reshare.yaml (LinkedIn has no hashtag search; a Threads account without keyword search neither).
    supports_tracking: ClassVar[bool] = True
    # How many accounts of one fan-out a ``stage`` call prepares for (0: the platform stages nothing).
    stage_group: ClassVar[int] = 0
    # Fetches media from a public URL (Instagram, Threads): ``bot check`` requires config/media_host.yaml.
    needs_media_host: ClassVar[bool] = False
    # Takes a post's ``cover:`` image with its video (Instagram Reels' ``cover_url``); the others ignore the cover.
    video_cover: ClassVar[bool] = False
    # App-wide caps no header announces before they bite, per ``_guarded`` bucket: (uses, window seconds)
    # for all the app's accounts together, counted in the shared rate store when the worker has one.
    app_caps: ClassVar[Mapping[str, tuple[int, float]]] = {}

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        timeout: float = 30.0,
        wall: Callable[[], float] = time.time,
        state_dir: Path | None = None,
        media_host: MediaHost | None = None,
    ) -> None:
        self.account = account
        self._secrets = dict(secrets)  # role -> value; never logged
        self.timeout = timeout
        self._wall = wall  # the wall clock (epoch seconds), a test's own where it passes one
        # The campaign's private state folder (``<campaign>/state``): adapters that keep something
        # between runs (Bluesky sessions) put it there; None keeps everything in memory.
        self.state_dir = state_dir
        # Where platforms that fetch media from a URL get one (None: not configured; such adapters say so).
        self.media_host = media_host
        self.base_url = (account.base_url or self.default_base_url or "").rstrip("/")
        self.gate = RateGate(wall)
        import structlog  # here, not at the top: `bot check` reads Limits and must start fast

        self.log = structlog.get_logger("bot.platform").bind(account=account.id, platform=self.name)

    # ---- offline checks (used by ``bot check`` and before every publish) ----

    @classmethod
    def measure_text(cls, text: str) -> int:
        """Length of ``text`` as this platform counts it."""
        return len(text)

    @classmethod
    def max_text_for(cls, account: AccountLike | None) -> int:
        """The text limit for this account (instances may configure their own)."""
        return cls.limits.max_text

    @classmethod
    def media_mix_refusal(cls, image_formats: Sequence[str]) -> str | None:
        """Why the platform refuses a post with images of these (Pillow) formats together, or None.

        ``bot check`` asks before the slot; ``validate`` asks again before sending. Most platforms take
        any mix of the formats in their ``limits``; X refuses a GIF beside other media.
        """
        return None

    @classmethod
    def text_refusals(cls, text: str) -> list[str]:
        """What the platform refuses in a text beyond its length (Instagram: more than 30 hashtags), for ``bot check``.

        Each item reads as the rest of a sentence: "has 31 hashtags (expected at most 30)".
        """
        return []

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        """What the platform refuses in probed media (``bot.media.MediaInfo``) beyond ``limits``: aspect ratios,
        codecs, frame sizes, for ``bot check``. ``images`` holds None for a file that could not be probed.
        Each refusal is (where in the post: ``("media", i, "file")`` or ``("video",)``, message).
        """
        return []

    def validate(self, out: Outgoing) -> None:
        """Refuse what the platform would refuse, before sending anything. Never cuts text."""
        limit = self.max_text_for(self.account)
        length = 0 if surely_fits(out.text, limit) else self.measure_text(out.text)
        if length > limit:
            raise ContentRejected(f"text is {length} characters as {self.name} counts them, limit is {limit}")
        if len(out.images) > self.limits.max_images:
            raise ContentRejected(f"{len(out.images)} images, {self.name} takes {self.limits.max_images}")
        if out.images and out.video:
            raise ContentRejected(f"{self.name} posts take images or a video, not both")
        attachments: list[ImageAttachment | VideoAttachment] = [*out.images, *([out.video] if out.video else [])]
        for item in attachments:
            if not item.alt.strip():
                raise ContentRejected(f"{item.path.name}: alt text is missing")

    # ---- public template methods ----

    def publish(self, out: Outgoing, progress: Progress | None = None) -> Receipt:
        """Publish ``out``; idempotent on ``out.key`` where the platform allows it."""
        self.validate(out)
        return self._guarded("publish", ("post",), lambda: self._publish(out, progress))

    def stage(self, out: Outgoing, together: Sequence[Any] = ()) -> bool:
        """Before the slot: the slow part of publishing ``out`` that posts nothing (X: uploading its media,
        shared with the adapters ``together`` of the same fan-out). True when something was staged."""
        self.validate(out)
        return self._guarded("stage", ("post",), lambda: self._stage(out, together))

    def find_published(self, out: Outgoing) -> Receipt | None:
        """After an uncertain attempt: the post made from ``out`` if the platform has it."""
        return self._guarded("find_published", ("read",), lambda: self._find_published(out))

    def reshare(self, mention: Mention) -> Receipt:
        return self._guarded("reshare", ("reshare",), lambda: self._reshare(mention))

    def withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        """Take back our reshare of ``mention`` (``reshare_id``: the reshare's own id from its receipt, if any).

        Idempotent: a reshare already gone (or a post the platform deleted, with its reshares) is no error.
        """
        self._guarded("withdraw_reshare", ("reshare",), lambda: self._withdraw_reshare(mention, reshare_id))

    def fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        return self._guarded("fetch_mentions", ("search",), lambda: self._fetch_mentions(hashtags, cursor))

    def whoami(self) -> Identity:
        return self._guarded("whoami", ("read",), self._whoami)

    def configure_search(
        self, *, daily_reads: int | None = None, max_interval: float | None = None, interval: float | None = None
    ) -> None:
        """Tracking settings from config/reshare.yaml: posts a day the reader may be billed for, the longest gap
        back-off may stretch a quiet poll to, the poll interval. Platforms whose reads cost nothing ignore them."""

    def credentials_expire_at(self) -> datetime | None:
        """When this account's token stops working, if the platform says (Graph and LinkedIn tokens live 60 days).

        The worker asks once a day and warns 7 days ahead in the log, the alerts and ``bot status``; adapters
        that can refresh their token do so here (before answering) when it is close to expiry.
        """
        return None

    def close(self) -> None:
        """Release connections; adapters with sessions override."""

    def rate_app(self) -> str | None:
        """Which app this account posts through, for app-wide limits (None: the platform has none)."""
        return None

    def share_rates(self, store: RateStore) -> None:
        """Rate limits learned by this adapter stop every worker's adapters (and theirs stop this one)."""
        self.gate.share(store, self.name, self.account.id, self.rate_app())

    # ---- hooks a platform fills in ----

    @abstractmethod
    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt: ...

    def _stage(self, out: Outgoing, together: Sequence[Any]) -> bool:
        return False  # nothing to prepare: publishing does it all at the slot

    @abstractmethod
    def _find_published(self, out: Outgoing) -> Receipt | None: ...

    @abstractmethod
    def _reshare(self, mention: Mention) -> Receipt: ...

    def _withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        raise PermanentError(f"{self.name} adapter cannot withdraw a reshare")

    @abstractmethod
    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage: ...

    @abstractmethod
    def _whoami(self) -> Identity: ...

    @abstractmethod
    def _map_error(self, exc: Exception) -> BotError:
        """Translate a client library's exception into one of ours (called once, here)."""

    # ---- the template ----

    def _guarded(self, op: str, buckets: tuple[str, ...], call: Callable[[], T]) -> T:
        wait = self.gate.wait_needed(*buckets)
        if wait > 0:
            raise RateLimited(f"{self.name} rate limit: waiting {wait:.0f}s before {op}", retry_after=wait)
        for bucket in buckets:
            cap = self.app_caps.get(bucket)
            if cap is not None:
                self.gate.spend(bucket, *cap)
        started = time.monotonic()
        try:
            return call()
        except LeaseLost:
            raise  # the caller's own stop (raised from its progress callback), not the platform's failure
        except BotError as err:
            self._note_failure(op, err, started, buckets)
            raise
        except Exception as exc:  # the adapter boundary: wrap foreign errors once
            mapped = self._map_error(exc)
            self._note_failure(op, mapped, started, buckets)
            raise mapped from exc

    def _note_failure(self, op: str, err: BotError, started: float, buckets: tuple[str, ...]) -> None:
        if isinstance(err, RateLimited):
            for bucket in buckets:
                self.gate.block(bucket, err.retry_after)
        self.log.warning(
            "platform_call_failed",
            op=op,
            error=type(err).__name__,
            reason=str(err),
            retry_after=getattr(err, "retry_after", None),
            duration_ms=round((time.monotonic() - started) * 1000),
        )

    def _secret(self, role: str) -> str:
        return self._secrets[role]

    @staticmethod
    def _unavailable(exc: Exception) -> PlatformUnavailable:
        return PlatformUnavailable(f"{type(exc).__name__}: {exc}")


def environment_read_once(session: Any) -> Any:
    """Make a requests ``Session`` read proxy and CA settings from the environment once, not per request.

    With ``trust_env`` requests scans every environment variable twice per request for proxies;
    a campaign with hundreds of accounts has thousands of credential variables, and a 500-account
    fan-out spent two thirds of its CPU there. When a proxy is configured the session is left
    as it is, so per-host ``no_proxy`` rules keep working.
    """
    if _environment_proxies():
        return session
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


@functools.lru_cache(maxsize=1)
def _environment_proxies() -> bool:
    import urllib.request

    return bool(urllib.request.getproxies())
