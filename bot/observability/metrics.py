"""Prometheus metrics of one worker, in their own registry (``GET /metrics`` renders it).

Counted as they happen: publications by platform, account and outcome; lateness of published posts
(seconds from the slot to the platform's answer); campaign reloads by result. Read when scraped,
through functions the worker hands in (``read_from``): queue depths, reshare decisions by status and
reason (from the ledger, so they survive restarts), seconds until each token expires where known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger("bot.observability.metrics")
T = TypeVar("T")

LATENESS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
"""Seconds: on time is under a minute; an hour is the default grace."""

QueueDepths = Callable[[], Mapping[str, int]]
ReshareCounts = Callable[[], Mapping[tuple[str, str, str], int]]  # (platform, status, reason) -> n
TokenExpiry = Callable[[], Mapping[tuple[str, str], float]]  # (platform, account) -> seconds left


class Metrics:
    """The worker's counters and the readers it samples on each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.publications = Counter(
            "bot_publications",
            "Publications ended, by platform, account and outcome (published, failed, skipped, retry_later).",
            ["platform", "account", "outcome"],
            registry=self.registry,
        )
        self.lateness = Histogram(
            "bot_publication_lateness_seconds",
            "Seconds from a slot to its post being published.",
            ["platform"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "bot_campaign_reloads",
            "Campaign reloads after file changes, by result (accepted, rejected).",
            ["result"],
            registry=self.registry,
        )
        self._readers = _Readers()
        self.registry.register(self._readers)

    def read_from(
        self,
        *,
        queues: QueueDepths | None = None,
        reshares: ReshareCounts | None = None,
        tokens: TokenExpiry | None = None,
    ) -> None:
        """Functions sampled at each scrape; one that raises leaves its metric out of that scrape."""
        self._readers.queues = queues or self._readers.queues
        self._readers.reshares = reshares or self._readers.reshares
        self._readers.tokens = tokens or self._readers.tokens

    def publication(self, platform: str | None, account: str, outcome: str, lateness: float | None = None) -> None:
        self.publications.labels(platform or "", account, outcome).inc()
        if lateness is not None:
            self.lateness.labels(platform or "").observe(max(0.0, lateness))

    def reloaded(self, accepted: bool) -> None:
        self.reloads.labels("accepted" if accepted else "rejected").inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Readers(Collector):
    """Metrics read from the worker and the ledger when scraped, not counted in process."""

    def __init__(self) -> None:
        self.queues: QueueDepths | None = None
        self.reshares: ReshareCounts | None = None
        self.tokens: TokenExpiry | None = None

    def collect(self) -> Iterator[Metric]:
        if self.queues is not None and (queues := _read("queues", self.queues)) is not None:
            depth = GaugeMetricFamily(
                "bot_queue_depth",
                "Work waiting: in_flight (running now), retrying and claimed (ledger), review (reshares for staff).",
                labels=["queue"],
            )
            for name, n in sorted(queues.items()):
                depth.add_metric([name], n)
            yield depth
        if self.reshares is not None and (reshares := _read("reshares", self.reshares)) is not None:
            decisions = CounterMetricFamily(
                "bot_reshare_decisions",
                "Reshare decisions in the ledger, by platform, status and reason.",
                labels=["platform", "status", "reason"],
            )
            for (platform, status, reason), n in sorted(reshares.items()):
                decisions.add_metric([platform, status, reason], n)
            yield decisions
        if self.tokens is not None and (tokens := _read("tokens", self.tokens)) is not None:
            expiry = GaugeMetricFamily(
                "bot_token_expiry_seconds",
                "Seconds until an account's token expires (only where the platform says; negative: expired).",
                labels=["platform", "account"],
            )
            for (platform, account), seconds in sorted(tokens.items()):
                expiry.add_metric([platform, account], seconds)
            yield expiry


def _read(name: str, reader: Callable[[], T]) -> T | None:
    try:
        return reader()
    except Exception as exc:  # noqa: BLE001  (a scrape must not fail because the ledger is down; /healthz says so)
        log.warning("metrics_read_failed", metric=name, error=f"{type(exc).__name__}: {exc}")
        return None
