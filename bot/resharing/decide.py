"""Deciding for the tracker: judge each post once, against caps counted and recorded under the account's lock.

A stream's lane and the run loop may decide for one account at the same time; counting
the caps and recording the decisions is one step per account, so neither can take a
slot the other already took. The one-reshare-per-post rule is the ledger's unique key.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any

from bot.core.values import Mention
from bot.ledger.reshares import NewDecision
from bot.resharing.feeds import Feed, fair_order, instance_of
from bot.resharing.policy import Context, decide, judge


class Deciding:
    """Mixed into Tracker, which provides adapters, campaign, ledger, rules, resharer, log and the lock tables."""

    _account_locks: dict[str, threading.Lock]
    _account_locks_guard: threading.Lock
    _identities: dict[str, Any]
    _whoami_failed: set[str]

    @contextmanager
    def _holding(self, accounts: Iterable[str]) -> Iterator[None]:
        """Hold these accounts' locks (in one order, so a lane and the loop cannot deadlock)."""
        with self._account_locks_guard:
            locks = [self._account_locks.setdefault(a, threading.Lock()) for a in sorted(set(accounts))]
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

    def _context(self, feed: Feed, account: str, now: datetime, **counts: Any) -> Context:
        own_ids, own_handles = self._own(feed.platform)
        return Context(
            rules=self.rules,
            own_ids=own_ids,
            own_handles=own_handles,
            instance=instance_of(self.campaign.accounts[feed.reader]),
            now=now,
            **counts,
        )

    def _own(self, platform: str) -> tuple[frozenset[str], tuple[str, ...]]:
        ids, handles = set(), []
        for account in self.campaign.accounts.values():
            if account.platform != platform:
                continue
            who = self._identity(account.id)
            handle = account.handle or (who.handle if who else None)
            if who:
                ids.add(who.id)
            if handle:
                domain = instance_of(account)
                bare = handle.lstrip("@")
                handles.append(f"{bare}@{domain}" if domain and "@" not in bare else bare)
        return frozenset(ids), tuple(handles)

    def _identity(self, account_id: str) -> Any:
        if account_id not in self._identities and account_id in self.adapters and account_id not in self._whoami_failed:
            try:
                self._identities[account_id] = self.adapters[account_id].whoami()
            except Exception as exc:  # noqa: BLE001  (handles in accounts.yaml still identify it)
                self._whoami_failed.add(account_id)
                self.log.warning("whoami_failed", account=account_id, error=type(exc).__name__)
                return None
        return self._identities.get(account_id)

    def _decide(
        self,
        feed: Feed,
        mentions: list[Mention],
        now: datetime,
        outcome: Counter[str],
        cursor_key: tuple[str, str, str] | None,
        cursor: str | None,
    ) -> None:
        unique = list({m.remote_id: m for m in mentions}.values())
        base = self._context(feed, feed.reader, now)  # may ask the platform who we are: before the locks
        with self._holding(feed.accounts):
            # Counting the caps and recording against them is one step per account: a lane and the
            # loop deciding for one account at once could otherwise both take its last slot.
            self._decide_locked(feed, unique, base, now, outcome, cursor_key, cursor)

    def _decide_locked(
        self,
        feed: Feed,
        unique: list[Mention],
        base: Context,
        now: datetime,
        outcome: Counter[str],
        cursor_key: tuple[str, str, str] | None,
        cursor: str | None,
    ) -> None:
        rules = self.rules
        across = rules.across_accounts
        scopes = list(feed.accounts) if across else ["*"]
        known = self.ledger.decided(feed.network, [m.remote_id for m in unique], scopes)
        items: list[NewDecision] = []
        candidates = []
        for m in unique:
            fresh = [s for s in scopes if (m.remote_id, s) not in known]
            if not fresh:
                continue
            verdict = judge(m, base)
            if verdict.action == "skip":
                for scope in fresh:
                    items.append(self._item(feed, scope, feed.reader if scope == "*" else scope, m, verdict))
            else:
                candidates.append((m, fresh))
        acted = self.resharer.acted_statuses
        state: dict[str, list[Any]] = {}
        authors: dict[tuple[str, str], datetime | None] = {}

        def ctx_for(account: str, m: Mention) -> Context:
            if account not in state:
                hour, day, _ = self.ledger.counts(account, now, acted)
                state[account] = [hour, day]
            if (account, m.author_id) not in authors:
                authors[(account, m.author_id)] = self.ledger.author_last(
                    account, m.author_id, ["pending", "resharing", "queued", *acted]
                )
            hour, day = state[account]
            return self._context(
                feed, account, now, last_hour=hour, last_day=day, author_last=authors[(account, m.author_id)]
            )

        for m, fresh in fair_order(candidates):
            for scope in fresh:
                tries = [scope] if across else list(feed.accounts)
                verdicts = [(a, decide(m, ctx_for(a, m))) for a in tries]
                account, verdict = next(((a, v) for a, v in verdicts if v.action != "skip"), verdicts[0])
                items.append(self._item(feed, scope, account, m, verdict))
                if verdict.action == "allow":  # scheduled: counts against the caps from now on
                    state[account][0] += 1
                    state[account][1] += 1
                if verdict.action != "skip":
                    authors[(account, m.author_id)] = now
        ids = self.ledger.record(now, items, cursor_key, cursor)
        for item, row_id in zip(items, ids):
            if row_id is not None:
                outcome[item.status] += 1
                self._log_decision(item, row_id)

    def _item(self, feed: Feed, scope: str, account: str, m: Mention, verdict: Any) -> NewDecision:
        status = {"skip": "skipped", "review": "queued", "allow": "pending"}[verdict.action]
        return NewDecision(
            feed.network, feed.platform, scope, account, m, verdict.action, status, verdict.reason, verdict.detail
        )

    def _log_decision(self, item: NewDecision, row_id: int) -> None:
        event = {"skipped": "reshare_skipped", "queued": "reshare_queued", "pending": "reshare_scheduled"}[item.status]
        m = item.mention
        self.log.info(
            event,
            platform=item.platform,
            account=item.account,
            remote_id=m.remote_id,
            author=m.author_handle,
            reason=item.reason,
            detail=item.detail,
            url=m.url,
            decision_id=row_id,
        )
