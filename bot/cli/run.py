"""``bot run``: the long-running worker that publishes every slot of the campaign exactly once.

This module is the command (options, the clock); the engine is ``bot.worker.runtime.Worker`` and the
process's signal handling ``bot.worker.signals``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import structlog

from bot.core.clock import CompressedClock, SystemClock
from bot.core.errors import ConfigError
from bot.worker.runtime import Worker, release_freed_memory
from bot.worker.signals import Signals

__all__ = ["Worker", "add_arguments", "main"]

log = structlog.get_logger()


# ---- the command ----


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="publish what is due now, then exit (cron hosts, tests)")
    parser.add_argument("--until", type=_when, help="campaign time to stop at, e.g. 2022-01-20T00:00Z")
    parser.add_argument("--clock-start", type=_when, help="campaign time the clock starts at (demo)")
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=None,
        help="campaign seconds per wall second (demo; production runs at 1, on the system clock)",
    )
    parser.add_argument("--database-url", help="ledger URL (default: $BOT_DATABASE_URL or state/bot.db)")
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="clock seconds between worker_heartbeat log lines (default 60)",
    )
    parser.add_argument("--threads", type=int, default=256, help="publications run at once (default 256)")
    parser.add_argument(
        "--lease",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="wall seconds a claim is held before another worker may take it over (default 600)",
    )
    parser.add_argument("--no-watch", action="store_true", help="do not reload when campaign files change")


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"a time with its zone is needed, e.g. {text}Z")
    return value.astimezone(UTC)


def make_clock(args: argparse.Namespace) -> SystemClock | CompressedClock:
    """The system clock, or for a demo (``--clock-start``/``--clock-speed``) a CompressedClock."""
    if args.clock_speed is None and args.clock_start is None:
        return SystemClock()
    start = args.clock_start or datetime.now(UTC)
    return CompressedClock(start, args.clock_speed or 1.0)


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas at one per core (at least two); False where it does not apply.

    glibc gives each new thread its own arena, up to eight per core, and an arena keeps the
    memory its thread freed: after a fan-out on the publish threads, about 3 MB more of the
    worker's memory for good (bench/fanout.py, 300 X accounts: 85 MB after the fan-out, 82 MB
    capped; the fan-out took as long either way). The GIL lets one thread at a time run Python,
    so threads rarely wait for an arena. MALLOC_ARENA_MAX set by whoever runs the worker is left alone.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False
    return bool(mallopt(M_ARENA_MAX, max(2, os.cpu_count() or 1)))


def main(args: argparse.Namespace) -> int:
    from bot.ledger.db import LedgerUnavailable, default_url
    from bot.observability import logs, progress

    limit_malloc_arenas()  # before the pool's threads exist: each takes its arena on its first malloc
    # On a terminal, uploads show rich bars; log lines follow sys.stdout so rich can print them above the bars.
    bars = progress.TerminalProgress() if progress.for_terminal(os.environ.get("BOT_LOG_FORMAT"), sys.stdout) else None
    # FollowStdout is a write/flush/isatty stream, all a log handler uses of a TextIO.
    logs.configure(stream=cast(TextIO, progress.FollowStdout()) if bars else None)
    root = args.campaign
    clock = make_clock(args)
    try:
        worker = Worker(
            root,
            clock=clock,
            database_url=args.database_url or default_url(root),
            threads=args.threads,
            heartbeat=args.heartbeat,
            lease=args.lease,
            on_progress=bars,
        )
    except ConfigError as exc:
        log.error("worker_refused", campaign=str(root), problems=exc.problems)
        return 1
    except LedgerUnavailable as exc:  # corrupt, unreadable, or seen lost by an earlier worker: one readable line
        log.error("worker_refused", campaign=str(root), problems=[str(exc)])
        return 2
    Signals(worker).install()  # before any work starts: a stop signal must always find the warm stop
    http = _start_http(worker)
    worker.warm_up()
    if isinstance(clock, CompressedClock):
        clock.anchor()  # demo time starts now that the worker is ready, not while it loaded
    try:
        worker.start()
        if args.once:
            worker.run_pending(timeout=None)
            if worker.campaign.reshare and worker.campaign.reshare.track:
                from bot.resharing.tracker import Tracker, tracked_adapters

                adapters = tracked_adapters(worker.campaign, worker.publisher.adapters.get)
                Tracker(worker.campaign, worker.ledger.engine, adapters, worker.clock, worker.owner).poll_once()
        else:
            worker.start_tracking()
            if not args.no_watch:
                worker.watch()
            release_freed_memory()  # what the load, warm-up and start freed goes back: the worker now mostly waits
            worker.serve(until=args.until)
            if not worker.stopping.is_set():
                worker.wait_idle(timeout=None)  # --until: what fell due before it still goes out
    finally:
        if http is not None:
            http.close()
        worker.close()
        if bars is not None:
            bars.close()
    return worker.exit_code


def _start_http(worker: Worker) -> Any:
    """``/healthz``, ``/metrics`` and the status page when ``BOT_HTTP_PORT`` is set (bot.web)."""
    if not os.environ.get("BOT_HTTP_PORT"):
        # No endpoint: the web stack (jinja2, wsgiref, the status and review commands) stays out of the
        # worker's memory, about 2 MB of an idle worker (bench/footprint.py).
        return None
    from bot.cli import review, status
    from bot.ledger.reshares import ReshareLedger
    from bot.worker.ops import start_http

    def decide(action: str, ids: list[int]) -> list[str]:
        ledger = ReshareLedger(worker.ledger.engine, worker.campaign.name)
        return review.decide(ledger, action, ids, worker.clock.now())

    return start_http(worker, status.collect, decide)
