"""One platform adapter per account, built on first use and kept, and the accounts paused for bad credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bot.core.values import AccountLike, MediaHost
from bot.platforms.base import Platform, RateStore


def build_adapter(
    account: AccountLike,
    *,
    timeout: float = 30.0,
    wall: Callable[[], float] = time.time,
    state_dir: Path | None = None,
    media_host: MediaHost | None = None,
) -> Platform:
    """The account's adapter with its secrets from the environment (MissingSecret when one is unset)."""
    from bot.platforms import credentials as secrets
    from bot.platforms import platform_class

    return platform_class(account.platform)(
        account, secrets.resolve(account), timeout=timeout, wall=wall, state_dir=state_dir, media_host=media_host
    )


def _identity(account: AccountLike) -> tuple[Any, ...]:
    # A reload may change an account's instance or variables: then its adapter is rebuilt.
    return (account.platform, account.base_url, account.handle, tuple(sorted(account.credentials.items())))


class AdapterPool:
    """Builds each account's adapter once (sessions and rate-limit state live in it); thread-safe."""

    def __init__(
        self,
        build: Callable[[AccountLike], Platform] | None = None,
        *,
        timeout: float = 30.0,
        wall: Callable[[], float] = time.time,
        state_dir: Path | None = None,
        media_host: MediaHost | None = None,
        rates: RateStore | None = None,
    ) -> None:
        # ``rates``: rate limits shared with the other workers of the ledger (bot.ledger.budgets), if any.
        self.rates = rates
        # ``wall`` must be the time base of the platform's rate-limit reset epochs: real time, except
        # against a sandbox that runs on a test clock. ``state_dir`` is the campaign's ``state`` folder,
        # where adapters keep what must outlive the process (Bluesky sessions: logins are rate limited).
        self._build = build or (
            lambda account: build_adapter(
                account, timeout=timeout, wall=wall, state_dir=state_dir, media_host=media_host
            )
        )
        self._adapters: dict[str, tuple[tuple[Any, ...], Platform]] = {}
        self._lock = threading.Lock()
        self.paused: dict[str, str] = {}  # account id -> why (shown by the worker and in logs)

    def get(self, account: AccountLike) -> Platform:
        """The adapter for ``account``; raises MissingSecret when a variable is unset."""
        ident = _identity(account)
        # Read without the lock: a dict look-up is atomic, and a fan-out's threads all come through
        # here; taking the lock each time queued them behind one another (a convoy on the GIL).
        known = self._adapters.get(account.id)
        if known is not None and known[0] == ident:
            return known[1]
        adapter = self._build(account)
        if self.rates is not None:
            adapter.share_rates(self.rates)
        with self._lock:
            old = self._adapters.get(account.id)
            self._adapters[account.id] = (ident, adapter)
        if old is not None:
            old[1].close()
        return adapter

    def ready(self, accounts: Mapping[str, AccountLike], ids: Iterable[str]) -> list[tuple[AccountLike, Platform]]:
        """(account, adapter) for each of ``ids`` known in ``accounts`` and not paused, built now if need be.

        Built ahead of sending (a slot's staging, a fan-out's accounts): an account whose adapter cannot be
        built (a variable unset) is left out here, and reported, with its remedy, when it is published to.
        """
        found = []
        for account_id in ids:
            account = accounts.get(account_id)
            if account is None or account_id in self.paused:
                continue
            try:
                found.append((account, self.get(account)))
            except Exception:  # noqa: BLE001  (reported at the send, see above)
                continue
        return found

    def pause(self, account_id: str, why: str) -> bool:
        """Pause an account; True the first time, so the caller reports it once."""
        with self._lock:
            if account_id in self.paused:
                return False
            self.paused[account_id] = why
            return True

    def resume(self, account_id: str) -> None:
        with self._lock:
            self.paused.pop(account_id, None)
            known = self._adapters.pop(account_id, None)
        if known is not None:
            known[1].close()

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = self._adapters, {}
        for _, adapter in adapters.values():
            adapter.close()


def auth_message(account: AccountLike, detail: str) -> str:
    """What staff must fix when an account's credentials fail, naming variables, never values."""
    names = ", ".join(sorted(account.credentials.values())) or "(none configured)"
    return (
        f"account {account.id} ({account.platform}): credentials refused or missing ({detail}); "
        f"set valid values in the environment variables {names} and restart the worker; "
        f"this account's slots are paused until then"
    )
