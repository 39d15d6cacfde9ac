"""What the Mastodon adapter reads off the wire: status HTML, rate-limit headers, failed requests."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from bot.core.errors import BotError, PlatformUnavailable, UncertainOutcome


def seconds_until(reset: str, date: str | None) -> float:
    """Seconds from the server's now to its reset time; ISO 8601 (Mastodon) or epoch (GoToSocial)."""
    if reset.isdigit():
        at = float(reset)
    else:
        at = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
    now = time.time()
    if date:
        server_now = parsedate_to_datetime(date).timestamp()
        if abs(server_now - now) > 2:  # Date has whole seconds: only trust it for a real clock skew
            now = server_now
    return max(at - now, 0.0)


def network_error(exc: Exception) -> BotError:
    """A MastodonNetworkError by what the caller must do: reconcile, or just retry."""
    import requests

    cause = exc.__context__  # Mastodon.py raises inside its except block, without ``from``
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return UncertainOutcome(f"no answer in time, the request may have been processed: {cause}")
    if isinstance(cause, requests.exceptions.ConnectionError) and not isinstance(
        cause, requests.exceptions.ConnectTimeout
    ):
        request = getattr(cause, "request", None)
        if request is not None and request.method == "POST" and "NewConnectionError" not in repr(cause):
            return UncertainOutcome(f"connection lost after sending: {cause}")
    return PlatformUnavailable(f"network: {cause or exc}")


def api_status(exc: Exception) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def api_message(exc: Exception) -> str:
    return str(exc.args[3]) if len(exc.args) > 3 and exc.args[3] else str(exc)


def aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


_MARKS = str.maketrans("", "", "*_~`")


def comparable(text: str) -> str:
    # Some servers render *emphasis* and `code` from plain text; their marks are not the words.
    return " ".join(text.translate(_MARKS).split())


class _TextOf(HTMLParser):
    """Status HTML as the plain text its author typed: paragraphs and line breaks kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Mastodon's status HTML as text; link spans (``invisible``/``ellipsis``) give back the full URL."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()
