"""pyTelegramBotAPI's and requests' exceptions as the bot's errors, with messages that can never carry the token.

The Bot API puts the token in every URL (``/bot<token>/sendMessage``), and requests quotes the URL in its
connection errors ("Max retries exceeded with url: /bot123:AA.../sendMessage"). So no message here is built
from ``str()`` of a requests exception or from a response body (a proxy's error page may quote the request
line); the Bot API's own ``description`` is used, with the token cut out should it ever appear.

Which failures prove nothing was posted (https://core.telegram.org/bots/api#making-requests: "ok" false
with an error_code means the method failed): a 4xx answer, a 503, or a connection that never opened. Anything
after the request left (a read timeout, a dropped connection, a 500/502/504 from the front end) is an unknown
outcome on a send: Telegram has no idempotency key and a bot cannot read a channel's history.
"""

from __future__ import annotations

from typing import Any

from bot.core.errors import (
    AuthFailed,
    BotError,
    ContentRejected,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
)


def not_sent(exc: BaseException) -> bool:
    """Whether a requests exception happened before the request could reach the server."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, (NewConnectionError, ConnectTimeoutError))
    return False


def api_status(exc: BaseException) -> tuple[int, str, dict[str, Any]] | None:
    """(error_code, description, parameters) of a Bot API refusal, or None for other exceptions."""
    from telebot.apihelper import ApiHTTPException, ApiTelegramException

    if isinstance(exc, ApiTelegramException):
        body = exc.result_json if isinstance(exc.result_json, dict) else {}
        return int(exc.error_code), str(exc.description), dict(body.get("parameters") or {})
    if isinstance(exc, ApiHTTPException):
        # Not the Bot API's envelope (a proxy's page): its body is never quoted, only its status.
        return int(exc.result.status_code), f"HTTP {exc.result.status_code} without a Bot API answer", {}
    return None


def map_error(
    exc: BaseException, *, sending: bool, token: str, account: str, variable: str, chat: str, what: str
) -> BotError:
    """The bot's error for ``exc``; ``sending``: whether the call could have posted something."""
    import requests

    status = api_status(exc)
    if status is not None:
        code, description, parameters = status
        description = description.replace(token, "<bot token>") if token else description
        return _from_api(code, description, parameters, sending=sending, account=account, variable=variable, chat=chat)
    if isinstance(exc, requests.exceptions.RequestException):
        kind = type(exc).__name__  # never str(exc): it quotes the URL, token included
        if sending and not not_sent(exc):
            return OutcomeUnknown(
                f"telegram {what} to {chat}: {kind} after the request was sent; the post may or may not be in the "
                "channel (Telegram has no idempotency key and a bot cannot read a channel's history): look, "
                "then resolve it with `bot attention`"
            )
        return PlatformUnavailable(f"telegram {what}: {kind} (nothing was sent)")
    if sending:
        # Not the network and not an answer: most likely the answer could not be read, after the post went out.
        return OutcomeUnknown(
            f"telegram {what} to {chat}: {type(exc).__name__} while sending or reading the answer; the post may or "
            "may not be in the channel: look, then resolve it with `bot attention`"
        )
    return PermanentError(f"telegram {what}: {type(exc).__name__}")


def _from_api(
    code: int, description: str, parameters: dict[str, Any], *, sending: bool, account: str, variable: str, chat: str
) -> BotError:
    if code == 429:
        # https://core.telegram.org/bots/api#responseparameters: "retry_after: in case of exceeding flood
        # control, the number of seconds left to wait before the request can be repeated". Honoured exactly.
        retry = parameters.get("retry_after")
        return RateLimited(f"telegram flood control: {description}", retry_after=float(retry) if retry else None)
    if code in (401, 404):  # 404 is the Bot API's answer to a malformed token
        return AuthFailed(f"account {account}: Telegram refused the bot token ({description}); check {variable}")
    lowered = description.lower()
    if code == 403 or "administrator rights" in lowered or "not enough rights" in lowered:
        return AuthFailed(
            f"account {account}: the bot may not post in {chat} ({description}): make it an administrator of the "
            f"channel with the right to post messages (the token is in {variable})"
        )
    if code == 400 and "chat not found" in lowered:
        return NotFound(f"account {account}: Telegram knows no chat {chat} ({description})")
    if 400 <= code < 500:
        return ContentRejected(f"telegram refused the post: {description}")
    if code == 503 or not sending:
        return PlatformUnavailable(f"telegram answered {code}: {description}")
    return OutcomeUnknown(
        f"telegram answered {code} to a send to {chat} ({description}); the post may or may not be in the channel: "
        "look, then resolve it with `bot attention`"
    )
