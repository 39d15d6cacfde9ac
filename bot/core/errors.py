"""The bot's errors, grouped by what the caller does next.

Retryable errors may succeed later (the worker retries them with backoff);
permanent errors will not (the worker records them and moves on). Foreign
exceptions are wrapped once, at the platform adapter boundary, with ``from exc``.
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class RetryableError(BotError):
    """The same call may succeed later."""

    retry_after: float | None = None


class RateLimited(RetryableError):
    """The platform said (or its headers say) no more requests until a reset time."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlatformUnavailable(RetryableError):
    """Network error, timeout or a 5xx answer."""


class UncertainOutcome(RetryableError):
    """The request may or may not have reached the platform (a timeout after sending).

    Before trying again the caller reconciles: it asks the adapter whether the
    post already exists.
    """


class OutcomeUnknown(BotError):
    """Nobody can tell whether the post went out: the platform has no idempotency key and no way to read it back.

    Raised by an adapter's ``_publish`` (a timeout or dropped connection after the request was sent) or its
    ``_find_published`` (asked to reconcile, it cannot look). The publisher never guesses: the publication
    goes to ``needs_attention``, an alert goes out, and it stays on ``bot status`` until a person resolves it
    (``bot attention``). The message says what is known (what was sent, when, what came back).
    """


class LeaseLost(BotError):
    """This worker's claim on a publication ran out and another worker took it over mid-attempt.

    The attempt stops before it can post: the other worker publishes (or reconciles) it now.
    """


class PermanentError(BotError):
    """Trying again will not help; a person has to act."""


class AuthFailed(PermanentError):
    """Credentials were refused. The message names the account and the env variables to fix."""


class ContentRejected(PermanentError):
    """The platform refused this content (too long, bad media, policy)."""


class DuplicateContent(ContentRejected):
    """The platform refused the post as a duplicate of one already published."""


class NotFound(PermanentError):
    """The thing acted on (a post to reshare, a media id) does not exist."""


class ConfigError(BotError):
    """Campaign files are invalid. ``problems`` holds one ``path:line: message`` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class MissingSecret(ConfigError):
    """An environment variable named in config/accounts.yaml is not set (its value is never shown)."""
