"""What LinkedIn's answers mean for the bot, by what the caller does next.

Status codes and bodies follow
https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/error-handling (401 expired or revoked
token, 403 a permission the token lacks, 422 a field that fails validation, 429 throttled, 5xx LinkedIn's
side) and https://learn.microsoft.com/en-us/linkedin/marketing/versioning (426: the version is sunset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.core.errors import (
    AuthFailed,
    BotError,
    ContentRejected,
    NotFound,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)


class LinkedInHTTPError(Exception):
    """LinkedIn answered with a non-2xx status."""

    def __init__(self, method: str, path: str, response: Any) -> None:  # a requests Response
        self.method, self.path, self.status = method, path, response.status_code
        self.headers: Mapping[str, str] = response.headers
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:300]}
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}
        self.message = str(self.body.get("message") or "")
        super().__init__(f"{method} {path} answered {self.status}: {self.message}")


# LinkedIn's daily limits are unpublished and reset at midnight UTC
# (https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits); a 429 without
# Retry-After waits an hour (or to midnight, if sooner) rather than a whole day on one throttled call.
DEFAULT_WAIT = 3600.0
DUPLICATE = re.compile(r"urn:li:(?:share|ugcPost):\d+")
PERMISSION = {"POST": "w_organization_social", "PUT": "w_organization_social", "GET": "r_organization_social"}


def duplicate_of(exc: LinkedInHTTPError) -> str | None:
    """The URN of the post a 422 says ours duplicates ("Content is a duplicate of urn:li:share:..."), or None."""
    if exc.status != 422 or "duplicate" not in exc.message.lower():
        return None
    found = DUPLICATE.search(exc.message)
    return found.group(0) if found else None


def map_error(
    exc: Exception,
    account: Any,
    *,
    version: str,
    wall: Callable[[], float],
    secrets: Iterable[str],
) -> BotError | None:
    """The bot error for a LinkedIn answer or a transport failure, or None for one this module does not know."""
    import requests

    said = _scrub(f": {exc.message}" if isinstance(exc, LinkedInHTTPError) and exc.message else "", secrets)
    if isinstance(exc, LinkedInHTTPError):
        status, where = exc.status, f"{exc.method} {exc.path}"
        if status == 429:
            return RateLimited(f"linkedin answered 429 to {where}{said}", retry_after=_retry_after(exc, wall))
        if status == 401:
            var = account.credentials.get("access_token", "?")
            return AuthFailed(
                f"linkedin refused the access token of account {account.id} (expired or revoked; LinkedIn tokens "
                f"live 60 days){said}: put a new one in environment variable {var}"
            )
        if status == 403:
            permission = PERMISSION.get(exc.method, "w_organization_social")
            var = account.credentials.get("access_token", "?")
            return AuthFailed(
                f"linkedin refused {where} for account {account.id}: the token in {var} lacks permission "
                f"{permission} (or the member is not an administrator of the page){said}"
            )
        if status == 426:
            return PermanentError(
                f"linkedin no longer serves API version {version} (HTTP 426, sunset): set options.linkedin_version "
                f"of account {account.id} in config/accounts.yaml to a current YYYYMM{said}"
            )
        if status == 404:
            return NotFound(f"linkedin has no such resource ({where}){said}")
        if status == 422:
            field = _field(exc)
            return ContentRejected(f"linkedin refused {'field ' + field if field else 'the post'}{said}")
        if status >= 500:
            return PlatformUnavailable(f"linkedin answered {status} to {where}{said}")
        return ContentRejected(f"linkedin answered {status} to {where}{said}")
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
        request = getattr(exc, "request", None)
        path = getattr(request, "path_url", "") or ""
        if _was_sent(exc) and getattr(request, "method", None) == "POST" and path.startswith("/rest/posts"):
            # LinkedIn may have created the post: the caller reads back (find_published) before any retry.
            return UncertainOutcome(f"linkedin gave no answer after the post was sent ({type(exc).__name__})")
        return PlatformUnavailable(f"linkedin unreachable ({type(exc).__name__})")
    return None


def _retry_after(exc: LinkedInHTTPError, wall: Callable[[], float]) -> float:
    value = exc.headers.get("Retry-After", "")
    if value.strip().isdigit():
        return float(value)
    now = datetime.fromtimestamp(wall(), UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    return min(DEFAULT_WAIT, midnight - now.timestamp())


def _field(exc: LinkedInHTTPError) -> str:
    """The field a 422 names (``errorDetails.inputErrors[].input.inputPath.fieldPath``), or ""."""
    details = exc.body.get("errorDetails")
    errors = details.get("inputErrors", []) if isinstance(details, dict) else []
    for item in errors if isinstance(errors, list) else []:
        path = (((item or {}).get("input") or {}).get("inputPath") or {}).get("fieldPath")
        if path:
            return str(path)
    return ""


def _was_sent(exc: Exception) -> bool:
    """False only when no connection was made, so the request cannot have reached LinkedIn."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """A body quoted in an error must not carry a secret (a proxy's debug page may echo the Authorization header)."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    return text[:400]
