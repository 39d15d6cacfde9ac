"""Structured logging, configured once: JSON lines off a terminal, readable console on one.

The standard library's records (the client libraries log through ``logging``) go through the same
processors as our events (structlog's ``ProcessorFormatter``), and every finished line passes
``redaction``: every secret the bot reads is registered there and cut from every line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

from bot.observability.redaction import (
    REDACTED,
    new_generation,
    redact,
    register_secret,
    retire_older_than,
    retire_secret,
    secrets,
    set_retention,
)

__all__ = [
    "NOISY",
    "REDACTED",
    "configure",
    "default_format",
    "import_structlog_for_json",
    "new_generation",
    "redact",
    "register_secret",
    "reset",
    "retire_older_than",
    "retire_secret",
    "set_retention",
]

NOISY = (
    "alembic",
    "apscheduler",
    "asyncio",
    "atproto",
    "atproto_client",
    "atproto_core",
    "av",
    "h2",
    "hpack",
    "httpcore",
    "httpx",
    "libav",
    "mastodon",
    "multipart",
    "oauthlib",
    "PIL",
    "requests",
    "requests_oauthlib",
    "sqlalchemy",
    "tweepy",
    "urllib3",
    "watchfiles",
    "websockets",
)
"""Client libraries kept at WARNING (their INFO and DEBUG lines are per request); BOT_LOG_LEVEL=debug opens them."""

_handler: logging.Handler | None = None  # the one handler configure() put on the root logger


class RedactingRenderer:
    """Renders an event with ``renderer``, then cuts every secret from the finished line.

    Redacting the rendered text, not the event's values, also covers keys, nested values,
    ``repr`` of objects the renderer falls back to, and formatted tracebacks.
    """

    def __init__(self, renderer: Callable[[Any, str, MutableMapping[str, Any]], str | bytes]) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        line = self.renderer(logger, method, event)
        return secrets(line.decode("utf-8") if isinstance(line, bytes) else line)


def default_format(stream: TextIO | None = None) -> str:
    """``BOT_LOG_FORMAT``, else console on a terminal and JSON elsewhere."""
    stream = stream or sys.stdout
    return os.environ.get("BOT_LOG_FORMAT") or ("console" if stream.isatty() else "json")


def import_structlog_for_json() -> None:
    """Import structlog without rich when this process will log JSON (call before anything imports structlog).

    ``structlog.dev`` imports rich whenever it is installed, for its console renderer's tracebacks;
    a JSON-logging worker never uses them, and rich costs it about 5 MB of memory. rich stays
    importable afterwards (progress bars and the demo's tables import it when they need it).
    """
    if "structlog" in sys.modules or "rich" in sys.modules or default_format() != "json":
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` raise ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


def configure(fmt: str | None = None, stream: TextIO | None = None, level: str | None = None) -> None:
    """Set up structlog and the standard library's logging for the whole process. ``fmt`` is ``json`` or ``console``.

    Defaults: ``BOT_LOG_FORMAT``, else console on a terminal and JSON elsewhere;
    level from ``BOT_LOG_LEVEL`` (default info). Our events and the client libraries' records go
    through one handler on the root logger, so lines never interleave and all carry ``event``,
    ``level``, ``logger`` and ``timestamp``, redacted.
    """
    import structlog  # here, so modules that only register secrets stay cheap to import (`bot check`)
    from structlog.stdlib import ProcessorFormatter

    global _handler
    stream = stream or sys.stdout
    fmt = fmt or default_format(stream)
    if fmt not in ("json", "console"):
        raise ValueError(f"BOT_LOG_FORMAT must be json or console, got: {fmt!r}")
    level_name = (level or os.environ.get("BOT_LOG_LEVEL") or "info").upper()
    threshold = logging.getLevelNamesMapping().get(level_name)
    if threshold is None:
        raise ValueError(f"BOT_LOG_LEVEL must be debug, info, warning, error or critical, got: {level_name.lower()!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # Both our events and foreign records get these; exceptions are formatted as plain text (never
    # rich's traceback with local variables, which would print credentials beyond any redaction).
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[ProcessorFormatter.remove_processors_meta, RedactingRenderer(renderer)],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(threshold)
    _handler = handler
    noisy = logging.NOTSET if threshold <= logging.DEBUG else max(threshold, logging.WARNING)
    for name in NOISY:
        logging.getLogger(name).setLevel(noisy)


def reset() -> None:
    """Undo ``configure``: structlog's defaults, and our handler off the root logger (for tests)."""
    import structlog

    global _handler
    structlog.reset_defaults()
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
