"""What an atproto SDK exception means for the bot: its XRPC error name and the bot error it maps to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.errors import AuthFailed, BotError, ContentRejected, NotFound, PlatformUnavailable, RateLimited

AUTH_ERRORS = {"ExpiredToken", "InvalidToken"}
_REFUSED = AUTH_ERRORS | {"AuthFactorTokenRequired", "AccountTakedown"}


def xrpc_error(exc: Exception) -> str | None:
    """The XRPC error name in the server's answer (``ExpiredToken``, ``RecordNotFound``), if any."""
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return getattr(content, "error", None)


def maybe_sent(exc: Exception) -> bool:
    """Whether a transport failure may have happened after the server got the request."""
    import httpx

    return not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def map_error(exc: Exception, account: Any, *, timeout: float, wall: Callable[[], float]) -> BotError | None:
    """The bot error for an SDK exception, or None for one that is not the SDK's."""
    from atproto_client import exceptions as ex

    if isinstance(exc, ex.RateLimitExceededError):
        reset = exc.reset_at.timestamp() - wall() if exc.reset_at else exc.retry_after
        return RateLimited(f"bluesky rate limit ({exc.policy or 'no policy given'})", retry_after=reset)
    if isinstance(exc, ex.UnauthorizedError) or (isinstance(exc, ex.BadRequestError) and xrpc_error(exc) in _REFUSED):
        names = ", ".join(sorted(account.credentials.values()))
        return AuthFailed(
            f"account {account.id}: Bluesky refused the credentials ({xrpc_error(exc) or 'unauthorized'}); "
            f"check the app password in {names} and the handle {account.handle}"
        )
    if isinstance(exc, ex.BadRequestError):
        if xrpc_error(exc) in ("RecordNotFound", "NotFound"):
            return NotFound(f"bluesky: {exc}")
        return ContentRejected(f"bluesky rejected the request: {exc}")
    if isinstance(exc, ex.InvokeTimeoutError):
        return PlatformUnavailable(f"bluesky did not answer within {timeout:.0f}s")
    if isinstance(exc, ex.NetworkError) and exc.response is not None and exc.response.status_code == 413:
        return ContentRejected(f"bluesky: upload too large ({exc})")
    if isinstance(exc, ex.RequestErrorBase):
        return PlatformUnavailable(f"bluesky: {exc}")
    return None
