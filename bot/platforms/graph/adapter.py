"""The base of the three Graph adapters: client, usage-driven slow-down, error mapping, token expiry."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from bot.core.errors import BotError, PermanentError, PlatformUnavailable
from bot.core.values import AccountLike, Identity, Outgoing
from bot.platforms.base import Platform
from bot.platforms.graph.client import GraphApiError, GraphClient, Usage
from bot.platforms.graph.errors import map_graph_error, map_transport
from bot.platforms.graph.version import graph_version, version_warning

SLOW_AT = 80  # percent of any usage header: above it the adapter spaces its calls, before Graph throttles
SLOW_SECONDS_PER_PERCENT = 12.0  # 85% -> 60 s, 95% -> 180 s of pause before the next call
REFRESH_BEFORE = 10 * 86400.0  # refresh a refreshable token when it has less than 10 days left


class GraphPlatform(Platform):
    """Shared by Facebook, Instagram and Threads. Extra keyword ``sleep`` (default ``time.sleep``): what container
    polling waits with, so tests put it on their clock."""

    required_credentials: ClassVar[tuple[str, ...]] = ("access_token",)
    refresh_grant: ClassVar[str | None] = None  # ig_refresh_token, th_refresh_token
    version_pinned: ClassVar[str | None] = None  # Threads: its own version
    video_alt_text: ClassVar[bool] = True  # whether a video takes alt text (Reels and Page videos do not)

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        self.sleep = sleep
        version = self.version_pinned or graph_version()
        if self.version_pinned is None and (warning := version_warning(version)):
            self.log.warning("graph_version_near_end_of_life", version=version, detail=warning)
        self.client = GraphClient(
            self.base_url, version, self._secret("access_token"), timeout=self.timeout, on_usage=self._usage_seen
        )
        self._me: Identity | None = None
        self._token_expires: float | None = None
        self.staged: dict[str, str] = {}  # publication key -> container made before the slot (Instagram, Threads)
        self._configured = self._secret("access_token")
        if self.refresh_grant is not None:
            self._load_refreshed()

    # ---- usage headers: slow down before Graph throttles ----

    def _usage_seen(self, usage: Usage) -> None:
        if usage.percent < SLOW_AT:
            return
        pause = max((usage.percent - SLOW_AT) * SLOW_SECONDS_PER_PERCENT, usage.regain_minutes * 60)
        self.gate.block("*", pause)
        self.log.warning("graph_usage_high", percent=usage.percent, paused_s=round(pause))

    # ---- errors ----

    def _map_error(self, exc: Exception) -> BotError:
        if isinstance(exc, GraphApiError):
            return map_graph_error(exc, self.name, self.account)
        return map_transport(exc) or PlatformUnavailable(f"{self.name}: {type(exc).__name__}")

    # ---- identity and token ----

    def _whoami(self) -> Identity:
        if self._me is None:
            me = self.client.get("me", {"fields": self.identity_fields})
            self._me = Identity(id=str(me["id"]), handle=str(me.get("username") or me.get("name") or ""))
        return self._me

    identity_fields: ClassVar[str] = "id,username"

    def credentials_expire_at(self) -> datetime | None:
        """Expiry from ``debug_token`` (Facebook) or a refresh (Instagram, Threads: a refreshable long-lived token
        gets 60 more days when under ``REFRESH_BEFORE`` or when its expiry is unknown)."""
        try:
            return self._guarded("credentials_expire_at", ("read",), self._expiry)
        except BotError as err:
            self.log.warning("token_expiry_unknown", error=type(err).__name__, reason=str(err))
            return None

    def _expiry(self) -> datetime | None:
        if self.refresh_grant is not None:
            if self._token_expires is None or self._token_expires - self._wall() < REFRESH_BEFORE:
                answer = self.client.get("refresh_access_token", {"grant_type": self.refresh_grant})
                expires_in = float(answer.get("expires_in") or 0)
                self._use_token(str(answer["access_token"]), self._wall() + expires_in)
                self.log.info("token_refreshed", expires_in_days=round(expires_in / 86400))
            return datetime.fromtimestamp(self._token_expires or 0, UTC)
        token = self._secret("access_token")
        data = self.client.get("debug_token", {"input_token": token}).get("data", {})
        expires = int(data.get("expires_at") or 0)
        return datetime.fromtimestamp(expires, UTC) if expires else None  # 0: a Page token that never expires

    # ---- refreshed tokens, kept in the campaign's private state folder ----
    # The variable still holds the token staff set; a refreshed one lives in ``state/graph-tokens/<account>.json``
    # (mode 600, as Bluesky's sessions), tied to the variable's token by a hash so a token staff replace wins.

    def _token_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / "graph-tokens" / f"{self.account.id}.json"

    def _configured_hash(self) -> str:
        return hashlib.sha256(self._configured.encode()).hexdigest()

    def _load_refreshed(self) -> None:
        path = self._token_file()
        if path is None or not path.exists():
            return
        try:
            saved = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if saved.get("configured") == self._configured_hash() and float(saved.get("expires", 0)) > self._wall():
            self._use_token(str(saved["token"]), float(saved["expires"]), save=False)

    def _use_token(self, token: str, expires: float, *, save: bool = True) -> None:
        from bot.observability.redaction import register_secret

        register_secret(token)
        self._secrets["access_token"] = token
        self.client.set_token(token)
        self._token_expires = expires
        path = self._token_file()
        if save and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps({"token": token, "expires": expires, "configured": self._configured_hash()}))
            partial.chmod(0o600)
            partial.replace(path)

    # ---- media host ----

    def _url(self, out: Outgoing, path: Path) -> str:
        if self.media_host is None:
            raise PermanentError(
                f"{self.name} fetches media from a public URL and no media_host is configured: set media_host in "
                f"config (an S3-compatible bucket) before posting {path.name} from account {self.account.id}"
            )
        return self.media_host.url_for(path, publication=out.key)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _comparable(text: str) -> str:
        return " ".join(text.split())

    def _data(self, answer: Any) -> list[dict[str, Any]]:
        data = answer.get("data") if isinstance(answer, dict) else None
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
