"""Structured logging, configured once: JSON lines off a terminal, readable console on one.

Every secret the bot reads is registered here and redacted from every event,
whatever key or nesting it hides under.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

REDACTED = "[redacted]"


class Redactor:
    """A structlog processor that replaces registered secret values in every string."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str | None) -> None:
        # Very short values would redact ordinary words; real credentials are long.
        if value and len(value) >= 6:
            with self._lock:
                self._secrets.add(value)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        return {k: self.scrub(v) for k, v in event.items()}


redactor = Redactor()


def register_secret(value: str | None) -> None:
    redactor.register(value)


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
    """Set up structlog for the whole process. ``fmt`` is ``json`` or ``console``.

    Defaults: ``BOT_LOG_FORMAT``, else console on a terminal and JSON elsewhere;
    level from ``BOT_LOG_LEVEL`` (default info).
    """
    import structlog  # here, so modules that only register secrets stay cheap to import (`bot check`)

    stream = stream or sys.stdout
    fmt = fmt or default_format(stream)
    if fmt not in ("json", "console"):
        raise ValueError(f"BOT_LOG_FORMAT must be json or console, got: {fmt!r}")
    level_name = (level or os.environ.get("BOT_LOG_LEVEL") or "info").upper()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
