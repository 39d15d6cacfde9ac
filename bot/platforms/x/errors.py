"""What a tweepy or requests exception means for the bot: the bot error it maps to."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.core.errors import (
    AuthFailed,
    BotError,
    ContentRejected,
    DuplicateContent,
    NotFound,
    PlatformUnavailable,
    RateLimited,
    UncertainOutcome,
)


def map_error(exc: Exception, account: Any, *, wall: Callable[[], float]) -> BotError | None:
    """The bot error for a tweepy or transport exception, or None for one this module does not know."""
    import requests
    from tweepy.errors import Forbidden, HTTPException, TooManyRequests, Unauthorized
    from tweepy.errors import NotFound as TweepyNotFound

    if isinstance(exc, TooManyRequests):
        retry = None if exc.reset_time is None else max(0.0, exc.reset_time - wall())
        return RateLimited(f"x answered 429 Too Many Requests{_said(exc)}", retry_after=retry)
    if isinstance(exc, Unauthorized):
        names = ", ".join(account.credentials.values())
        return AuthFailed(f"x refused the credentials of account {account.id}: check environment variables {names}")
    if isinstance(exc, Forbidden):
        said = _said(exc)
        if "duplicate" in said.lower():
            return DuplicateContent(f"x refused a duplicate post{said}")
        if "oauth1-permissions" in exc.response.text or "client-not-enrolled" in exc.response.text:
            names = ", ".join(account.credentials.values())
            return AuthFailed(f"x app of account {account.id} may not post{said}: check environment variables {names}")
        return ContentRejected(f"x refused the request{said}")
    if isinstance(exc, TweepyNotFound):
        return NotFound(f"x has no such resource{_said(exc)}")
    if isinstance(exc, HTTPException):
        status = exc.response.status_code
        if status >= 500:
            return PlatformUnavailable(f"x answered {status}{_said(exc)}")
        return ContentRejected(f"x answered {status}{_said(exc)}")
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
        if _was_sent(exc) and _is_write(exc.request):
            # X may have created the post: the caller must reconcile before trying again.
            return UncertainOutcome(f"x gave no answer after the request was sent ({type(exc).__name__})")
    return None


def _was_sent(exc: Exception) -> bool:
    """False only when the connection was never made, so the request cannot have reached X."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _is_write(request: Any) -> bool:
    path = getattr(request, "path_url", "") or ""
    return getattr(request, "method", None) == "POST" and bool(re.search(r"/2/(tweets|users/\d+/retweets)$", path))


def _said(exc: Any) -> str:
    messages = getattr(exc, "api_messages", None)
    return f": {'; '.join(messages)}" if messages else ""
