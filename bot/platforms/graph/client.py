"""A small typed Graph API client over requests: one pinned version, the token in the Authorization header.

Why not ``facebook-business``: it covers Pages and Instagram but not Threads, keeps its API object in a process
global (``FacebookAdsApi.init``), puts the token in the query string of every call (where requests' exceptions
and proxies echo it), and hides the response headers we need for usage (``X-App-Usage``,
``X-Business-Use-Case-Usage``). The Graph calls we make are a dozen plain form POSTs and GETs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.errors import PlatformUnavailable, UncertainOutcome


class GraphApiError(Exception):
    """An answer in Graph's error envelope (https://developers.facebook.com/docs/graph-api/guides/error-handling)."""

    def __init__(self, status: int, error: Mapping[str, Any], regain_minutes: float | None = None) -> None:
        self.status = status
        self.code = int(error.get("code") or 0)
        self.subcode = int(error["error_subcode"]) if error.get("error_subcode") is not None else None
        self.message = str(error.get("message") or "")
        self.user_msg = str(error.get("error_user_msg") or "")
        self.transient = bool(error.get("is_transient"))
        self.fbtrace_id = str(error.get("fbtrace_id") or "")
        self.regain_minutes = regain_minutes
        super().__init__(self.describe())

    def describe(self) -> str:
        sub = f"/{self.subcode}" if self.subcode is not None else ""
        said = "; ".join(x for x in (self.message, self.user_msg) if x)
        return f"Graph error {self.code}{sub}: {said}"

    @property
    def download_failed(self) -> bool:
        """Instagram or Threads could not fetch a media URL (9004/2207052, or its 2207003 timeout)."""
        return self.subcode in (2207052, 2207003) or self.code == 9004


@dataclass(frozen=True)
class Usage:
    """The highest percentage any usage header reports, and Meta's estimate of when access returns."""

    percent: int
    regain_minutes: float


def read_usage(headers: Mapping[str, str]) -> Usage | None:
    """``X-App-Usage`` ({"call_count", "total_cputime", "total_time"}) and ``X-Business-Use-Case-Usage``
    ({business id: [{"type", "call_count", ..., "estimated_time_to_regain_access"}]}), per the rate limiting
    guide (https://developers.facebook.com/docs/graph-api/overview/rate-limiting)."""
    percents: list[int] = []
    regain = 0.0
    try:
        app = headers.get("X-App-Usage")
        if app:
            percents += [int(v) for v in json.loads(app).values() if isinstance(v, int | float)]
        buc = headers.get("X-Business-Use-Case-Usage")
        if buc:
            for entries in json.loads(buc).values():
                for entry in entries:
                    percents += [int(entry.get(k) or 0) for k in ("call_count", "total_cputime", "total_time")]
                    regain = max(regain, float(entry.get("estimated_time_to_regain_access") or 0))
    except (ValueError, AttributeError, TypeError):
        return None  # a header we cannot read slows nothing down; the error codes still do
    return Usage(max(percents), regain) if percents else None


class GraphClient:
    def __init__(
        self,
        base_url: str,
        version: str,
        token: str,
        *,
        timeout: float,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> None:
        import requests

        from bot.platforms.base import environment_read_once

        self.base = f"{base_url.rstrip('/')}/{version}"
        self.root = base_url.rstrip("/")
        self.version = version
        self.timeout = timeout
        self._token = token
        self._on_usage = on_usage
        self.session = environment_read_once(requests.Session())
        # One adapter serves all the worker's publishing threads (16 by default): a pool of 10 would discard
        # connections and reconnect.
        pooled = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.session.mount("https://", pooled)
        self.session.mount("http://", pooled)

    def set_token(self, token: str) -> None:
        self._token = token

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=dict(params or {}))

    def post(
        self,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        write: bool = False,
    ) -> Any:
        """POST form fields (and multipart ``files``). ``write``: the call may publish, so an answer lost after
        the request was sent is an UncertainOutcome (the caller reconciles), not a plain outage."""
        return self._call("POST", path, data=dict(data or {}), files=files, write=write)

    def post_raw(self, url: str, body: bytes, headers: Mapping[str, str]) -> Any:
        """POST bytes to an upload URL Graph handed out (Facebook Reels' rupload), with the token."""
        full = url if url.startswith("http") else f"{self.root}{url}"
        return self._call("POST", full, raw=body, extra_headers=headers)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        raw: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> Any:
        import requests

        url = path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self._token}", **(extra_headers or {})}
        try:
            answer = self.session.request(
                method,
                url,
                params=params,
                data=raw if raw is not None else data,
                files=files,
                headers=headers,
                timeout=self.timeout,
            )
        except (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError) as exc:
            raise PlatformUnavailable(f"Graph API not reachable ({type(exc).__name__})") from None
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            # The messages of these exceptions quote the URL; ours never carries the token, but say only the type.
            if write and _was_sent(exc):
                raise UncertainOutcome(
                    f"Graph gave no answer after the request was sent ({type(exc).__name__})"
                ) from None
            raise PlatformUnavailable(f"Graph API did not answer ({type(exc).__name__})") from None
        usage = read_usage(answer.headers)
        if usage is not None and self._on_usage is not None:
            self._on_usage(usage)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            found = body.get("error") if isinstance(body, dict) else None
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            error = {**error, "message": self._scrub(str(error.get("message") or f"HTTP {answer.status_code}"))}
            raise GraphApiError(answer.status_code, error, usage.regain_minutes if usage else None)
        return body

    def _scrub(self, text: str) -> str:
        # A proxy or debug page may quote our Authorization header back: never pass the token on.
        return text.replace(self._token, "[token]") if self._token else text

    def close(self) -> None:
        self.session.close()


def _was_sent(exc: Exception) -> bool:
    """False only when the connection was never made, so the request cannot have reached Graph."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
