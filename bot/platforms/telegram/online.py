"""Before the slots: whether the campaign's bot may post in each Telegram channel (``bot check --online``).

Each Telegram account's adapter is asked ``whoami`` (getMe, getChat, getChatMember): a bot that is not an
administrator of the channel, or one without the right to post messages, a refused token or an unknown
channel is an error naming the account at its line in config/accounts.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.errors import BotError
from bot.platforms.online import Finding, ask_accounts


def unable_to_post(campaign: Any, adapter_for: Callable[[Any], Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) as ``config/accounts.yaml:LINE: account ID: why`` lines."""
    return ask_accounts(campaign, adapter_for, "telegram", _may_post)


def _may_post(account: Any, adapter: Any) -> Finding | None:
    try:
        adapter.whoami()
    except BotError as exc:  # messages name settings and variables, never the token (telegram/errors.py)
        why = str(exc).removeprefix(f"account {account.id}: ")
        return "error", f"telegram channel {account.handle}: {why}"
    return None
