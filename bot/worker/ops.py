"""What the worker tells the people on call: alerts, metrics, health, and the HTTP endpoint that shows them.

``Operations(worker)`` is fed by the worker's hooks (``publication`` after each ``Publisher.fire``,
``reloaded``, ``started``) and by ``check``, which the worker's scheduler runs every minute (paused
accounts, old review items, tokens close to expiry). Thresholds come from the environment:

- ``BOT_ALERT_RESTARTS`` (3): alert when the worker restarted more than this many times in an hour
  (starts are kept in ``state/worker-starts.json``).
- ``BOT_ALERT_REVIEW_AGE`` (21600 s): alert when a reshare candidate waited longer than this for review.
- ``BOT_ALERT_RATE_LIMITED`` (3): alert when an account's rate limit pushed this many posts past their
  slot within an hour.
- ``BOT_ALERT_TOKEN_DAYS`` (7): alert when an account's token expires within this many days.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from bot.ledger.token_expiry import token_window, write_token_expiry
from bot.observability.alerts import Alerter
from bot.observability.metrics_off import NoMetrics
from bot.observability.redaction import redact

if TYPE_CHECKING:
    from bot.observability.metrics import Metrics

log = structlog.get_logger("bot.worker.ops")

STARTS_FILE = "worker-starts.json"
LEDGER_TIMEOUT = 5.0
"""Wall seconds /healthz waits for the ledger's answer."""


def _env_float(env: dict[str, str] | os._Environ[str], name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        log.warning("setting_ignored", variable=name, value=env.get(name), using=default)
        return default


EXPIRY_ASKERS = 4
"""Accounts asked about their token at once (each is one or two calls to its platform)."""


class Operations:
    """Alerts, metrics and health of one worker."""

    def __init__(
        self,
        worker: Any,
        *,
        alerter: Alerter | None = None,
        environ: dict[str, str] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        env = os.environ if environ is None else environ
        self.worker = worker
        self.wall = wall
        self.alerts = alerter if alerter is not None else Alerter.from_env(worker.campaign.name, environ)
        # Counted only where an endpoint can serve them: without BOT_HTTP_PORT, prometheus-client stays unimported.
        self.metrics: Metrics | NoMetrics = NoMetrics()
        self.max_restarts = int(_env_float(env, "BOT_ALERT_RESTARTS", 3))
        self.review_age = timedelta(seconds=_env_float(env, "BOT_ALERT_REVIEW_AGE", 6 * 3600))
        self.rate_limited = int(_env_float(env, "BOT_ALERT_RATE_LIMITED", 3))
        self.token_window = token_window(env)
        self._lock = threading.Lock()
        self._pushed: dict[str, deque[datetime]] = {}  # account -> clock times a rate limit pushed a post late
        self._expiry: dict[str, datetime] = {}  # account -> when its token expires, where a platform says
        self._asked_expiry: datetime | None = None  # when the adapters were last asked
        self.asking: threading.Thread | None = None  # the thread asking them, while it runs
        self._write_lock = threading.Lock()
        self._revoked: set[str] = set()
        if env.get("BOT_HTTP_PORT"):
            self.count_metrics()

    def count_metrics(self) -> Metrics:
        """The Prometheus metrics, counted from now on (made at the first call; ``start_http`` calls it)."""
        if isinstance(self.metrics, NoMetrics):
            from bot.observability.metrics import Metrics

            self.metrics = Metrics()
            self.metrics.read_from(queues=self._queues, reshares=self._reshares, tokens=self._tokens)
        return self.metrics

    # ---- hooks the worker calls ----

    def started(self) -> int:
        """Count this start in the state file; alert when the last hour holds more restarts than allowed."""
        path = Path(self.worker.root) / "state" / STARTS_FILE
        now = self.wall()
        try:
            starts = [float(t) for t in json.loads(path.read_text(encoding="utf-8")) if now - float(t) < 3600]
        except (OSError, ValueError, TypeError):
            starts = []
        starts.append(now)
        try:
            path.write_text(json.dumps(starts), encoding="utf-8")
        except OSError as exc:
            log.warning("worker_starts_not_recorded", error=f"{type(exc).__name__}: {exc}")
        restarts = len(starts) - 1
        if restarts > self.max_restarts:
            self.alerts.alert(
                "worker_restarts",
                f"the worker restarted {restarts} times in the last hour (more than {self.max_restarts}); "
                f"see its log for why it stops",
                key="worker_restarts",
            )
        return restarts

    def publication(self, occurrence: Any, account: str, result: Any) -> None:
        """After each ``Publisher.fire``: count it, and alert on what needs a person."""
        outcome = result.outcome.value
        if outcome == "not_mine":
            return
        campaign = self.worker.campaign
        platform = getattr(campaign.accounts.get(account), "platform", None) or ""
        now = self.worker.clock.now()
        slot_at = occurrence.at.astimezone(UTC)
        late = (now - slot_at).total_seconds() if outcome == "published" else None
        self.metrics.publication(platform, account, outcome, late)
        what = f"{result.post or occurrence.target} on {account} ({platform}), slot {slot_at:%Y-%m-%d %H:%M} UTC"
        if outcome == "needs_attention":
            self.needs_attention(what, f"publication {result.publication_id}: {result.reason}")
        elif outcome == "failed":
            self.alerts.alert(
                "publication_failed", f"{what}: {result.reason}", key=f"failed:{result.publication_id or what}"
            )
            if result.reason == "auth":
                self.revoked(account, platform)
        elif outcome == "retry_later" and result.reason == "RateLimited" and result.retry_at is not None:
            if result.retry_at > slot_at:
                self._rate_limited(account, platform, now)

    def needs_attention(self, what: str, reason: str) -> None:
        """A publication whose outcome is unknown: a person must look whether it is live."""
        self.alerts.alert(
            "needs_attention",
            f"{what}: {reason}; nobody can tell whether it went out, so it is not sent again: look at the "
            "account, then run `bot attention` to record what you found",
            key=f"attention:{what}",
        )

    def revoked(self, account: str, platform: str) -> None:
        with self._lock:
            if account in self._revoked:
                return
            self._revoked.add(account)
        self.alerts.alert(
            "token_revoked",
            f"{account} ({platform}): its credentials were refused; the account is paused until the "
            f"variables named in config/accounts.yaml are fixed and the worker restarted",
            key=f"revoked:{account}",
        )

    def token_expires(self, account: str, at: datetime, *, write: bool = True) -> None:
        """Where a platform tells when a token expires: kept for /metrics and ``bot status``, alerted when close.

        ``write``: update ``state/token-expiry.json`` now (the daily round writes it once, at its end).
        """
        with self._lock:
            self._expiry[account] = at.astimezone(UTC)
        if write:
            self._write_expiry()
        self._check_expiry(account, self.worker.clock.now())

    def _write_expiry(self) -> None:
        """``state/token-expiry.json``, for ``bot status`` (another process): account -> platform and expiry."""
        campaign = self.worker.campaign
        root = getattr(campaign, "root", None)
        if root is None:
            return
        with self._lock:
            known = dict(self._expiry)
        entries = {a: (getattr(campaign.accounts.get(a), "platform", ""), at) for a, at in known.items()}
        try:
            with self._write_lock:  # one writer at a time: they share the scratch file
                write_token_expiry(root / "state", entries)
        except OSError as exc:  # status then shows the last list written; alerts and /metrics still have it
            log.warning("token_expiry_write_failed", error=str(exc))

    def reloaded(self, accepted: bool) -> bool:
        self.metrics.reloaded(accepted)
        return accepted

    def check(self, now: datetime | None = None) -> None:
        """The periodic look (every minute): paused accounts, old review items, tokens close to expiry."""
        now = now or self.worker.clock.now()
        for account in self.worker.publisher.paused_accounts:
            platform = getattr(self.worker.campaign.accounts.get(account), "platform", "")
            self.revoked(account, platform)
        self._ask_expiry(now)
        for account in list(self._expiry):
            self._check_expiry(account, now)
        try:
            old = self._review_items(now - self.review_age)
        except Exception as exc:  # noqa: BLE001  (the ledger being down is /healthz's business)
            log.warning("review_check_failed", error=redact(f"{type(exc).__name__}: {exc}"))
            return
        for row in old:
            waited = now - _utc(row.decided_at)
            self.alerts.alert(
                "review_waiting",
                f"#{row.id} {row.account} <- @{row.author} has waited {waited.total_seconds() / 3600:.0f} h "
                f"(`bot review`): {row.url}",
                key=f"review:{row.id}",
            )

    def close(self) -> None:
        self.alerts.close()

    # ---- health ----

    def health(self) -> list[str]:
        """Why the worker is not healthy; empty when the scheduler runs, the ledger answers and the campaign is loaded."""
        worker = self.worker
        problems = []
        if getattr(worker, "campaign", None) is None:
            problems.append("campaign not loaded")
        if worker.stopping.is_set():
            problems.append("worker stopping")
        elif not worker.scheduler.running:
            problems.append("scheduler not running")
        if worker.exit_code:
            problems.append("ledger lost: the worker stopped publishing")
        ledger = self.ledger_problem()
        if ledger:
            problems.append(ledger)
        return problems

    def ledger_problem(self) -> str | None:
        """None when the ledger answers a query within ``LEDGER_TIMEOUT`` seconds, else why not."""
        guard = getattr(self.worker.ledger, "guard", None)
        if guard is not None and (problem := guard.problem()):
            return f"ledger lost: {problem}"
        answer: list[BaseException | None] = []

        def ping() -> None:
            try:
                with self.worker.ledger.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                answer.append(None)
            except Exception as exc:  # noqa: BLE001  (any failure is the answer)
                answer.append(exc)

        # A thread so that a database that hangs (not refuses) cannot hang the host's health check.
        thread = threading.Thread(target=ping, name="healthz-ledger", daemon=True)
        thread.start()
        thread.join(LEDGER_TIMEOUT)
        if not answer:
            return f"ledger did not answer within {LEDGER_TIMEOUT:.0f} s"
        err = answer[0]
        if err is None:
            return None
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return redact(f"ledger does not answer: {type(err).__name__}: {first}")

    # ---- metric readers ----

    def _queues(self) -> dict[str, int]:
        counts = self.worker.ledger.counts(self.worker.campaign.name)
        return {
            "in_flight": len(self.worker._inflight),
            "claimed": counts.get("claimed", 0),
            "retrying": counts.get("retrying", 0),
            "review": len(self._review_items(None)),
        }

    def _reshares(self) -> dict[tuple[str, str, str], int]:
        from bot.ledger.schema import decisions

        d = decisions.c
        query = (
            sa.select(d.platform, d.status, d.reason, sa.func.count())
            .where(d.campaign == self.worker.campaign.name)
            .group_by(d.platform, d.status, d.reason)
        )
        with self.worker.ledger.engine.connect() as conn:
            return {(p, s, r): n for p, s, r, n in conn.execute(query)}

    def _tokens(self) -> dict[tuple[str, str], float]:
        now = self.worker.clock.now()
        accounts = self.worker.campaign.accounts
        with self._lock:
            return {
                (getattr(accounts.get(a), "platform", ""), a): (at - now).total_seconds()
                for a, at in self._expiry.items()
            }

    # ---- helpers ----

    def _review_items(self, before: datetime | None) -> list[Any]:
        from bot.ledger.schema import decisions

        d = decisions.c
        query = sa.select(d.id, d.account, d.author, d.url, d.decided_at).where(
            d.campaign == self.worker.campaign.name, d.status == "queued"
        )
        with self.worker.ledger.engine.connect() as conn:
            rows = list(conn.execute(query.order_by(d.id)))
        # Compared here, not in SQL: SQLite hands back these times without their zone.
        return [r for r in rows if before is None or _utc(r.decided_at) < before]

    def _ask_expiry(self, now: datetime) -> None:
        """Once a day, ask each account whose platform has expiring tokens when its token expires (an adapter
        that can refresh its token does so then). Accounts whose platform never says cost nothing.

        The asking runs in a thread of its own, a few accounts at a time: 500 Instagram accounts take about
        two minutes, which the scheduler's thread (and a slot due meanwhile) must not wait for.
        """
        from bot.platforms import REGISTRY
        from bot.platforms.base import Platform

        with self._lock:
            if self._asked_expiry is not None and now - self._asked_expiry < timedelta(days=1):
                return
            if self.asking is not None and self.asking.is_alive():
                return
            self._asked_expiry = now
        base = Platform.credentials_expire_at
        paused = self.worker.publisher.paused_accounts
        accounts = [
            account
            for account in self.worker.campaign.accounts.values()
            if (cls := REGISTRY.get(account.platform)) is not None
            and cls.credentials_expire_at is not base
            and account.id not in paused
        ]
        if accounts:
            self.asking = threading.Thread(target=self._ask_each, args=(accounts,), name="token-expiry", daemon=True)
            self.asking.start()

    def _ask_each(self, accounts: list[Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        def ask(account: Any) -> None:
            try:
                at = self.worker.publisher.adapters.get(account).credentials_expire_at()
            except Exception as exc:  # noqa: BLE001  (asked again tomorrow; publishing reports a dead token itself)
                log.warning(
                    "token_expiry_check_failed", account=account.id, error=redact(f"{type(exc).__name__}: {exc}")
                )
                return
            if at is not None:
                self.token_expires(account.id, at, write=False)

        with ThreadPoolExecutor(EXPIRY_ASKERS, thread_name_prefix="token-expiry") as pool:
            list(pool.map(ask, accounts))
        self._write_expiry()

    def _check_expiry(self, account: str, now: datetime) -> None:
        with self._lock:
            at = self._expiry.get(account)
        if at is None:
            return
        left = at - now
        if left <= self.token_window:
            platform = getattr(self.worker.campaign.accounts.get(account), "platform", "")
            when = "expired" if left.total_seconds() <= 0 else f"expires in {left.total_seconds() / 86400:.1f} days"
            self.alerts.alert(
                "token_expiring",
                f"{account} ({platform}): its token {when} ({at:%Y-%m-%d %H:%M} UTC); renew it",
                key=f"expiry:{account}",
            )

    def _rate_limited(self, account: str, platform: str, now: datetime) -> None:
        with self._lock:
            times = self._pushed.setdefault(account, deque())
            times.append(now)
            while times and now - times[0] > timedelta(hours=1):
                times.popleft()
            count = len(times)
        if count >= self.rate_limited:
            self.alerts.alert(
                "rate_limited",
                f"{account} ({platform}): its rate limit pushed {count} posts past their slot in the last hour",
                key=f"rate:{account}",
            )

    # ---- the status page ----

    def expiring(self, now: datetime) -> list[dict[str, Any]]:
        """Accounts whose token expires within the warning window (or has), soonest first."""
        accounts = self.worker.campaign.accounts
        with self._lock:
            soon = sorted((at, a) for a, at in self._expiry.items() if at - now <= self.token_window)
        return [
            {
                "account": a,
                "platform": getattr(accounts.get(a), "platform", ""),
                "at": f"{at:%Y-%m-%d %H:%M} UTC",
                "expired": at <= now,
            }
            for at, a in soon
        ]

    def resolve(self, pub_id: int, published: bool, url: str | None, by: str) -> str | None:
        """The status page's "resolve" form: what a person found; a problem to show, or None when recorded."""
        row = self.worker.ledger.resolve(pub_id, published=published, by=by, url=url)
        if row is None:
            return f"#{pub_id} is not waiting for attention"
        log.info(
            "publication_resolved",
            publication=pub_id,
            account=row.account,
            post=row.post,
            found="published" if published else "not_published",
            url=row.url,
            by=by,
        )
        return None

    def page(self, collect: Callable[..., dict[str, Any]], days: int = 7) -> dict[str, Any]:
        """The status page's data: ``bot status``'s (``collect``) with the calendar and health."""
        from bot.web import calendar

        worker = self.worker
        now = worker.clock.now()
        campaign = worker.campaign
        tz = campaign.schedules[0].timezone if campaign.schedules else UTC
        data = collect(campaign, worker.ledger, now, limit=20, days=days)
        reshares = data.get("reshares") or {}

        def local(iso: str) -> str:
            return datetime.fromisoformat(iso).astimezone(tz).strftime("%a %d %b %H:%M %Z")

        return {
            "campaign": campaign.name,
            "now_local": now.astimezone(tz).strftime("%A %d %B %Y %H:%M %Z"),
            "health": self.health(),
            "counts": data["counts"],
            "days": calendar.build(campaign, worker.ledger, now, days),
            "recent": [{**r, "slot_local": local(r["slot"])} for r in data["recent"]],
            "failures": [{**r, "slot_local": local(r["slot"])} for r in data["failures"]],
            "attention": [{**r, "slot_local": local(r["slot"])} for r in data.get("needs_attention", [])],
            "tokens": self.expiring(now),
            "review": reshares.get("waiting_review", []),
            "reshare_failures": reshares.get("failed", []),
            "reshares_done": reshares.get("done", [])[:10],
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def start_http(
    worker: Any,
    collect: Callable[..., dict[str, Any]],
    decide: Callable[[str, list[int]], list[str]] | None,
    environ: dict[str, str] | None = None,
) -> Any:
    """The endpoint ``BOT_HTTP_PORT`` asks for, serving ``worker`` (None when the variable is unset)."""
    from bot.web.server import Backend, from_env

    if not (os.environ if environ is None else environ).get("BOT_HTTP_PORT"):
        return None  # nothing serves them: the metrics stay uncounted (and prometheus-client unimported)
    ops: Operations = worker.ops
    backend = Backend(
        health=ops.health,
        metrics=ops.count_metrics().render,
        page=lambda: ops.page(collect),
        decide=decide,
        resolve=ops.resolve,
    )
    return from_env(backend, environ)
