"""The worker's metrics while nothing can serve them: counted nowhere, and prometheus-client never imported.

Without ``BOT_HTTP_PORT`` no endpoint renders ``/metrics``, so a worker keeps this instead of
``bot.observability.metrics.Metrics``: prometheus-client and the HTTP servers its exposition module
imports (``http.server``, ``wsgiref``) cost an idle worker about 1.2 MB (bench/footprint.py).
"""

from __future__ import annotations

from typing import Any


class NoMetrics:
    """``Metrics``' counting methods, doing nothing."""

    def read_from(self, **readers: Any) -> None:
        """Nothing samples the readers."""

    def publication(self, platform: str | None, account: str, outcome: str, lateness: float | None = None) -> None:
        """Not counted."""

    def reloaded(self, accepted: bool) -> None:
        """Not counted."""
