"""Graph errors mapped by what the caller does next.

Codes from the error handling guide (https://developers.facebook.com/docs/graph-api/guides/error-handling), the
rate limiting guide (https://developers.facebook.com/docs/graph-api/overview/rate-limiting) and Instagram's error
codes (https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/error-codes).
"""

from __future__ import annotations

from typing import Any

from bot.core.errors import (
    AuthFailed,
    BotError,
    ContentRejected,
    DuplicateContent,
    NotFound,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
)
from bot.platforms.graph.client import GraphApiError

THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80010)})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
QUOTA_SUBCODES = frozenset({2207042})  # "maximum number of posts ... by Content Publishing API" (code 9)
DEFAULT_RETRY = 30.0  # seconds, when a throttled answer carries no estimate; the publisher's backoff grows it


def map_graph_error(exc: GraphApiError, platform: str, account: Any) -> BotError:
    said = exc.describe()
    if exc.code in TOKEN_CODES:
        names = ", ".join(account.credentials.values())
        return AuthFailed(
            f"{platform} token of account {account.id} has expired or was revoked ({said}): put a new long-lived "
            f"token in environment variable {names}"
        )
    if exc.code in THROTTLE_CODES or exc.subcode in QUOTA_SUBCODES:
        retry = exc.regain_minutes * 60 if exc.regain_minutes else DEFAULT_RETRY
        if exc.subcode in QUOTA_SUBCODES:
            retry = max(retry, 3600.0)  # the 24-hour quota frees one post at a time
        return RateLimited(f"{platform} is throttling account {account.id}: {said}", retry_after=retry)
    if exc.code in (1, 2) or exc.status >= 500 or exc.transient:
        return PlatformUnavailable(f"{platform}: {said}")
    if exc.code in PERMISSION_CODES:
        return PermanentError(f"{platform} account {account.id} lacks a permission: {said}")
    if exc.code == 100 and exc.subcode == 33:
        return NotFound(f"{platform}: {said}")
    if exc.code == 506:
        return DuplicateContent(f"{platform} refused a duplicate post: {said}")
    return ContentRejected(f"{platform} refused the request: {said}")


def map_transport(exc: Exception) -> BotError | None:
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return PlatformUnavailable(f"Graph API: {type(exc).__name__}")
    return None
