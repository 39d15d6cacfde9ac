"""Media hosts let go of a publication's files once it is settled (the publisher calls ``settled``).

A platform that fetches media by URL (Instagram, Threads) is handed files through the adapter's
``media_host``; each file stays in the bucket while a publication holds it. A publication recorded
published or failed for good no longer needs its files: they are released then. One that will be
retried, went to ``needs_attention`` (a person may still re-send it), or was taken over by another
worker keeps them; a file leaked that way is removed by the bucket's lifecycle rule.
"""

from __future__ import annotations

from typing import Any, TypeVar

import structlog

from bot.core.errors import BotError

log = structlog.get_logger("bot.publishing.release")

R = TypeVar("R")
SETTLED = frozenset({"published", "failed"})


def settled(result: R, adapter: Any, publication: str) -> R:
    """Release ``publication``'s media when ``result`` settles it; returns ``result`` (never raises)."""
    host = getattr(adapter, "media_host", None)
    if host is None or getattr(getattr(result, "outcome", None), "value", None) not in SETTLED:
        return result
    try:
        host.release(publication)
    except BotError as err:  # the post is recorded already; a file left behind is only storage
        log.warning("media_release_failed", publication=publication, reason=type(err).__name__, error=str(err))
    except Exception as exc:
        log.exception("media_release_failed", publication=publication, reason="internal_error", error=str(exc))
    return result
