"""Upload progress for people watching: rich bars on a terminal, rate-limited log lines in JSON mode.

Both are ``Publisher(on_progress=...)`` callbacks taking ``(ctx, sent, total)``, called from the
publishing threads as an adapter sends bytes. Small files go up in a moment, so they show nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TextIO

MIN_BYTES = 1_000_000
"""Uploads smaller than this (all files of a post together) report no progress."""

LOG_EVERY = 5.0
"""Wall seconds between two upload_progressed lines of one upload (the 100% line always comes)."""

_KEEP = 1024  # uploads remembered at once; an upload that failed half-way never sends its 100%


def _key(ctx: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(ctx.get(k) for k in ("campaign", "slot", "target", "post", "account", "attempt"))


class LogProgress:
    """Logs ``upload_progressed`` at most once per ``every`` wall seconds per upload, plus its 100% line."""

    def __init__(
        self, *, every: float = LOG_EVERY, min_bytes: int = MIN_BYTES, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        import structlog

        self.every = every
        self.min_bytes = min_bytes
        self._monotonic = monotonic
        self._last: OrderedDict[tuple[Any, ...], float | None] = OrderedDict()  # None: 100% already logged
        self._lock = threading.Lock()
        self._log = structlog.get_logger("bot.observability.progress")

    def __call__(self, ctx: dict[str, Any], sent: int, total: int) -> None:
        if total < self.min_bytes:
            return
        key, now, done = _key(ctx), self._monotonic(), sent >= total
        with self._lock:
            if key in self._last:
                last = self._last[key]
                if last is None or (not done and now - last < self.every):
                    return
            self._last[key] = None if done else now
            self._last.move_to_end(key)
            while len(self._last) > _KEEP:
                self._last.popitem(last=False)
        self._log.info(
            "upload_progressed",
            campaign=ctx.get("campaign"),
            post=ctx.get("post"),
            account=ctx.get("account"),
            platform=ctx.get("platform"),
            slot=ctx.get("slot"),
            sent=sent,
            total=total,
            percent=round(100 * sent / total, 1),
        )


class TerminalProgress:
    """One transient rich bar per upload in flight; bars vanish when their upload ends."""

    def __init__(self, *, min_bytes: int = MIN_BYTES, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.min_bytes = min_bytes
        # redirect_stdout: log lines printed meanwhile go above the bars instead of through them.
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console or Console(file=sys.stderr),
            transient=True,
            redirect_stdout=True,
            redirect_stderr=False,
        )
        self._tasks: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, ctx: dict[str, Any], sent: int, total: int) -> None:
        if total < self.min_bytes:
            return
        key = _key(ctx)
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                if sent >= total:
                    return
                if not self._tasks:
                    self.bars.start()
                task = self._tasks[key] = self.bars.add_task(f"{ctx.get('account')} {ctx.get('post')}", total=total)
            self.bars.update(task, completed=sent)
            if sent >= total:
                self.bars.remove_task(self._tasks.pop(key))
                if not self._tasks:
                    self.bars.stop()

    def close(self) -> None:
        """Take down bars of uploads that never finished (a failed upload sends no 100%)."""
        with self._lock:
            for task in self._tasks.values():
                self.bars.remove_task(task)
            if self._tasks:
                self._tasks.clear()
                self.bars.stop()


class FollowStdout:
    """A log stream that writes to whatever ``sys.stdout`` is now, so rich's redirection during bars takes it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.__stdout__ is not None and sys.__stdout__.isatty()


def for_terminal(fmt: str | None, stdout: TextIO) -> bool:
    """Whether the worker shows bars: console log format on a terminal."""
    return stdout.isatty() and (fmt or "console") == "console"
