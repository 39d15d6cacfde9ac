"""Before the slots: whether the campaign's bot may post in each Telegram channel (``bot check --online``).

Each Telegram account's adapter is asked ``whoami`` (getMe, getChat, getChatMember): a bot that is not an
administrator of the channel, or one without the right to post messages, a refused token or an unknown
channel is an error naming the account at its line in config/accounts.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.errors import BotError


def unable_to_post(campaign: Any, adapter_for: Callable[[Any], Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) as ``config/accounts.yaml:LINE: account ID: why`` lines."""
    errors: list[str] = []
    warnings: list[str] = []
    for account in campaign.accounts.values():
        if account.platform != "telegram":
            continue
        where = f"{account.file}:{account.line}: account {account.id}"
        try:
            adapter = adapter_for(account)
        except Exception as exc:  # noqa: BLE001  (a missing variable is the offline check's to report)
            warnings.append(f"{where}: not checked online: {type(exc).__name__}")
            continue
        try:
            adapter.whoami()
        except BotError as exc:  # messages name settings and variables, never the token (telegram/errors.py)
            why = str(exc).removeprefix(f"account {account.id}: ")
            errors.append(f"{where}: telegram channel {account.handle}: {why}")
    return errors, warnings
