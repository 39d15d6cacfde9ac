"""Before the slots: one question asked of each account's adapter (``bot check --online``).

The loop the per-platform checks share: each account of the platform gets an adapter and is asked once; an
account whose adapter cannot be built is a warning (a missing variable is the offline check's to report), and
every answer is a line naming the account at its line in config/accounts.yaml. A platform's module keeps only
which accounts it asks and what it asks.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any, Literal

# ("error" | "warning", why): what one account's answer says, without the account's place (the loop adds it).
Finding = tuple[Literal["error", "warning"], str]


def ask_accounts(
    campaign: Any,
    adapter_for: Callable[[Any], Any],
    platform: str,
    ask: Callable[[Any, Any], Finding | None],
    *,
    only: Container[str] | None = None,
) -> tuple[list[str], list[str]]:
    """(errors, warnings) as ``config/accounts.yaml:LINE: account ID: why`` lines from ``ask(account, adapter)``.

    Only the accounts on ``platform`` (and, given ``only``, with an id in it) are asked.
    """
    found: dict[str, list[str]] = {"error": [], "warning": []}
    for account in campaign.accounts.values():
        if account.platform != platform or (only is not None and account.id not in only):
            continue
        where = f"{account.file}:{account.line}: account {account.id}"
        try:
            adapter = adapter_for(account)
        except Exception as exc:  # noqa: BLE001  (a missing variable is the offline check's to report)
            found["warning"].append(f"{where}: not checked online: {type(exc).__name__}")
            continue
        answer = ask(account, adapter)
        if answer is not None:
            kind, why = answer
            found[kind].append(f"{where}: {why}")
    return found["error"], found["warning"]
