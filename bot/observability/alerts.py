"""Alerts for the people on call, through apprise (one URL setting reaches e-mail, Slack, Matrix, Signal, ...).

``Alerter.alert(kind, line, key=...)`` queues one line; a background thread sends at most one message per
kind per group window (``BOT_ALERT_GROUP``, default 300 s), titled with the count. The first alert of a
kind goes out at once; later ones wait for the window. A ``key`` already alerted within ``repeat``
seconds is dropped, so a condition seen by every periodic check is reported once a day, not every minute.
Every title and body goes through ``redact``; a receiver that fails is logged (``alert_failed``) and
never stops the worker. Without ``BOT_ALERT_URLS`` every call is a no-op.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from bot.observability.redaction import redact, register_secret

log = structlog.get_logger("bot.observability.alerts")

KINDS: dict[str, tuple[str, str]] = {
    # kind: (title for one, title for several: {n} is the count)
    "publication_failed": ("a publication failed permanently", "{n} publications failed permanently"),
    "needs_attention": (
        "a publication needs attention (its outcome is unknown)",
        "{n} publications need attention (their outcome is unknown)",
    ),
    "token_expiring": ("an account's token expires within 7 days", "{n} accounts' tokens expire within 7 days"),
    "token_revoked": ("an account's credentials were refused", "{n} accounts' credentials were refused"),
    "worker_restarts": ("the worker keeps restarting", "the worker keeps restarting ({n} reports)"),
    "review_waiting": (
        "a reshare candidate has waited too long for review",
        "{n} reshare candidates have waited too long for review",
    ),
    "rate_limited": (
        "an account's rate limit keeps pushing posts past their slot",
        "{n} accounts' rate limits keep pushing posts past their slot",
    ),
}

GROUP = 300.0
"""Seconds: at most one message per kind in this window (``BOT_ALERT_GROUP``)."""
REPEAT = 86400.0
"""Seconds before an alert with the same key is sent again (``BOT_ALERT_REPEAT``)."""
MAX_LINES = 20
"""Lines listed in one message; the title still counts them all."""


def urls_from(text: str | None) -> list[str]:
    """``BOT_ALERT_URLS``: apprise URLs separated by spaces or commas."""
    return [u for u in re.split(r"[\s,]+", text or "") if u]


def url_secrets(url: str) -> set[str]:
    """The parts of an apprise URL that may be secrets: user, password, path segments and query values.

    Apprise URLs carry their tokens in any of these places (``slack://T/B/XXXX``, ``mailto://user:pass@...``,
    ``tgram://bottoken/chat``): every part longer than a word-sized label is redacted from the logs.
    """
    parts = urlsplit(url)
    found = {url}
    for value in (parts.username, parts.password):
        if value:
            found.add(unquote(value))
    found |= {unquote(s) for s in parts.path.split("/") if len(s) >= 6}
    found |= {v for _, v in parse_qsl(parts.query) if len(v) >= 6}
    if parts.scheme not in ("json", "form", "xml", "http", "https") and parts.hostname and len(parts.hostname) >= 6:
        found.add(parts.hostname)  # several services put a token where the host goes (tgram://TOKEN/...)
    return found


@dataclass
class _Pending:
    lines: list[str] = field(default_factory=list)
    count: int = 0
    last_sent: float | None = None


class Alerter:
    """Queues alerts by kind and sends them grouped from its own thread (or from ``flush`` in tests)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        campaign: str = "",
        group: float = GROUP,
        repeat: float = REPEAT,
        monotonic: Callable[[], float] = time.monotonic,
        thread: bool = True,
    ) -> None:
        self.campaign = campaign
        self.group = group
        self.repeat = repeat
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._seen: dict[str, float] = {}  # key -> when it was last queued
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._apprise: Any = None
        self._thread: threading.Thread | None = None
        if not urls:
            return
        import apprise

        for url in urls:
            for secret in url_secrets(url):
                register_secret(secret)
        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                log.error("alert_url_refused", url=redact(url))
        if thread:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()

    @classmethod
    def from_env(cls, campaign: str, environ: dict[str, str] | None = None, **kwargs: Any) -> Alerter:
        env = os.environ if environ is None else environ
        return cls(
            urls_from(env.get("BOT_ALERT_URLS")),
            campaign=campaign,
            group=float(env.get("BOT_ALERT_GROUP") or GROUP),
            repeat=float(env.get("BOT_ALERT_REPEAT") or REPEAT),
            **kwargs,
        )

    @property
    def enabled(self) -> bool:
        return self._apprise is not None

    def alert(self, kind: str, line: str, *, key: str | None = None) -> bool:
        """Queue one line of ``kind``; False when alerts are off or ``key`` was alerted within ``repeat``."""
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind: {kind!r}")
        if self._apprise is None:
            return False
        now = self._monotonic()
        with self._lock:
            if key is not None:
                seen = self._seen.get(key)
                if seen is not None and now - seen < self.repeat:
                    return False
                self._seen[key] = now
            pending = self._pending.setdefault(kind, _Pending())
            pending.count += 1
            if len(pending.lines) < MAX_LINES:
                pending.lines.append(line)
        self._wake.set()
        return True

    def forget(self, key: str) -> None:
        """The condition behind ``key`` cleared: alert again as soon as it comes back."""
        with self._lock:
            self._seen.pop(key, None)

    def flush(self, *, force: bool = False) -> int:
        """Send each kind whose window has passed (every kind with ``force``); the number of messages sent."""
        now = self._monotonic()
        due: list[tuple[str, list[str], int]] = []
        with self._lock:
            for kind, pending in self._pending.items():
                if not pending.count:
                    continue
                if force or pending.last_sent is None or now - pending.last_sent >= self.group:
                    due.append((kind, pending.lines, pending.count))
                    pending.lines, pending.count, pending.last_sent = [], 0, now
        for kind, lines, count in due:
            self._send(kind, lines, count)
        return len(due)

    def next_due(self) -> float | None:
        """Seconds until the next grouped message is due, None when nothing waits."""
        now = self._monotonic()
        with self._lock:
            waits = [
                0.0 if p.last_sent is None else max(0.0, p.last_sent + self.group - now)
                for p in self._pending.values()
                if p.count
            ]
        return min(waits) if waits else None

    def close(self) -> None:
        """Stop the thread and send what is still queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._apprise is not None:
            self.flush(force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001  (the alert thread must outlive any one bad message)
                log.error("alert_failed", error=redact(f"{type(exc).__name__}: {exc}"))
            wait = self.next_due()
            self._wake.wait(timeout=60.0 if wait is None else max(wait, 0.05))
            self._wake.clear()

    def _send(self, kind: str, lines: list[str], count: int) -> bool:
        import apprise

        one, several = KINDS[kind]
        title = redact(f"campaign-bot {self.campaign}: " + (one if count == 1 else several.format(n=count)))
        body = "\n".join(f"- {line}" for line in lines)
        if count > len(lines):
            body += f"\n... and {count - len(lines)} more (see `bot status`)"
        body = redact(body)
        try:
            ok = bool(self._apprise.notify(title=title, body=body, notify_type=apprise.NotifyType.FAILURE))
            error = None if ok else "a receiver refused the message or could not be reached"
        except Exception as exc:  # noqa: BLE001  (an alert that cannot be sent is logged, never fatal)
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            log.info("alert_sent", kind=kind, count=count)
        else:
            log.error("alert_failed", kind=kind, count=count, error=redact(error or ""))
        return ok
