"""Media hosts let go of a publication's files once it is settled (the publisher calls ``settled``).

A platform that fetches media by URL (Instagram, Threads) is handed files through the adapter's
``media_host``; each file stays in the bucket while a publication holds it. A publication recorded
published or failed for good no longer needs its files: they are released then. One that will be
retried, went to ``needs_attention`` (a person may still re-send it), or was taken over by another
worker keeps them; a file leaked that way is removed by the bucket's lifecycle rule.

Releasing is a few calls to the bucket; it runs on a small pool of its own, so a fan-out's publishing
threads go on to their next accounts instead of waiting for deletes (500 Instagram accounts held their
threads up to 33 s for it). ``drain`` waits for what is queued: the worker calls it when it stops.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any, TypeVar

import structlog

from bot.core.errors import BotError

log = structlog.get_logger("bot.publishing.release")

R = TypeVar("R")
SETTLED = frozenset({"published", "failed"})
RELEASERS = 2
"""Threads that release media at once (the bucket's calls are quick; they only must not hold a publisher)."""

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()


def settled(result: R, adapter: Any, publication: str) -> R:
    """Release ``publication``'s media when ``result`` settles it; returns ``result`` (never raises)."""
    host = getattr(adapter, "media_host", None)
    if host is None or getattr(getattr(result, "outcome", None), "value", None) not in SETTLED:
        return result
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(RELEASERS, thread_name_prefix="media-release")
        future = _pool.submit(_release, host, publication)
        _pending.add(future)
    future.add_done_callback(_forget)
    return result


def drain(timeout: float | None = None) -> bool:
    """Wait until the releases queued so far are done; True when none is left."""
    with _lock:
        pending = set(_pending)
    done, left = wait_for(pending, timeout=timeout)
    return not left


def _forget(future: Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def _release(host: Any, publication: str) -> None:
    try:
        host.release(publication)
    except BotError as err:  # the post is recorded already; a file left behind is only storage
        log.warning("media_release_failed", publication=publication, reason=type(err).__name__, error=str(err))
    except Exception as exc:
        log.exception("media_release_failed", publication=publication, reason="internal_error", error=str(exc))
